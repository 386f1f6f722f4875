"""How many virtual nodes run in real time on one core, and how fast virtual time goes.

    python tools/bench/emulator_scale.py [--nodes 100,300,600,1200] [--seconds 30]
                                         [--virtual-nodes 1200] [--virtual-minutes 10]

Real time: N nodes (1 km apart on a generated quiet line, 10 s heartbeats, firmware
unchanged) against a private Mosquitto for a bounded run. A size keeps up when the emulator's
process uses under one core and its loop is rarely late (lag = how late a 100 ms timer fires:
median and p99 printed). Virtual time: the same kind of line for a few minutes of scenario;
the 24-hour figure is extrapolated linearly from it (node-seconds per real second) and says so.
Only the emulator's process is measured; the broker runs beside it (a separate process).
Nothing listens as the commission, so no acks: queues grow, which bounds the run length.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from linewatch.emulator import scenario as sc, vclock
from linewatch.emulator.runner import RunOptions, Runner
from linewatch.testing.broker import Mosquitto

QUIET = {k: 0.0 for k in ("artillery", "explosion", "small_arms", "drone", "vehicle", "tamper",
                          "node_reboot", "node_failure", "network_outage", "broker_outage")}


def quiet_line(nodes: int, seconds: float) -> sc.Scenario:
    return sc.generate(11, hours=seconds / 3600.0, line_km=max(1.0, nodes - 1),
                       rates_per_hour=QUIET, segment_km=100.0)


async def _lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.1)
        samples.append(loop.time() - t - 0.1)


def real_time(nodes: int, seconds: float, broker: Mosquitto) -> dict:
    scenario = quiet_line(nodes, seconds)
    world = scenario.build_world(time.time_ns() // 1000)
    work = Path(tempfile.mkdtemp(prefix="lw-scale-"))
    lags: list[float] = []

    async def main():
        stop = asyncio.Event()
        probe = asyncio.get_running_loop().create_task(_lag_probe(lags, stop))
        cpu0, wall0 = time.process_time(), time.monotonic()
        options = RunOptions((broker.host, broker.port), work, b"b" * 32, virtual=False, drain_s=0,
                             progress=False)
        summary = await Runner(scenario, world, options).run()
        stop.set()
        await probe
        return summary, (time.process_time() - cpu0) / (time.monotonic() - wall0)

    try:
        summary, cpu = vclock.run(main)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lags.sort()
    return {"nodes": len(world.nodes), "cpu": cpu, "frames": summary.frames,
            "lag_median_ms": 1000 * statistics.median(lags) if lags else float("nan"),
            "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))] if lags else float("nan")}


def virtual_time(nodes: int, minutes: float, broker: Mosquitto) -> dict:
    scenario = quiet_line(nodes, minutes * 60)
    world = scenario.build_world()
    work = Path(tempfile.mkdtemp(prefix="lw-scale-"))
    try:
        options = RunOptions((broker.host, broker.port), work, b"b" * 32, virtual=True, drain_s=0,
                             progress=False)
        t0 = time.monotonic()
        summary = vclock.run(lambda: Runner(scenario, world, options).run(), virtual=True)
        wall = time.monotonic() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    speed = scenario.duration_s / wall
    return {"nodes": len(world.nodes), "scenario_s": scenario.duration_s, "wall_s": wall,
            "speed": speed, "frames": summary.frames, "waited_s": summary.waited_s,
            "day_of_1200_min": 86400 / speed * (1200 / len(world.nodes)) / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="100,300,600,1200")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--virtual-nodes", type=int, default=1200)
    parser.add_argument("--virtual-minutes", type=float, default=10.0)
    args = parser.parse_args()
    with Mosquitto() as broker:
        print("real time, %.0f s each, 10 s heartbeats (goal: 1,200 nodes under one core)" % args.seconds)
        print("%6s %8s %10s %12s %12s" % ("nodes", "cpu", "frames", "lag med ms", "lag p99 ms"))
        for n in [int(x) for x in args.nodes.split(",") if x]:
            r = real_time(n, args.seconds, broker)
            print("%6d %7.0f%% %10d %12.1f %12.1f" % (r["nodes"], 100 * r["cpu"], r["frames"],
                                                     r["lag_median_ms"], r["lag_p99_ms"]), flush=True)
        r = virtual_time(args.virtual_nodes, args.virtual_minutes, broker)
        print("virtual time: %d nodes, %.0f s of scenario in %.1f s (%.1fx real time; %.1f s "
              "waiting for sockets); %d frames" % (r["nodes"], r["scenario_s"], r["wall_s"],
                                                   r["speed"], r["waited_s"], r["frames"]))
        print("24 h of 1,200 nodes, extrapolated linearly: %.1f min (goal: < 5 min)" % r["day_of_1200_min"])


if __name__ == "__main__":
    main()
