"""How many virtual nodes run in real time on one core, and how fast virtual time goes.

    python tools/bench/emulator_scale.py [--nodes 100,300,600,1200] [--seconds 30]
                                         [--virtual-nodes 1200] [--virtual-minutes 10]
                                         [--workers 1,2] [--no-commission] [--flash DIR]

Real time: N nodes (1 km apart on a generated quiet line, 10 s heartbeats, firmware
unchanged) against a private Mosquitto for a bounded run. A size keeps up when the emulator's
process uses under one core and its loop is rarely late (lag = how late a 100 ms timer fires:
median and p99 printed). Nothing listens as the commission there, so no acks.

Virtual time: the same kind of line for a few minutes of scenario, once per worker count, with
the real aggregator attached as the commission (it acks, so the nodes' queues stay short as in
a scoring run; `--no-commission` leaves them unacked: a node then re-reads every unacked frame
from flash before each publish, so the cost per frame grows with the run). The 24-hour figure
is extrapolated linearly from the run's frames per second (boot included) and states the
heartbeat interval it assumes: the scenario's, which is that of a generated day (10 s). It is a quiet line: a generated day's sources add
audio synthesis and detection on top. CPU is per frame, summed over the emulator's processes
(the broker and aggregator beside them are printed apart): on a shared machine the wall-clock
figures move with the load, CPU per frame much less.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from linewatch.emulator import scenario as sc, vclock
from linewatch.emulator.commission import Commission
from linewatch.emulator.runner import RunOptions, Runner, emulate
from linewatch.mosquitto import Mosquitto

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


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def virtual_time(nodes: int, minutes: float, broker: Mosquitto, workers: int = 1,
                 commission: bool = True, flash: str | None = None) -> dict:
    scenario = quiet_line(nodes, minutes * 60)
    world = scenario.build_world()
    work = Path(tempfile.mkdtemp(prefix="lw-scale-"))
    nodes_dir = Path(tempfile.mkdtemp(prefix="lw-scale-nodes-", dir=flash)) if flash else work / "nodes"
    desk = None
    key = b"b" * 32
    try:
        if commission:
            desk = Commission.prepare(work / "commission", world, (broker.host, broker.port))
            desk.start_aggregator()
            key = desk.master_key
        options = RunOptions((broker.host, broker.port), nodes_dir, key, virtual=True, drain_s=0,
                             progress=False, workers=workers)
        others0 = _cpu_s(broker.process.pid) + (_cpu_s(desk.process.pid) if desk else 0.0)
        cpu0, kids0, t0 = time.process_time(), _children_cpu_s(), time.monotonic()
        summary = emulate(scenario, world, options)
        wall = time.monotonic() - t0
        # forked workers are reaped by now, so their CPU is in the children's figure
        cpu = time.process_time() - cpu0 + (_children_cpu_s() - kids0)
        others = _cpu_s(broker.process.pid) + (_cpu_s(desk.process.pid) if desk else 0.0) - others0
    finally:
        if desk is not None:
            desk.stop_aggregator()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(nodes_dir, ignore_errors=True)
    return {"nodes": len(world.nodes), "scenario_s": scenario.duration_s, "wall_s": wall,
            "frames": summary.frames, "waited_s": summary.waited_s, "cpu_s": cpu,
            "others_cpu_s": others, "workers": summary.workers, "heartbeat_s": scenario.heartbeat_s,
            "unacked": summary.left_in_queues}


def day_minutes(run: dict, nodes: int = 1200, heartbeat_s: float = 10.0) -> float:
    """Wall minutes for 24 h of `nodes` at `heartbeat_s`, at the run's frames per second
    (its boot included, so slightly pessimistic)."""
    return nodes * 86400 / heartbeat_s / (run["frames"] / run["wall_s"]) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="100,300,600,1200")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--virtual-nodes", type=int, default=1200)
    parser.add_argument("--virtual-minutes", type=float, default=10.0)
    parser.add_argument("--workers", default="1,2", help="worker processes for the virtual runs")
    parser.add_argument("--no-commission", dest="commission", action="store_false",
                        help="virtual runs without the aggregator (nothing acks)")
    parser.add_argument("--flash", help="folder for the nodes' flash (e.g. /dev/shm; default: "
                                        "the run's temporary folder)")
    args = parser.parse_args()
    with Mosquitto() as broker:
        print("real time, %.0f s each, 10 s heartbeats (goal: 1,200 nodes under one core)" % args.seconds)
        print("%6s %8s %10s %12s %12s" % ("nodes", "cpu", "frames", "lag med ms", "lag p99 ms"))
        for n in [int(x) for x in args.nodes.split(",") if x]:
            r = real_time(n, args.seconds, broker)
            print("%6d %7.0f%% %10d %12.1f %12.1f" % (r["nodes"], 100 * r["cpu"], r["frames"],
                                                     r["lag_median_ms"], r["lag_p99_ms"]), flush=True)
        print("\nvirtual time, %d nodes, %s (commission = the real aggregator, acking)"
              % (args.virtual_nodes, "with commission" if args.commission else "no commission, no acks"))
        print("%8s %9s %9s %8s %9s %10s %12s %12s %14s" % (
            "workers", "scenario", "wall s", "frames", "frames/s", "x real", "cpu us/frame",
            "broker+agg", "24 h of 1,200"))
        for w in [int(x) for x in args.workers.split(",") if x]:
            r = virtual_time(args.virtual_nodes, args.virtual_minutes, broker, w, args.commission,
                             args.flash)
            minutes = day_minutes(r, 1200, r["heartbeat_s"])
            print("%8d %8.0fs %9.1f %8d %9.0f %9.1fx %12.0f %9.0f us %10.1f min" % (
                r["workers"], r["scenario_s"], r["wall_s"], r["frames"], r["frames"] / r["wall_s"],
                r["scenario_s"] / r["wall_s"], 1e6 * r["cpu_s"] / r["frames"],
                1e6 * r["others_cpu_s"] / r["frames"], minutes), flush=True)
        print("24 h projection: %d heartbeats per node at the scenario's %.0f s (a generated day's "
              "interval), %.1f M frames for 1,200 nodes; quiet line (no sources); goal < 5 min"
              % (86400 / r["heartbeat_s"], r["heartbeat_s"], 1200 * 86400 / r["heartbeat_s"] / 1e6))


if __name__ == "__main__":
    main()
