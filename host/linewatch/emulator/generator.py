"""A random stretch of time on a random line, deterministic per seed.

Rates are per hour for a 1,200 km line and scale with the line's length: the defaults
describe a tense ceasefire (artillery duels, small-arms exchanges, drones over the line).
"""
from __future__ import annotations

import math

import numpy as np

from linewatch.geo import ContactLine, EARTH_RADIUS_M
from linewatch.emulator import profiles as pr
from linewatch.emulator import world as w
from linewatch.emulator.randomness import stream
from linewatch.emulator.scenario import DEFAULT_START_UTC, Scenario, ScenarioError, _parse_utc, _Table
from linewatch.emulator.sources import VEHICLE_LEVEL_DB, ClockFault, Impulse, NodeFault, Outage, Tamper, Track
from linewatch.geo import haversine_m

REFERENCE_LINE_KM = 1200.0
DEFAULT_RATES_PER_HOUR = {
    "artillery": 30.0, "explosion": 15.0, "small_arms": 40.0, "drone": 10.0, "vehicle": 20.0,
    "tamper": 0.5, "node_reboot": 2.0, "node_failure": 0.2, "node_silent": 0.2, "network_outage": 0.5,
    "broker_outage": 1.0 / 24.0, "clock_fault": 2.0,
}
VERTEX_SPACING_M = 20_000.0


def generate_scenario(seed: int, hours: float = 24.0, line_km: float = 1200.0, *,
                      spacing_m: float = 1000.0, rows: int = 1, segment_km: float = 10.0,
                      rates_per_hour: dict | None = None, start_utc: str = DEFAULT_START_UTC,
                      name: str | None = None,
                      profile: pr.Profile | str = pr.DEFAULT_PROFILE) -> Scenario:
    origin = "generate(seed=%d)" % seed
    if hours <= 0 or line_km <= 0:
        raise ScenarioError(origin, "hours" if hours <= 0 else "line_km", "must be > 0")
    if rows not in (1, 2):
        raise ScenarioError(origin, "rows", "one or two rows, got %r" % (rows,))
    try:
        realism = pr.profile(profile) if isinstance(profile, str) else profile
    except ValueError as exc:
        raise ScenarioError(origin, "profile", str(exc)) from None
    rates = dict(DEFAULT_RATES_PER_HOUR)
    for key, value in (rates_per_hour or {}).items():
        if key not in rates:
            raise ScenarioError(origin, "rates_per_hour.%s" % key, "unknown event type")
        rates[key] = float(value)
    vertices = _random_line(stream(seed, "line"), line_km * 1000.0)
    line = ContactLine(list(vertices))
    layout = w.Layout(row_offsets_m=(-300.0, -900.0)[:rows], spacing_m=spacing_m,
                      clock_mix=(("gps_pps", 0.6), ("ntp", 0.3), ("none", 0.1)))
    base = Scenario(
        name=name or "generated-%d" % seed, seed=seed, duration_s=hours * 3600.0,
        start_utc_us=_parse_utc(_Table({"start_utc": start_utc}, origin), "start_utc"),
        line_vertices=vertices, segment_length_m=segment_km * 1000.0, layout=layout,
        environment=_environment(seed, realism),
        radio=w.RadioLink(loss_probability=0.01), origin=origin, profile=realism)
    try:
        node_ids = [n.id for n in base.build_world().nodes]
    except ValueError as exc:
        raise ScenarioError(origin, "segment_km", str(exc)) from None
    scale = line_km / REFERENCE_LINE_KM
    sources, faults = [], []
    for kind in DEFAULT_RATES_PER_HOUR:
        if kind == "clock_fault" and realism.timing.clocks != "field":
            continue                    # the ideal world's clocks never went wrong
        rng = stream(seed, "events", kind)
        count = int(rng.poisson(rates[kind] * hours * (1.0 if kind == "broker_outage" else scale)))
        times = np.sort(rng.uniform(0.0, base.duration_s, count))
        for i, t in enumerate(times):
            made = _EVENT_MAKERS[kind](rng, "%s-%05d" % (kind, i + 1), float(t), line, node_ids)
            for item in made:
                if item.time_s < base.duration_s:
                    (faults if isinstance(item, (NodeFault, Outage, ClockFault)) else sources).append(item)
    sources.sort(key=lambda s: (s.time_s, s.id))
    faults.sort(key=lambda f: (f.time_s, getattr(f, "node_id", -1)))
    return Scenario(**{**base.__dict__, "sources": tuple(sources), "faults": tuple(faults),
                       "_line": []})


