"""Which sources reach which nodes, when, and how far above each node's noise floor.

Shared by truth.py (who should hear what) and synth.py (what to render in which window).
Times are true scenario seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from linewatch.emulator import propagation as p
from linewatch.emulator.sources import Impulse, Tamper, Track, node_down
from linewatch.emulator.world import World

# Narrow-band detectors pull tones out of broadband noise: a drone's blade-pass line stands
# this much further above the broadband floor than its broadband level says.
DETECTION_GAIN_DB = {"explosion": 0.0, "small_arms": 0.0, "drone": 15.0, "vehicle": 5.0}
# Tracks are sampled at this step to find when they are audible.
TRACK_STEP_S = 1.0


@dataclass(frozen=True)
class Arrival:
    """One shot of an impulse reaching one node."""
    source_id: str
    node_id: int
    shot: int
    emission_s: float
    arrival_s: float
    distance_m: float
    level_db: float          # received, dB SPL
    snr_db: float            # above the node's floor, detection gain included


@dataclass(frozen=True)
class Exposure:
    """A track as one node hears it: sampled received level over time."""
    source_id: str
    node_id: int
    times_s: np.ndarray      # arrival times at the node
    snr_db: np.ndarray

    def audible(self, threshold_db: float) -> tuple[float, float] | None:
        """(first, last) arrival time with SNR at or above the threshold, or None."""
        idx = np.flatnonzero(self.snr_db >= threshold_db)
        if idx.size == 0:
            return None
        return float(self.times_s[idx[0]]), float(self.times_s[idx[-1]])


def impulse_arrivals(world: World, impulse: Impulse, min_snr_db: float = -math.inf,
                     faults=()) -> list[Arrival]:
    """Arrivals of every shot at every listening node with SNR at or above min_snr_db."""
    env = world.environment
    dist = p.distances_m(impulse.lat, impulse.lon, world.node_lats, world.node_lons)
    wind = p.wind_along(p.bearings_rad(impulse.lat, impulse.lon, world.node_lats, world.node_lons),
                        env.wind_speed_mps, env.wind_from_deg)
    delay = p.travel_time_s(dist, env.temperature_c, wind)
    level = p.received_level_db(impulse.level_db, dist, impulse.dominant_hz)
    snr = p.snr_db(level, world.noise_floors_db) + DETECTION_GAIN_DB.get(impulse.event_class, 0.0)
    out = []
    for i in np.flatnonzero(snr >= min_snr_db):
        node_id = int(world.node_ids[i])
        for shot, t in enumerate(impulse.shot_times_s()):
            if node_down(faults, node_id, t + delay[i]):
                continue
            out.append(Arrival(impulse.id, node_id, shot, t, t + float(delay[i]), float(dist[i]),
                               float(level[i]), float(snr[i])))
    return out


def track_exposures(world: World, track: Track, min_snr_db: float = -math.inf,
                    step_s: float = TRACK_STEP_S) -> list[Exposure]:
    """Per node, the track's SNR over time (nodes that never reach min_snr_db are left out)."""
    env = world.environment
    times = np.arange(track.time_s, track.end_s + step_s, step_s)
    lats, lons = track.positions_at(times)
    c = p.speed_of_sound(env.temperature_c)
    gain = DETECTION_GAIN_DB.get(track.event_class, 0.0)
    # Cheap pre-filter: nodes further from every track point than the loudest range are out.
    reach = _audible_range_m(track.level_db + gain - float(world.noise_floors_db.min()) - min_snr_db
                             if math.isfinite(min_snr_db) else math.inf)
    near = _nodes_near(world, lats, lons, reach)
    out = []
    for i in near:
        dist = p.distances_m(float(world.node_lats[i]), float(world.node_lons[i]), lats, lons,
                             track.altitude_m)
        level = p.received_level_db(track.level_db, dist, track.fundamental_hz)
        snr = level - world.noise_floors_db[i] + gain
        if snr.max() >= min_snr_db:
            out.append(Exposure(track.id, int(world.node_ids[i]), times + dist / c, snr))
    return out


def _audible_range_m(margin_db: float) -> float:
    if not math.isfinite(margin_db):
        return math.inf
    return 10.0 ** (max(margin_db, 0.0) / 20.0)


def _nodes_near(world: World, lats, lons, reach_m: float) -> np.ndarray:
    if not math.isfinite(reach_m):
        return np.arange(len(world.nodes))
    keep = np.zeros(len(world.nodes), dtype=bool)
    for lat, lon in zip(lats[:: max(1, len(lats) // 20)], lons[:: max(1, len(lons) // 20)]):
        keep |= p.distances_m(float(lat), float(lon), world.node_lats, world.node_lons) <= reach_m
    last = p.distances_m(float(lats[-1]), float(lons[-1]), world.node_lats, world.node_lons)
    keep |= last <= reach_m
    return np.flatnonzero(keep)


def heard_by(world: World, source, faults=(), threshold_db: float = p.DETECTION_SNR_DB
             ) -> tuple[list[int], float | None]:
    """(node ids that should detect the source, true time it is first heard) for the truth."""
    if isinstance(source, Tamper):
        if world.has_node(source.node_id) and not node_down(faults, source.node_id, source.time_s):
            return [source.node_id], source.time_s
        return [], None
    if isinstance(source, Impulse):
        arrivals = impulse_arrivals(world, source, threshold_db, faults)
        nodes = sorted({a.node_id for a in arrivals})
        return nodes, min((a.arrival_s for a in arrivals), default=None)
    if isinstance(source, Track):
        nodes, first = [], None
        for e in track_exposures(world, source, threshold_db):
            span = e.audible(threshold_db)
            if span and not (node_down(faults, e.node_id, span[0]) and node_down(faults, e.node_id, span[1])):
                nodes.append(e.node_id)
                first = span[0] if first is None else min(first, span[0])
        return sorted(nodes), first
    raise TypeError("not a source: %r" % (source,))
