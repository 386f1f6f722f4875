"""Arrivals of an impulse as the nodes would report them, without running the detectors: the
world's own propagation (air.py through hearing.py), clocks (nodeclock.py) and block stamps
(boards.py) dated by the firmware's own timeline (lwnode.clock.SampleTimeline over the second
of blocks before the arrival, as the emulator's audio windows begin), plus the detector's
onset error as a Gaussian (profiles.TimingProfile.pick_sd_ms, measured from the real detector
through the emulator: tools/bench/event_timing.py). For benchmarks that draw thousands of
sources (tools/bench/fusion_accuracy.py):

    world = bench_world([(lat, lon), ...], profile="field", seed=1, wind=(4.0, 270.0))
    for obs in observe(Impulse("s1", "explosion", "explosion", 0.0, lat, lon, 150.0, 80.0),
                       world, rng):
        if obs.heard: ...  obs.reported_utc_us, obs.error_us, obs.clock_source, obs.level_db

Everything random per trial (path jitter and level scatter, clock jitter, onset error) is
drawn from `rng`; the world's fields (temperature, wind, clock offsets, board delays) are the
world's, fixed by its seed. Same code as the emulator's truth and audio.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from linewatch.emulator import profiles as pr
from linewatch.emulator import world as w
from linewatch.emulator.boards import STAMP_ERROR_US
from linewatch.emulator.hearing import DETECTION_GAIN_DB, impulse_paths
from linewatch.emulator.propagation import DETECTION_SNR_DB
from linewatch.emulator.sources import Impulse
from linewatch.geo import ContactLine
from lwnode.clock import SampleTimeline
from lwproto.const import CLOCK_ERROR_MAX_US

FIRMWARE_DRIFT_PPM = 50          # firmware/clock.py: the allowance added since the last sync
RATE = 16_000
BLOCK = 512
PREROLL_BLOCKS = 32              # a second of blocks before the arrival's
DEFAULT_START_UTC_US = 1_795_586_400_000_000     # 2026-11-25T06:00:00Z


@dataclass(frozen=True)
class Observation:
    node_id: int
    heard: bool                  # received SNR (detection gain included) >= the threshold
    true_arrival_utc_us: float   # when the wavefront reached the node
    reported_utc_us: int         # the onset as the node's event frame dates it
    error_us: int                # the clock error the frame states
    clock_source: str            # what the frame says: gps_pps, ntp or none
    distance_m: float
    level_db: float              # received, dB SPL
    snr_db: float


def observe(source: Impulse, world: w.World, rng: np.random.Generator, shot: int = 0,
            threshold_db: float = DETECTION_SNR_DB,
            paths_rng: np.random.Generator | None = None) -> list[Observation]:
    """One observation per node of the world (heard or not), in world.nodes order.
    `paths_rng` draws the per-path jitter and scatter instead of `rng` (the world's own
    stream for the source, `randomness.stream(world.seed, "path", source.id)`, gives the
    paths truth.json is built from)."""
    paths = impulse_paths(world, source, rng if paths_rng is None else paths_rng)
    gain = DETECTION_GAIN_DB.get(source.event_class, 0.0)
    snr = paths.level_db - world.noise_floors_db + gain
    pick_sd_us = world.profile.timing.pick_sd_ms * 1000.0
    emitted_us = world.start_utc_us + (source.time_s + shot * source.shot_interval_s) * 1e6
    out = []
    for i, node in enumerate(world.nodes):
        true_us = emitted_us + float(paths.delay_s[i]) * 1e6
        stamp = _dated(node, true_us, rng)
        if pick_sd_us > 0:
            stamp += int(round(rng.normal(0.0, pick_sd_us)))
        source_name, error = node.clock.reported(true_us)
        synced = node.clock.synced_true_us(true_us)
        if source_name != "none":
            if synced is not None:
                error += max(0, int((true_us - synced) * FIRMWARE_DRIFT_PPM // 1_000_000))
            if not node.board.stamps.exact:
                error += STAMP_ERROR_US
        out.append(Observation(node.id, bool(snr[i] >= threshold_db), true_us, int(stamp),
                               int(min(error, CLOCK_ERROR_MAX_US)), source_name,
                               float(paths.distance_m[i]), float(paths.level_db[i]), float(snr[i])))
    return out


def _dated(node: w.Node, true_us: float, rng: np.random.Generator) -> int:
    """The node's date of a sound reaching it at true_us: its clock, and for boards whose
    blocks are stamped late, the firmware's timeline over the blocks before."""
    stamps = node.board.stamps
    if stamps.exact:
        return node.clock.node_time_us(true_us, rng)
    block_us = BLOCK * 1_000_000 // RATE
    last = int(true_us // block_us) + 1                 # the block holding the arrival
    line = SampleTimeline(RATE)
    for k in range(last - PREROLL_BLOCKS, last + 1):
        end = k * block_us
        line.mark((k - last + PREROLL_BLOCKS + 1) * BLOCK,
                  node.clock.node_time_us(end) + stamps.delay_us(end))
    index = (PREROLL_BLOCKS + 1) * BLOCK - int(round((last * block_us - true_us) * RATE / 1e6))
    return int(line.utc_of(index))


def bench_world(positions, profile: pr.Profile | str = "field", seed: int = 0,
                temperature_c: float = 15.0, wind: tuple[float, float] = (0.0, 0.0),
                clock_mix: tuple[tuple[str, float], ...] = (("gps_pps", 1.0),),
                noise_floor_db: float = 45.0, start_utc_us: int = DEFAULT_START_UTC_US,
                line: ContactLine | None = None) -> w.World:
    """A world of nodes at the given true (lat, lon) positions, for `observe`: the scenario's
    machinery without a scenario file. `wind` is (speed m/s, from degrees); the line (for the
    air's origin) defaults to the first and last node."""
    if isinstance(profile, str):
        profile = pr.profile(profile)
    positions = [(float(a), float(b)) for a, b in positions]
    if line is None:
        first, last = positions[0], positions[-1]
        if first == last:
            last = (first[0] + 0.01, first[1])
        line = ContactLine([first, last])
    env = w.Environment(temperature_c=temperature_c, noise_floor_db=noise_floor_db,
                        noise_floor_spread_db=0.0, wind_speed_mps=wind[0], wind_from_deg=wind[1])
    layout = w.Layout(clock_mix=clock_mix)
    segment = w.Segment(1, 0.0, line.length_m)
    nodes = []
    for k, (lat, lon) in enumerate(positions):
        pos = line.locate(lat, lon)
        node = w._make_node(line, 0x0100 + k + 1, 1, 0, pos.along_m, 0.0, layout, env,
                            w.RadioLink(), seed, start_utc_us, profile)
        dlat, dlon = node.reported_lat - node.lat, node.reported_lon - node.lon
        nodes.append(_moved(node, lat, lon, lat + dlat, lon + dlon))
    return w.World(line, (segment,), tuple(nodes), env, start_utc_us, seed, profile)


def _moved(node: w.Node, lat: float, lon: float, rep_lat: float, rep_lon: float) -> w.Node:
    from dataclasses import replace
    return replace(node, lat=lat, lon=lon, reported_lat=rep_lat, reported_lon=rep_lon,
                   along_m=math.nan, offset_m=math.nan)


def background_reports(world: w.World, duration_s: float, rng: np.random.Generator,
                       rain: bool = False) -> list[tuple[int, float, str]]:
    """(node id, true time s, class) of what the nodes' detectors report from the background
    alone over a run, at the rates measured with the real detectors (false_alarms.py: the
    steady background at the world's wind, plus the transients at the profile's rates), for
    benchmarks that render no audio. Sorted by time."""
    from linewatch.emulator.false_alarms import per_node_hour
    rates = per_node_hour(world.profile, world.environment.wind_speed_mps, rain)
    out = []
    for node in world.nodes:
        for cls, rate in sorted(rates.items()):
            for t in rng.uniform(0.0, duration_s, rng.poisson(rate * duration_s / 3600.0)):
                out.append((node.id, float(t), cls))
    return sorted(out, key=lambda x: x[1])