def _environment(seed: int, realism: pr.Profile) -> w.Environment:
    """The day's weather: a temperature (and, where the air is the field's, a wind from any
    side, Weibull-distributed around 4-5 m/s as near the ground on open land, and a humidity);
    the ideal air stays calm, as generated days always were."""
    temperature = float(stream(seed, "env").uniform(-5, 25))
    if realism.air.model != "field":
        return w.Environment(temperature_c=temperature)
    rng = stream(seed, "wind")
    return w.Environment(temperature_c=temperature, wind_speed_mps=round(float(5.0 * rng.weibull(2.0)), 1),
                         wind_from_deg=round(float(rng.uniform(0.0, 360.0)), 0),
                         humidity_pct=round(float(rng.uniform(40.0, 95.0)), 0))


def _random_line(rng: np.random.Generator, length_m: float) -> tuple[tuple[float, float], ...]:
    """A wandering line heading roughly south-south-east from 49.5 N 37.5 E."""
    lat, lon = 49.5, 37.5
    heading = math.radians(160.0)
    vertices = [(lat, lon)]
    done = 0.0
    while done < length_m - 1e-6:
        step = min(VERTEX_SPACING_M, length_m - done)
        heading += math.radians(float(rng.normal(0.0, 15.0)))
        heading = min(max(heading, math.radians(100.0)), math.radians(220.0))
        lat += math.degrees(step * math.cos(heading) / EARTH_RADIUS_M)
        lon += math.degrees(step * math.sin(heading) / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
        vertices.append((round(lat, 6), round(lon, 6)))
        done += step
    return tuple(vertices)


def _side(rng) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def _artillery(rng, ident, t, line, node_ids):
    along = rng.uniform(0.0, line.length_m)
    side = _side(rng)
    launch = line.point_at(along, side * rng.uniform(3_000.0, 15_000.0))
    impact = line.point_at(min(line.length_m, along + rng.normal(0.0, 1500.0)),
                           -side * rng.uniform(0.0, 3_000.0))
    flight = haversine_m(*launch, *impact) / 300.0
    return [Impulse(ident + "-launch", "explosion", "launch", t, *launch,
                    float(rng.normal(145.0, 3.0)), 60.0),
            Impulse(ident + "-impact", "explosion", "impact", t + flight, *impact,
                    float(rng.normal(150.0, 3.0)), 80.0)]


def _explosion(rng, ident, t, line, node_ids):
    at = line.point_at(rng.uniform(0.0, line.length_m), rng.normal(0.0, 1500.0))
    return [Impulse(ident, "explosion", "explosion", t, *at, float(rng.normal(145.0, 5.0)), 80.0)]


def _small_arms(rng, ident, t, line, node_ids):
    at = line.point_at(rng.uniform(0.0, line.length_m), rng.normal(0.0, 600.0))
    return [Impulse(ident, "small_arms", "burst", t, *at, float(rng.normal(130.0, 3.0)), 1000.0,
                    int(rng.integers(1, 30)), float(rng.uniform(0.07, 0.15)))]


def _drone(rng, ident, t, line, node_ids):
    along = rng.uniform(0.0, line.length_m)
    side = _side(rng)
    path = (line.point_at(along, side * rng.uniform(2_000.0, 5_000.0)),
            line.point_at(min(line.length_m, along + rng.normal(0.0, 1000.0)),
                          -side * rng.uniform(500.0, 3_000.0)))
    # small drones as they are: 5-30 m/s, 30-150 m up, 75-95 dB at 1 m, blade pass 100-400 Hz
    return [Track(ident, "drone", t, path, float(rng.uniform(5.0, 30.0)),
                  float(rng.uniform(30.0, 150.0)), float(rng.uniform(75.0, 95.0)),
                  float(rng.uniform(100.0, 400.0)))]


def _vehicle(rng, ident, t, line, node_ids):
    along = rng.uniform(0.0, line.length_m - 3_000.0) if line.length_m > 3_000.0 else 0.0
    offset = _side(rng) * rng.uniform(400.0, 4_000.0)
    path = (line.point_at(along, offset), line.point_at(along + 2_500.0, offset))
    speed, level, engine = float(rng.uniform(5.0, 15.0)), float(rng.normal(0.0, 3.0)), float(rng.uniform(25.0, 60.0))
    kind = "tracked" if rng.random() < 1 / 3 else "wheeled"      # a third of them tracked
    return [Track(ident, "vehicle", t, path, speed, 0.0, VEHICLE_LEVEL_DB[kind] + level, engine, kind)]


def _tamper(rng, ident, t, line, node_ids):
    action = ("shake", "move", "open")[int(rng.integers(0, 3))]
    return [Tamper(ident, int(rng.choice(node_ids)), t, action, float(rng.uniform(2.0, 20.0)))]


def _reboot(rng, ident, t, line, node_ids):
    return [NodeFault(int(rng.choice(node_ids)), t, "reboot", float(rng.uniform(5.0, 15.0)))]


def _failure(rng, ident, t, line, node_ids):
    return [NodeFault(int(rng.choice(node_ids)), t, "failure",
                      None if rng.random() < 0.5 else float(rng.uniform(600.0, 7200.0)))]


def _silent(rng, ident, t, line, node_ids):
    return [NodeFault(int(rng.choice(node_ids)), t, "silent",
                      None if rng.random() < 0.5 else float(rng.uniform(600.0, 7200.0)))]


def _network_outage(rng, ident, t, line, node_ids):
    first = int(rng.integers(0, len(node_ids)))
    group = tuple(node_ids[first:first + int(rng.integers(1, 20))])
    return [Outage("network", t, float(rng.uniform(30.0, 1800.0)), group)]


def _clock_fault(rng, ident, t, line, node_ids):
    """A clock gone wrong: an NTP step, a crystal drifting off, a receiver that claims a lock
    it does not have (whole seconds off), or a clock off from the start."""
    fault = ("step", "drift", "false_lock", "offset")[int(rng.choice(4, p=(0.4, 0.2, 0.2, 0.2)))]
    node = int(rng.choice(node_ids))
    if fault == "drift":
        return [ClockFault(node, t, fault, 0.0, float(rng.choice((-1.0, 1.0)) * rng.uniform(50.0, 500.0)))]
    if fault == "false_lock":
        return [ClockFault(node, t, fault, float(rng.choice((-1.0, 1.0)) * rng.integers(1, 20) * 1000.0),
                           float(rng.normal(0.0, 20.0)))]
    return [ClockFault(node, 0.0 if fault == "offset" else t, fault,
                       float(rng.choice((-1.0, 1.0)) * rng.uniform(20.0, 2000.0)), 0.0)]


def _broker_outage(rng, ident, t, line, node_ids):
    return [Outage("broker", t, float(rng.uniform(10.0, 300.0)))]


_EVENT_MAKERS = {
    "artillery": _artillery, "explosion": _explosion, "small_arms": _small_arms,
    "drone": _drone, "vehicle": _vehicle, "tamper": _tamper, "node_reboot": _reboot,
    "node_failure": _failure, "node_silent": _silent, "network_outage": _network_outage, "broker_outage": _broker_outage,
    "clock_fault": _clock_fault,
}
