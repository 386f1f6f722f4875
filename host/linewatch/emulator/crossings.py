"""Where a track crosses the contact line, and whether nodes could hear it on both sides.

A crossing is "within hearing range" when, within CROSSING_WINDOW_S of it, at least one
listening node heard the track (truth's hearing model) while it was at least CROSSING_SIDE_M
on the side it came from, and again while it was that far on the side it went to: only then
could any tracker have witnessed the change of side. The scorer's drone-crossing figure counts
these; the others stay in the truth with their counts, as crossings nobody could see.
"""
from __future__ import annotations

import math

import numpy as np

from linewatch.geo import EARTH_RADIUS_M

from linewatch.emulator.hearing import TRACK_STEP_S, heard_at
from linewatch.emulator.sources import Track
from linewatch.emulator.world import World

CROSSING_SIDE_M = 50.0
CROSSING_WINDOW_S = 60.0


def signed_offsets(world: World, lats, lons) -> np.ndarray:
    """Metres from the line, + left, - right (0 on it): ContactLine.locate for many points."""
    line = world.line
    frame = line.frame
    x = np.radians(np.asarray(lons) - frame.lon0) * EARTH_RADIUS_M * math.cos(math.radians(frame.lat0))
    y = np.radians(np.asarray(lats) - frame.lat0) * EARTH_RADIUS_M
    a = np.asarray(line.xy[:-1])
    d = np.asarray(line.xy[1:]) - a
    seg2 = np.maximum((d ** 2).sum(axis=1), 1e-12)
    rx, ry = x[:, None] - a[:, 0], y[:, None] - a[:, 1]
    t = np.clip((rx * d[:, 0] + ry * d[:, 1]) / seg2, 0.0, 1.0)
    dist = np.hypot(rx - t * d[:, 0], ry - t * d[:, 1])
    cross = d[:, 0] * ry - d[:, 1] * rx
    best = np.argmin(dist, axis=1)
    rows = np.arange(len(x))
    return np.where(cross[rows, best] >= 0, 1.0, -1.0) * dist[rows, best]


def track_crossings(world: World, track: Track, exposures, faults=(),
                    threshold_db: float = 10.0) -> list[dict]:
    """Each change of side along the track: true time (scenario s), place, from/to side, the
    most nodes hearing it on each side near the crossing, and whether that was in range."""
    times = np.arange(track.time_s, track.end_s + TRACK_STEP_S, TRACK_STEP_S)
    lats, lons = track.positions_at(times)
    offset = signed_offsets(world, lats, lons)
    heard = heard_at(exposures, faults, threshold_db, len(times))
    out = []
    for k in range(1, len(times)):
        a, b = offset[k - 1], offset[k]
        if a == 0.0 or b == 0.0 or (a > 0) == (b > 0):
            continue
        share = a / (a - b)
        t = float(times[k - 1] + share * (times[k] - times[k - 1]))
        lat, lon = track.position_at(t)
        near = np.abs(times - t) <= CROSSING_WINDOW_S
        before = near & (times <= t) & (np.sign(offset) == np.sign(a)) & (np.abs(offset) >= CROSSING_SIDE_M)
        after = near & (times >= t) & (np.sign(offset) == np.sign(b)) & (np.abs(offset) >= CROSSING_SIDE_M)
        n_before = int(heard[before].max()) if before.any() else 0
        n_after = int(heard[after].max()) if after.any() else 0
        out.append({"time_s": t, "lat": lat, "lon": lon, "from": "L" if a > 0 else "R",
                    "to": "L" if b > 0 else "R", "heard_before": n_before, "heard_after": n_after,
                    "in_hearing_range": n_before >= 1 and n_after >= 1})
    return out
