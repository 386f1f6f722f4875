"""Vehicles driving past the nodes: heard by the nodes' own detector, tracked by fusion.

    python -m lwtools.bench.vehicle_passes [--seeds 1 2] [--vehicles 6] [--profile field]

Per seed: a straight 12 km line with a row of nodes 200 m either side, one every 600 m,
staggered, and --vehicles vehicles (half wheeled at 100-110 dB at 1 m, half tracked at
108-118 dB; 5-15 m/s; engine 25-60 Hz) each driving 2 km along a road 0-1,000 m off the
line (either side), one every 450 s (one at a time). The direct tier plays it: every node's firmware
detector on the synthesized audio (the field background included) and its accelerometer
(the ground's vibration, emulator/ground.py), the commission's fusion in-process; the strict
scorer counts vehicle tracks. Per (node, vehicle): whether the node's detector reported a
vehicle while the vehicle was on its road, by the closest distance (the detector's hearing
range) and by the truth's peak SNR (its hearing model).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LINE_KM = 12.0
GAP_S = 450.0                  # > the slowest vehicle's time on its road: one vehicle at a time
ROAD_M = 2000.0
DISTANCE_BINS_M = (0, 50, 100, 200, 400, 600, 800, 1200, 10_000)


def scenario_text(seed: int, vehicles: int, profile: str) -> str:
    rng = np.random.default_rng(seed)
    wind = float(rng.uniform(0.0, 6.0))
    lines = ['[scenario]', 'name = "vehicles-%d"' % seed, "seed = %d" % seed,
             "duration_s = %d" % int(vehicles * GAP_S + 120), 'start_utc = "2026-06-10T09:00:00Z"',
             'profile = "%s"' % profile, "heartbeat_s = 60",
             "[line]", "vertices = [[48.000, 37.800], [48.000, %.5f]]" % (37.8 + LINE_KM / 74.5),
             "segment_length_m = 4000",
             "[nodes]", "row_offsets_m = [200, -200]", "spacing_m = 600",
             "[environment]", "temperature_c = 18", "noise_floor_db = 42", "noise_floor_spread_db = 3",
             "wind = { speed_mps = %.1f, from_deg = %.0f }" % (wind, rng.uniform(0, 360)),
             "[radio]", "latency_ms = 0", "latency_jitter_ms = 0", "loss_probability = 0"]
    for k in range(vehicles):
        kind = "wheeled" if k % 2 == 0 else "tracked"
        level = rng.uniform(100.0, 110.0) if kind == "wheeled" else rng.uniform(108.0, 118.0)
        along = rng.uniform(1000.0, LINE_KM * 1000.0 - ROAD_M - 1000.0)
        offset = (1.0 if rng.random() < 0.5 else -1.0) * rng.uniform(0.0, 1000.0)
        lines += ["[[event]]", 'id = "vehicle-%d"' % (k + 1), 'type = "vehicle"', 'kind = "%s"' % kind,
                  "time_s = %.0f" % (10 + k * GAP_S),
                  "path = [{ along_m = %.0f, offset_m = %.0f }, { along_m = %.0f, offset_m = %.0f }]"
                  % (along, offset, along + ROAD_M, offset),
                  "speed_mps = %.1f" % rng.uniform(5.0, 15.0), "level_db = %.1f" % level,
                  "fundamental_hz = %.0f" % rng.uniform(25.0, 60.0)]
    return "\n".join(lines) + "\n"


def run_seed(seed: int, vehicles: int, profile: str) -> dict:
    from linewatch.emulator import propagation as p
    from linewatch.emulator import scenario as sc
    from linewatch.emulator.commission import Commission
    from linewatch.emulator.direct import DirectRun, in_process_commission
    from linewatch.emulator.hearing import track_exposures
    from linewatch.emulator.runner import prepare
    from linewatch.emulator.score import score
    from lwnode.node import Node

    scenario = sc.loads(scenario_text(seed, vehicles, profile), "vehicles-%d" % seed)
    world, truth = prepare(scenario, real_time=False)
    folder = Path(tempfile.mkdtemp(prefix="lw-bench-vehicles-"))
    reports: list[tuple[int, int, int]] = []
    original = Node._report
    run = None

    def record(node, det):
        reports.append((node.config.node, det.cls, run.clock.now if run else 0))
        return original(node, det)

    Node._report = record
    try:
        desk = Commission.prepare(folder / "commission", world, ("127.0.0.1", 1))
        agg = in_process_commission(desk.config_path, desk.master_key)
        try:
            run = DirectRun(scenario, world, desk.master_key, agg, folder / "nodes")
            summary = run.run()
        finally:
            agg.alerter.close()
            agg.store.close()
        result = score(truth, desk.incidents())
    finally:
        Node._report = original
        shutil.rmtree(folder, ignore_errors=True)
    passes = []
    for track in scenario.sources:
        for e in track_exposures(world, track, -30.0):
            node = world.node(e.node_id)
            lats, lons = track.positions_at(e.times_s)
            dist = float(np.min(p.distances_m(node.lat, node.lon, lats, lons, 0.0)))
            lo = world.start_utc_us + int((track.time_s - 5) * 1e6)
            hi = world.start_utc_us + int((track.end_s + 70) * 1e6)      # reported when it has gone
            found = any(n == e.node_id and c == 4 and lo <= t <= hi for n, c, t in reports)
            passes.append((track.kind, dist, float(e.snr_db.max()), found))
    vehicle_reports = sum(1 for _n, c, _t in reports if c == 4)
    return {"seed": seed, "passes": passes, "summary": summary, "tracks": result.get("tracks", {}),
            "false": result["false"], "vehicle_reports": vehicle_reports,
            "drone_reports": sum(1 for _n, c, _t in reports if c == 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--vehicles", type=int, default=6, help="vehicles per seed")
    ap.add_argument("--profile", default="field")
    args = ap.parse_args(argv)
    started = time.monotonic()
    passes = []
    print("| seed | vehicles heard (truth) | tracked | vehicle reports | drone reports | false incidents | audio s | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        r = run_seed(seed, args.vehicles, args.profile)
        t = r["tracks"].get("vehicle", {})
        passes += r["passes"]
        print("| %d | %d of %d | %d | %d | %d | %d of %d %s | %.0f | %.0f |"
              % (seed, t.get("heard", 0), t.get("sources", 0), t.get("tracked", 0), r["vehicle_reports"],
                 r["drone_reports"], r["false"]["count"], r["false"]["of"], r["false"].get("by_class", ""),
                 r["summary"].audio_s, r["summary"].wall_s), flush=True)
    print()
    print("| closest distance m | wheeled: node passes | detected | tracked: node passes | detected |")
    print("|---|---|---|---|---|")
    for lo, hi in zip(DISTANCE_BINS_M, DISTANCE_BINS_M[1:]):
        cells = []
        for kind in ("wheeled", "tracked"):
            sel = [f for k, d, _s, f in passes if k == kind and lo <= d < hi]
            cells += [str(len(sel)), "%d (%.0f %%)" % (sum(sel), 100.0 * sum(sel) / len(sel)) if sel else "-"]
        print("| %d-%d | %s |" % (lo, hi, " | ".join(cells)))
    print()
    print("| truth's peak SNR dB (hearing model) | node passes | detected |\n|---|---|---|")
    for lo, hi in ((-99, 0), (0, 5), (5, 10), (10, 15), (15, 20), (20, 99)):
        sel = [f for _k, _d, s, f in passes if lo <= s < hi]
        if sel:
            print("| %s | %d | %d (%.0f %%) |" % ("%d..%d" % (lo, hi), len(sel), sum(sel), 100.0 * sum(sel) / len(sel)))
    print("(%.0f s)" % (time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
