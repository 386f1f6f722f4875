"""Which sources reach which nodes, when, and how far above each node's noise floor.

Shared by truth.py (who should hear what), synth.py (what to render in which window) and
observe.py (arrivals as nodes report them, for benchmarks). Times are true scenario seconds.
What the air does on the way is the world's air (air.py, by its realism profile); the
per-path jitter and level scatter of an impulse are drawn from the stream ("path", source id)
for every node at once, so truth and audio agree whatever subset of nodes is asked about.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from linewatch.emulator import propagation as p
from linewatch.emulator.air import iso9613_absorption_db_per_km, speed_of_sound
from linewatch.emulator.background import band_share_db, tone_masking_db
from linewatch.emulator.randomness import stream
from linewatch.emulator.sources import Impulse, NodeFault, Tamper, Track, node_down
from linewatch.emulator.world import World

# Narrow-band detectors pull tones out of broadband noise: a drone's blade-pass line stands
# this much further above the broadband floor than its broadband level says.
# A drone counts as heard 8 dB under a white floor; a field background puts more noise under
# the tone (pink floor, wind on the microphone): background.tone_masking_db takes that off per
# node and frequency (7 dB at 250 Hz in calm air). Measured through the node's own detector in
# the field world (lwtools.bench.drone_crossings, 3 seeds, 291 node passes): 4 of the 5 passes
# this calls heard were reported, 4 of 10 of those 5-10 dB under it; +22 dB would call those
# heard too. (In stationary test signals the detector reports every tone 10 dB under a white
# floor and 6 dB under a pink one: lwtools.bench.detector_quality.)
# A vehicle is heard in the 100-500 Hz band (lwnode.vehicle): its SNR is the band's, the
# vehicle's share of its power there (synth.py's waveforms, measured: wheeled -3.6 dB, tracked
# -2.8 dB) against the background's (background.band_share_db), plus the gain: the detector
# reports a vehicle whose band stands ~5 dB over the band's noise for a few seconds.
DETECTION_GAIN_DB = {"explosion": 0.0, "small_arms": 0.0, "drone": 18.0, "vehicle": 5.0}
VEHICLE_BAND_HZ = (100.0, 500.0)
VEHICLE_BAND_SHARE_DB = {"wheeled": -3.6, "tracked": -2.8}
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
    temperature_c: float = 15.0   # mean along the path: the absorption the audio gets
    excess_db: float = 0.0   # loss beyond spreading and absorption (upwind shadow, scatter)


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


@dataclass(frozen=True)
class ImpulsePaths:
    """One impulse to every node of the world (arrays in world.nodes order)."""
    distance_m: np.ndarray
    delay_s: np.ndarray          # travel time, jitter included
    level_db: np.ndarray         # received, dB SPL
    temperature_c: np.ndarray    # mean along each path
    excess_db: np.ndarray        # upwind shadow and level scatter (+ is a loss)


def impulse_paths(world: World, impulse, rng: np.random.Generator | None = None,
                  min_level_db=-math.inf) -> ImpulsePaths:
    """Delay and level of an impulse at every node. `rng` draws the per-path jitter and
    scatter (default: the world's stream for this source). Nodes whose level cannot reach
    `min_level_db` (array or scalar, by node) even with the most favourable air get delay
    and level computed the uniform way only (cheap) and level -inf."""
    air = world.air
    dist = p.distances_m(impulse.lat, impulse.lon, world.node_lats, world.node_lons,
                         getattr(impulse, "height_m", 0.0))
    rng = stream(world.seed, "path", impulse.id) if rng is None else rng
    jitter, scatter = air.path_noise(dist, rng)
    if not air.field:
        bearing = p.bearings_rad(impulse.lat, impulse.lon, world.node_lats, world.node_lons)
        paths = air.paths(impulse.lat, impulse.lon, impulse.time_s, world.node_lats,
                          world.node_lons, dist, bearing)
        level = p.received_level_db(impulse.level_db, dist, impulse.dominant_hz)
        return ImpulsePaths(dist, paths.travel_s, level, paths.temperature_c, np.zeros(dist.shape))
    # A bound first: the least absorption a plausible air could give, the best scatter.
    least = min(iso9613_absorption_db_per_km(impulse.dominant_hz, t, air.humidity_pct)
                for t in (-30.0, 0.0, 20.0, 45.0))
    bound = impulse.level_db - p.spreading_loss_db(dist) - least * dist / 1000.0 + scatter
    near = np.flatnonzero(bound >= min_level_db)
    level = np.full(dist.shape, -math.inf)
    delay = dist / speed_of_sound(air.temperature_c)
    temperature = np.full(dist.shape, air.temperature_c)
    excess = np.zeros(dist.shape)
    if near.size:
        bearing = p.bearings_rad(impulse.lat, impulse.lon, world.node_lats[near], world.node_lons[near])
        paths = air.paths(impulse.lat, impulse.lon, impulse.time_s, world.node_lats[near],
                          world.node_lons[near], dist[near], bearing)
        absorption = air.absorption_db_per_km(impulse.dominant_hz, paths.temperature_c)
        excess[near] = paths.shadow_db - scatter[near]
        level[near] = (impulse.level_db - p.spreading_loss_db(dist[near])
                       - absorption * dist[near] / 1000.0 - excess[near])
        delay[near] = paths.travel_s + jitter[near]
        temperature[near] = paths.temperature_c
    return ImpulsePaths(dist, delay, level, temperature, excess)


def impulse_arrivals(world: World, impulse: Impulse, min_snr_db: float = -math.inf,
                     faults=()) -> list[Arrival]:
    """Arrivals of every shot at every listening node with SNR at or above min_snr_db."""
    gain = DETECTION_GAIN_DB.get(impulse.event_class, 0.0)
    paths = impulse_paths(world, impulse, min_level_db=world.noise_floors_db + min_snr_db - gain)
    snr = p.snr_db(paths.level_db, world.noise_floors_db) + gain
    out = []
    for i in np.flatnonzero(snr >= min_snr_db):
        node_id = int(world.node_ids[i])
        for shot, t in enumerate(impulse.shot_times_s()):
            arrival = t + float(paths.delay_s[i])
            if node_down(faults, node_id, arrival):
                continue
            out.append(Arrival(impulse.id, node_id, shot, t, arrival, float(paths.distance_m[i]),
                               float(paths.level_db[i]), float(snr[i]),
                               float(paths.temperature_c[i]), float(paths.excess_db[i])))
    return out


def track_propagation(world: World, track: Track, node_index: int, lats, lons, emitted_s):
    """(distance m, travel s, level dB SPL) from a track's positions at emission times to one
    node: the air at the node (its temperature and wind along the ray), absorption at the
    track's fundamental, the upwind shadow; no per-path jitter (a tone has no onset to date)."""
    air = world.air
    lat, lon = float(world.node_lats[node_index]), float(world.node_lons[node_index])
    dist = p.distances_m(lat, lon, lats, lons, track.altitude_m)
    if not air.field:
        c = p.speed_of_sound(air.temperature_c)
        return dist, dist / c, p.received_level_db(track.level_db, dist, track.fundamental_hz)
    times = np.asarray(emitted_s, dtype=float)
    temperature = air.temperature_at(lat, lon, times)
    east, north = air.wind_at(lat, lon, times, gusts=False)
    bearing = p.bearings_rad(lat, lon, lats, lons) + math.pi        # from the track to the node
    along = east * np.sin(bearing) + north * np.cos(bearing)
    c_eff = speed_of_sound(temperature) + along
    prof = air.profile
    shadow = np.minimum(prof.upwind_shadow_max_db,
                        prof.upwind_shadow_db_per_mps_km * np.maximum(0.0, -along) * dist / 1000.0)
    level = (track.level_db - p.spreading_loss_db(dist)
             - air.absorption_db_per_km(track.fundamental_hz, temperature) * dist / 1000.0 - shadow)
    return dist, dist / c_eff, level


def track_exposures(world: World, track: Track, min_snr_db: float = -math.inf,
                    step_s: float = TRACK_STEP_S) -> list[Exposure]:
    """Per node, the track's SNR over time (nodes that never reach min_snr_db are left out)."""
    times = np.arange(track.time_s, track.end_s + step_s, step_s)
    lats, lons = track.positions_at(times)
    gain = DETECTION_GAIN_DB.get(track.event_class, 0.0)
    # Cheap pre-filter: nodes further from every track point than the loudest range are out.
    # (a vehicle's band statistic can stand up to ~13 dB over its broadband SNR: white noise's
    # share of 100-500 Hz less the vehicle's)
    bonus = 13.0 if track.event_class == "vehicle" else 0.0
    reach = _audible_range_m(track.level_db + gain + bonus - float(world.noise_floors_db.min()) - min_snr_db
                             if math.isfinite(min_snr_db) else math.inf)
    near = _nodes_near(world, lats, lons, reach)
    out = []
    for i in near:
        _dist, travel, level = track_propagation(world, track, int(i), lats, lons, times)
        floor = float(world.noise_floors_db[i])
        snr = level - floor + gain - _masking_db(world, track, floor)
        if snr.max() >= min_snr_db:
            out.append(Exposure(track.id, int(world.node_ids[i]), times + travel, snr))
    return out


def _masking_db(world: World, track: Track, floor_db: float) -> float:
    """How far under its broadband SNR the detector's own statistic puts the track (dB)."""
    wind = world.environment.wind_speed_mps
    if track.event_class == "vehicle":
        return (band_share_db(world.profile, floor_db, *VEHICLE_BAND_HZ, wind)
                - VEHICLE_BAND_SHARE_DB.get(track.kind, VEHICLE_BAND_SHARE_DB["wheeled"]))
    return tone_masking_db(world.profile, floor_db, track.fundamental_hz, wind)


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


# Below this SNR a sound is not even "reached": it is lost in the node's noise.
REACH_SNR_DB = 0.0
NOT_HEARD_REASONS = ("nodes down", "below the noise", "out of range")


@dataclass(frozen=True)
class Audience:
    """Who should detect a source, who it reached without being heard, and if nobody heard
    it, why: "nodes down" (nodes that would have heard it were failed or rebooting),
    "below the noise" (it reached listening nodes, above their floor but below the detection
    threshold), "out of range" (no node got it above its floor)."""
    heard_by: list[int]
    reached_by: list[int]            # listening, SNR in [REACH_SNR_DB, threshold)
    first_heard_s: float | None
    not_heard: str | None
    best_snr_db: float | None        # the best SNR of any node, listening or not
    exposures: tuple = ()            # tracks: the per-node exposures (for crossings.py)


def audience(world: World, source, faults=(), threshold_db: float = p.DETECTION_SNR_DB) -> Audience:
    """The same `heard_by` as heard_by(), with what the scorer needs to say why not."""
    if isinstance(source, Tamper):
        nodes, first = heard_by(world, source, faults, threshold_db)
        reason = None if nodes else "nodes down"
        return Audience(nodes, [], first, reason, None)
    reach = min(REACH_SNR_DB, threshold_db)
    if isinstance(source, Impulse):
        return _impulse_audience(impulse_arrivals(world, source, reach), faults, threshold_db)
    if isinstance(source, Track):
        return _track_audience(track_exposures(world, source, reach), faults, threshold_db)
    raise TypeError("not a source: %r" % (source,))


def _impulse_audience(arrivals: list[Arrival], faults, threshold_db: float) -> Audience:
    heard, reached, first, best, would = set(), set(), None, None, False
    faulty = {f.node_id for f in faults if isinstance(f, NodeFault)}
    for a in arrivals:
        best = a.snr_db if best is None else max(best, a.snr_db)
        loud = a.snr_db >= threshold_db
        would |= loud
        if a.node_id in faulty and node_down(faults, a.node_id, a.arrival_s):
            continue
        if loud:
            heard.add(a.node_id)
            first = a.arrival_s if first is None else min(first, a.arrival_s)
        else:
            reached.add(a.node_id)
    return Audience(sorted(heard), sorted(reached - heard), first,
                    _reason(bool(heard), would, best), _round(best))


def _track_audience(exposures: list[Exposure], faults, threshold_db: float) -> Audience:
    heard, reached, first, best, would = [], [], None, None, False
    for e in exposures:
        peak = float(e.snr_db.max())
        best = peak if best is None else max(best, peak)
        span = e.audible(threshold_db)
        would |= span is not None
        listening = _listening(faults, e.node_id, e.times_s)
        if span and not (node_down(faults, e.node_id, span[0]) and node_down(faults, e.node_id, span[1])):
            heard.append(e.node_id)
            first = span[0] if first is None else min(first, span[0])
        elif span is None and bool((listening & (e.snr_db >= REACH_SNR_DB)).any()):
            reached.append(e.node_id)
    return Audience(sorted(heard), sorted(reached), first, _reason(bool(heard), would, best),
                    _round(best), tuple(exposures))


def _listening(faults, node_id: int, times_s: np.ndarray) -> np.ndarray:
    if not any(isinstance(f, NodeFault) and f.node_id == node_id for f in faults):
        return np.ones(len(times_s), dtype=bool)
    return np.array([not node_down(faults, node_id, float(t)) for t in times_s], dtype=bool)


def heard_at(exposures, faults, threshold_db: float, samples: int) -> np.ndarray:
    """For a track's time samples (TRACK_STEP_S apart from its start): how many listening
    nodes hear it at or above the threshold."""
    count = np.zeros(samples, dtype=np.int64)
    for e in exposures:
        loud = (e.snr_db[:samples] >= threshold_db) & _listening(faults, e.node_id, e.times_s[:samples])
        count[: len(loud)] += loud
    return count


def _reason(heard: bool, would: bool, best: float | None) -> str | None:
    if heard:
        return None
    if would:
        return "nodes down"
    return "below the noise" if best is not None else "out of range"


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 1)
