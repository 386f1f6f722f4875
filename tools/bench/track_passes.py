"""What the moving-source benches share (drone_crossings, vehicle_passes): play a scenario in
the direct tier with every node's own detector reports recorded, score it strictly, and tell
per (node, track) whether that node reported the track's class while it was on its way."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

LINE_KM = 12.0                 # both benches: a straight line, a row of nodes 200 m either side


def scenario_head(rng, name: str, seed: int, duration_s: int, profile: str) -> list[str]:
    """The scenario's TOML up to its events: the straight line cut into 4 km segments, nodes
    200 m either side every 600 m, the air (wind 0-6 m/s drawn from rng, in this order), a
    radio that loses nothing."""
    wind = float(rng.uniform(0.0, 6.0))
    return ['[scenario]', 'name = "%s"' % name, "seed = %d" % seed,
            "duration_s = %d" % duration_s, 'start_utc = "2026-06-10T09:00:00Z"',
            'profile = "%s"' % profile, "heartbeat_s = 60",
            "[line]", "vertices = [[48.000, 37.800], [48.000, %.5f]]" % (37.8 + LINE_KM / 74.5),
            "segment_length_m = 4000",
            "[nodes]", "row_offsets_m = [200, -200]", "spacing_m = 600",
            "[environment]", "temperature_c = 18", "noise_floor_db = 42", "noise_floor_spread_db = 3",
            "wind = { speed_mps = %.1f, from_deg = %.0f }" % (wind, rng.uniform(0, 360)),
            "[radio]", "latency_ms = 0", "latency_jitter_ms = 0", "loss_probability = 0"]


def print_snr_table(passes) -> None:
    """Node passes and how many the node detected, by the truth's peak SNR; passes: (snr, found)."""
    print("| truth's peak SNR dB (hearing model) | node passes | detected |\n|---|---|---|")
    for lo, hi in ((-99, 0), (0, 5), (5, 10), (10, 15), (15, 20), (20, 99)):
        sel = [f for s, f in passes if lo <= s < hi]
        if sel:
            print("| %s | %d | %d (%.0f %%) |" % ("%d..%d" % (lo, hi), len(sel), sum(sel), 100.0 * sum(sel) / len(sel)))


def play(scenario, world, truth, prefix: str):
    """(reports, summary, score): reports as (node id, event class, run clock us) in order."""
    from linewatch.emulator.commission import Commission
    from linewatch.emulator.direct import DirectRun, in_process_commission
    from linewatch.emulator.score import score
    from lwnode.node import Node

    folder = Path(tempfile.mkdtemp(prefix=prefix))
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
    return reports, summary, result


def node_passes(scenario, world, reports, cls: int, altitude, after_s: float):
    """Per (track, node exposed to it): (track, closest distance m, truth's peak SNR dB, whether
    the node reported `cls` from 5 s before the track set off to `after_s` after it ended)."""
    from linewatch.emulator import propagation as p
    from linewatch.emulator.hearing import track_exposures

    out = []
    for track in scenario.sources:
        for e in track_exposures(world, track, -30.0):
            node = world.node(e.node_id)
            lats, lons = track.positions_at(e.times_s)
            dist = float(np.min(p.distances_m(node.lat, node.lon, lats, lons, altitude(track))))
            lo = world.start_utc_us + int((track.time_s - 5) * 1e6)
            hi = world.start_utc_us + int((track.end_s + after_s) * 1e6)
            found = any(n == e.node_id and c == cls and lo <= t <= hi for n, c, t in reports)
            out.append((track, dist, float(e.snr_db.max()), found))
    return out
