"""How well nodes date what they hear: every event frame of an emulated run against the world.

Runs a scenario through the whole chain (firmware on virtual boards, a private Mosquitto, the
real aggregator) in virtual time under each realism profile, then compares each stored event's
onset (frame time + onset offset) with the true arrival at that node, and splits the error
into the node clock's own error (the world's clock model at that moment) and the rest (block
stamp and onset pick). "stated" is the share of events whose whole error is within the clock
error the frame states plus 2 ms (the pick). Also prints what the nodes' thermometers said
against the air.

    python -m lwtools.bench.event_timing [--scenario demo] [--profiles ideal,field]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from lwproto import const, frame as wire

from linewatch import keys
from linewatch.emulator import scenario as sc
from linewatch.emulator.commission import Commission
from linewatch.emulator.runner import RunOptions, emulate, prepare
from linewatch.emulator.synth import Synthesizer
from linewatch.commission.store import FRAME, open_store
from linewatch.mosquitto import Mosquitto

PICK_ALLOWANCE_US = 2000
MATCH_US = 150_000          # an event is matched to the nearest true arrival within this


def run(scenario: sc.Scenario, folder: Path):
    world, truth = prepare(scenario, real_time=False)
    with Mosquitto(workdir=folder / "broker") as broker:
        desk = Commission.prepare(folder / "commission", world, (broker.host, broker.port))
        desk.start_aggregator()
        try:
            options = RunOptions((broker.host, broker.port), folder / "nodes", desk.master_key,
                                 virtual=True, drain_s=10, progress=False)
            emulate(scenario, world, options)
        finally:
            desk.stop_aggregator()
    store = open_store(str(desk.db_path), "NORMAL")
    try:
        frames = []
        for row in store.evidence():
            if row.kind != FRAME or row.type not in ("event", "heartbeat"):
                continue
            frames.append(wire.decode(row.raw, keys.derive(desk.master_key, row.node)))
    finally:
        store.close()
    return world, frames


def analyse(scenario: sc.Scenario, world, frames) -> tuple[dict, list[float]]:
    synth = Synthesizer(world, scenario.sources, scenario.faults, scenario.seed)
    arrivals = {n: np.array([world.start_utc_us + a.arrival_s * 1e6 for a in v])
                for n, v in synth.arrivals.items()}
    rows: dict[str, list] = {}
    warm = []
    for f in frames:
        node = world.node(f.node)
        if f.ftype == const.HEARTBEAT:
            t_s = (f.time_us - world.start_utc_us) / 1e6
            warm.append(f.field("temperature_c") - float(world.air.temperature_at(node.lat, node.lon, t_s)))
            continue
        onset = f.time_us + f.field("onset_offset_us")
        times = arrivals.get(f.node)
        if times is None or not len(times):
            continue
        true_guess = node.clock.true_time_us(onset)
        k = int(np.argmin(np.abs(times - true_guess)))
        if abs(times[k] - true_guess) > MATCH_US:
            continue
        total = onset - times[k]
        clock = node.clock.offset_at(times[k])
        source = const.CLOCK_NAMES[f.clock_source]
        rows.setdefault(source, []).append((total, clock, total - clock, f.clock_error_us))
    return rows, warm


def table(name: str, rows: dict) -> None:
    print("\n%s: event onset against the true arrival (ms)" % name)
    print("| clock | events | total bias / sd | p95 abs | clock bias / sd | stamp+pick bias / sd | p95 abs | within stated |")
    print("|---|---|---|---|---|---|---|---|")
    for source, values in sorted(rows.items()):
        a = np.array(values, dtype=float)
        total, clock, rest, stated = a[:, 0] / 1e3, a[:, 1] / 1e3, a[:, 2] / 1e3, a[:, 3]
        within = np.mean(np.abs(a[:, 0]) <= stated + PICK_ALLOWANCE_US)
        print("| %s | %d | %+.2f / %.2f | %.2f | %+.2f / %.2f | %+.2f / %.2f | %.2f | %.0f %% |"
              % (source, len(a), total.mean(), total.std(), np.percentile(np.abs(total), 95),
                 clock.mean(), clock.std(), rest.mean(), rest.std(),
                 np.percentile(np.abs(rest), 95), 100 * within))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="demo")
    parser.add_argument("--seed", type=int, help="a generated scenario instead (with --hours, --line-km)")
    parser.add_argument("--hours", type=float, default=0.25)
    parser.add_argument("--line-km", type=float, default=30.0)
    parser.add_argument("--profiles", default="ideal,field")
    args = parser.parse_args(argv)
    for name in args.profiles.split(","):
        if args.seed is not None:
            scenario = sc.generate(args.seed, hours=args.hours, line_km=args.line_km, profile=name)
        else:
            scenario = sc.load(args.scenario).with_profile(name)
        folder = Path(tempfile.mkdtemp(prefix="lw-timing-"))
        started = time.monotonic()
        try:
            world, frames = run(scenario, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        rows, warm = analyse(scenario, world, frames)
        table("%s, profile %s (%.0f s)" % (scenario.name, name, time.monotonic() - started), rows)
        if warm:
            print("thermometers: heartbeat reading - air at the node: median %+.1f C, p10 %+.1f, p90 %+.1f (%d heartbeats)"
                  % (np.median(warm), np.percentile(warm, 10), np.percentile(warm, 90), len(warm)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
