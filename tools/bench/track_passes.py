"""What the moving-source benches share (drone_crossings, vehicle_passes): play a scenario in
the direct tier with every node's own detector reports recorded, score it strictly, and tell
per (node, track) whether that node reported the track's class while it was on its way."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np


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
