"""Scenario files (TOML) and generated scenarios: the line, the nodes, the environment, the
radio, and a timeline of sources and faults. See docs/scenarios.md for the format.

Every problem is reported with the file, the key and what was wrong, e.g.
`demo.toml: event[3].at.offset_m: expected a number, got 'far'`.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from linewatch.geo import ContactLine
from linewatch.emulator import profiles as pr
from linewatch.emulator import world as w
from linewatch.emulator.randomness import stream
from linewatch.emulator.nodeclock import CLOCK_FAULTS, with_fault
from linewatch.emulator.sources import (TAMPER_ACTIONS, VEHICLE_KINDS, VEHICLE_LEVEL_DB, ClockFault,
                                        Fault, Impulse, NodeFault, Outage, Source, Tamper, Track)

SCENARIO_DIR = Path(__file__).with_name("scenarios")
DEFAULT_START_UTC = "2026-11-25T06:00:00Z"
EVENT_TYPES = ("explosion", "artillery", "small_arms", "drone", "vehicle", "tamper",
               "node_failure", "node_reboot", "node_silent", "broker_outage", "network_outage",
               "clock_fault")
# what a clock fault does unless the scenario says: (offset ms, drift ppm)
CLOCK_FAULT_DEFAULTS = {"offset": (50.0, 0.0), "step": (50.0, 0.0), "drift": (0.0, 100.0),
                        "false_lock": (1000.0, 20.0)}
_REQUIRED = object()


class ScenarioError(ValueError):
    """A scenario is malformed: says which file, which key, and what was wrong."""

    def __init__(self, origin: str, key: str, problem: str):
        self.origin, self.key, self.problem = origin, key, problem
        super().__init__("%s: %s: %s" % (origin, key or "(top)", problem))


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    duration_s: float
    start_utc_us: int
    line_vertices: tuple[tuple[float, float], ...]
    segment_length_m: float
    layout: w.Layout
    environment: w.Environment
    radio: w.RadioLink
    sources: tuple[Source, ...] = ()
    faults: tuple[Fault, ...] = ()
    heartbeat_s: float = 10.0
    # the nodes' config.json "power" section (firmware/README.md): battery levels, quiet windows
    node_power: dict = field(default_factory=dict)
    origin: str = "<generated>"
    profile: pr.Profile = pr.PROFILES[pr.DEFAULT_PROFILE]
    _line: list = field(default_factory=list, repr=False, compare=False)

    @property
    def line(self) -> ContactLine:
        if not self._line:
            self._line.append(ContactLine(list(self.line_vertices)))
        return self._line[0]

    def build_world(self, start_utc_us: int | None = None) -> w.World:
        """The world for a run; start_utc_us overrides the file's start (real-time runs)."""
        start = self.start_utc_us if start_utc_us is None else start_utc_us
        line = self.line
        segments = w.make_segments(line, self.segment_length_m)
        nodes = w.place_nodes(line, segments, self.layout, self.environment, self.radio,
                              self.seed, start, self.profile)
        nodes = tuple(_apply_clock_faults(_apply_network_outages(n, self.faults), self.faults, start)
                      for n in nodes)
        return w.World(line, segments, nodes, self.environment, start, self.seed, self.profile)

    def with_profile(self, profile: pr.Profile | str) -> "Scenario":
        """The same scenario in another realism profile (the CLI's --profile)."""
        if isinstance(profile, str):
            profile = pr.profile(profile)
        return replace(self, profile=profile, _line=[])


def _apply_clock_faults(node: w.Node, faults, start_us: int) -> w.Node:
    clock = node.clock
    for f in faults:
        if isinstance(f, ClockFault) and f.node_id == node.id:
            clock = with_fault(clock, f.fault, start_us + int(f.time_s * 1e6), f.offset_ms * 1000.0,
                               f.drift_ppm, node.board.kind)
    return node if clock is node.clock else replace(node, clock=clock)


def _apply_network_outages(node: w.Node, faults) -> w.Node:
    radio = node.radio
    for f in faults:
        if isinstance(f, Outage) and f.kind == "network" and f.affects(node.id):
            radio = radio.with_outage(f.time_s, f.end_s)
    return node if radio is node.radio else replace(node, radio=radio)


# ---------------------------------------------------------------- reading

class _Table:
    """A TOML table with the file and key path it came from, for exact error messages."""

    def __init__(self, data: dict, origin: str, path: str = ""):
        self.data, self.origin, self.path = data, origin, path

    def key(self, name: str) -> str:
        return "%s.%s" % (self.path, name) if self.path else name

    def fail(self, name: str, problem: str):
        raise ScenarioError(self.origin, self.key(name) if name else self.path, problem)

    def has(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, default=_REQUIRED):
        if name not in self.data:
            if default is _REQUIRED:
                self.fail(name, "missing (required)")
            return default
        return self.data[name]

    def number(self, name, default=_REQUIRED, low=None, high=None, positive=False) -> float:
        value = self.get(name, default)
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(name, "expected a number, got %r" % (value,))
        if positive and value <= 0:
            self.fail(name, "must be > 0, got %r" % (value,))
        if low is not None and value < low:
            self.fail(name, "must be >= %r, got %r" % (low, value))
        if high is not None and value > high:
            self.fail(name, "must be <= %r, got %r" % (high, value))
        return float(value)

    def integer(self, name, default=_REQUIRED, low=None, high=None) -> int:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, "expected an integer, got %r" % (value,))
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(name, "must be in %s..%s, got %r" % (low, high, value))
        return value

    def string(self, name, default=_REQUIRED, choices=None) -> str:
        value = self.get(name, default)
        if not isinstance(value, str):
            self.fail(name, "expected a string, got %r" % (value,))
        if choices is not None and value not in choices:
            self.fail(name, "%r is not one of: %s" % (value, ", ".join(choices)))
        return value

    def boolean(self, name, default=_REQUIRED) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            self.fail(name, "expected true or false, got %r" % (value,))
        return value

    def table(self, name, required=False) -> "_Table":
        value = self.get(name, _REQUIRED if required else {})
        if not isinstance(value, dict):
            self.fail(name, "expected a table, got %r" % (value,))
        return _Table(value, self.origin, self.key(name))

    def items(self, name, required=False) -> list:
        value = self.get(name, _REQUIRED if required else [])
        if not isinstance(value, list):
            self.fail(name, "expected a list, got %r" % (value,))
        return value

    def only(self, *known: str) -> None:
        for name in self.data:
            if name not in known:
                self.fail(name, "unknown key (expected one of: %s)" % ", ".join(known))


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file; a bare name means a bundled scenario."""
    path = Path(path)
    if not path.exists() and path.parent == Path(".") and (SCENARIO_DIR / path.with_suffix(".toml")).exists():
        path = SCENARIO_DIR / path.with_suffix(".toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), "", "cannot read: %s" % exc.strerror) from None
    return loads(text, origin=str(path))


def loads(text: str, origin: str = "<string>") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(origin, "", "not valid TOML: %s" % exc) from None
    return parse(data, origin)


def parse(data: dict, origin: str = "<dict>") -> Scenario:
    top = _Table(data, origin)
    top.only("scenario", "line", "nodes", "environment", "radio", "realism", "event", "power")
    head = top.table("scenario", required=True)
    head.only("name", "seed", "duration_s", "start_utc", "heartbeat_s", "profile")
    profile = _parse_profile(head, top)
    vertices, segment_length = _parse_line(top.table("line", required=True))
    line = ContactLine(list(vertices))
    layout = _parse_layout(top.table("nodes", required=True), line)
    environment = _parse_environment(top.table("environment"))
    radio = _parse_radio(top.table("radio"))
    duration = head.number("duration_s", positive=True)
    sources, faults = _parse_timeline(top, line, duration)
    scenario = Scenario(
        name=head.string("name"), seed=head.integer("seed", 0, 0, 2**32 - 1), duration_s=duration,
        start_utc_us=_parse_utc(head, "start_utc"), line_vertices=vertices,
        segment_length_m=segment_length, layout=layout, environment=environment, radio=radio,
        sources=tuple(sources), faults=tuple(faults),
        heartbeat_s=head.number("heartbeat_s", 10.0, positive=True),
        node_power=_parse_power(data.get("power"), origin), origin=origin, profile=profile)
    _check_nodes_exist(scenario, top)
    return scenario


def _parse_power(raw, origin: str) -> dict:
    """The nodes' "power" config section, checked by the firmware's own config validation."""
    if raw is None:
        return {}
    from lwnode import config as node_config
    try:
        node_config.parse({"node": 1, "segment": 0, "key": "00" * 32, "position": {"lat": 0, "lon": 0},
                           "broker": {"host": "-"}, "board": "sim", "power": raw})
    except node_config.ConfigError as exc:
        raise ScenarioError(origin, "power", str(exc)) from None
    return dict(raw)


def _parse_profile(head: _Table, top: _Table) -> pr.Profile:
    base = pr.PROFILES[head.string("profile", pr.DEFAULT_PROFILE, tuple(sorted(pr.PROFILES)))]
    realism = top.table("realism")
    try:
        return pr.with_overrides(base, realism.data, realism.path)
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ScenarioError(top.origin, key, problem) from None


def _parse_utc(t: _Table, name: str) -> int:
    text = t.string(name, DEFAULT_START_UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        t.fail(name, "expected an ISO 8601 UTC time like %r, got %r" % (DEFAULT_START_UTC, text))
    if moment.tzinfo is None:
        t.fail(name, "give the time zone (end with Z for UTC), got %r" % text)
    delta = moment.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _parse_line(t: _Table):
    t.only("vertices", "segment_length_m")
    raw = t.items("vertices", required=True)
    if len(raw) < 2:
        t.fail("vertices", "a line needs at least two [lat, lon] vertices, got %d" % len(raw))
    vertices = []
    for i, v in enumerate(raw):
        vertices.append(_latlon_pair(t, "vertices[%d]" % i, v))
    for i, (a, b) in enumerate(zip(vertices, vertices[1:])):
        if a == b:
            t.fail("vertices[%d]" % (i + 1), "repeats the previous vertex")
    return tuple(vertices), t.number("segment_length_m", 10_000.0, positive=True)


def _latlon_pair(t: _Table, key: str, v) -> tuple[float, float]:
    if (not isinstance(v, list) or len(v) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
        t.fail(key, "expected [lat, lon] in degrees, got %r" % (v,))
    lat, lon = float(v[0]), float(v[1])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        t.fail(key, "latitude must be within ±90 and longitude within ±180, got %r" % (v,))
    return lat, lon


def _parse_layout(t: _Table, line: ContactLine) -> w.Layout:
    t.only("rows", "row_offsets_m", "spacing_m", "stagger", "start_m", "end_m",
           "position_error_m", "clock_sources", "battery")
    if t.has("rows") and t.has("row_offsets_m"):
        t.fail("rows", "give either rows (with the default offsets) or row_offsets_m, not both")
    if t.has("row_offsets_m"):
        offsets = t.items("row_offsets_m")
        if not 1 <= len(offsets) <= 2:
            t.fail("row_offsets_m", "one or two rows, got %d" % len(offsets))
        sub = _Table({"row_offsets_m[%d]" % i: v for i, v in enumerate(offsets)}, t.origin, t.path)
        offsets = tuple(sub.number("row_offsets_m[%d]" % i) for i in range(len(offsets)))
    else:
        rows = t.integer("rows", 1, 1, 2)
        offsets = (-300.0, -900.0)[:rows]
    start = t.number("start_m", 0.0, low=0.0, high=line.length_m)
    end = t.number("end_m", None, low=start, high=line.length_m + 1.0)
    mix = t.table("clock_sources")
    for name in mix.data:
        if name not in w.CLOCK_SOURCES:
            mix.fail(name, "unknown clock source (expected one of: %s)" % ", ".join(w.CLOCK_SOURCES))
    weights = tuple((name, mix.number(name, low=0.0)) for name in mix.data) or (("gps_pps", 1.0),)
    if sum(v for _, v in weights) <= 0:
        t.fail("clock_sources", "the shares must not all be zero")
    battery = t.table("battery")
    battery.only("capacity_mah", "draw_ma", "charge_min", "charge_max")
    charge_min = battery.number("charge_min", 0.6, low=0.0, high=1.0)
    return w.Layout(
        row_offsets_m=offsets, spacing_m=t.number("spacing_m", 1000.0, positive=True),
        stagger=t.boolean("stagger", True), start_m=start, end_m=end,
        position_error_m=t.number("position_error_m", None, low=0.0), clock_mix=weights,
        battery_mah=battery.number("capacity_mah", 3000.0, positive=True),
        battery_draw_ma=battery.number("draw_ma", 40.0, low=0.0),
        battery_charge=(charge_min, battery.number("charge_max", 1.0, low=charge_min, high=1.0)))


def _parse_environment(t: _Table) -> w.Environment:
    t.only("temperature_c", "noise_floor_db", "noise_floor_spread_db", "wind", "humidity_pct")
    wind = t.table("wind")
    wind.only("speed_mps", "from_deg")
    return w.Environment(
        temperature_c=t.number("temperature_c", 15.0, low=-60.0, high=60.0),
        noise_floor_db=t.number("noise_floor_db", 45.0, low=0.0, high=120.0),
        noise_floor_spread_db=t.number("noise_floor_spread_db", 3.0, low=0.0),
        wind_speed_mps=wind.number("speed_mps", 0.0, low=0.0, high=60.0),
        wind_from_deg=wind.number("from_deg", 0.0, low=0.0, high=360.0),
        humidity_pct=t.number("humidity_pct", None, low=0.0, high=100.0))


def _parse_radio(t: _Table) -> w.RadioLink:
    t.only("latency_ms", "latency_jitter_ms", "loss_probability", "retransmit_ms",
           "max_retransmissions")
    return w.RadioLink(
        latency_ms=t.number("latency_ms", 80.0, low=0.0),
        latency_jitter_ms=t.number("latency_jitter_ms", 20.0, low=0.0),
        loss_probability=t.number("loss_probability", 0.0, low=0.0, high=1.0),
        retransmit_ms=t.number("retransmit_ms", 200.0, low=1.0),
        max_retransmissions=t.integer("max_retransmissions", 4, low=0, high=15))


# ---------------------------------------------------------------- timeline

def _parse_timeline(top: _Table, line: ContactLine, duration: float):
    sources: list = []
    faults: list = []
    for i, raw in enumerate(top.items("event")):
        if not isinstance(raw, dict):
            top.fail("event[%d]" % i, "expected a table ([[event]]), got %r" % (raw,))
        t = _Table(raw, top.origin, "event[%d]" % i)
        kind = t.string("type", choices=EVENT_TYPES)
        time_s = t.number("time_s", low=0.0)
        if time_s > duration:
            t.fail("time_s", "%.1f s is after the scenario's end (%.1f s)" % (time_s, duration))
        ident = t.string("id", "S%03d" % (i + 1))
        made = _EVENT_PARSERS[kind](t, ident, time_s, line)
        for item in made:
            (faults if isinstance(item, (NodeFault, Outage, ClockFault)) else sources).append(item)
    ids = [s.id for s in sources]
    for s in sources:
        if ids.count(s.id) > 1:
            top.fail("event", "source id %r is used twice" % s.id)
    return sources, faults


def _place(t: _Table, name: str, line: ContactLine) -> tuple[float, float]:
    """A place is {along_m, offset_m} (metres along the line, + left) or {lat, lon}."""
    p = t.table(name, required=True)
    return _place_of(p, line)


def _place_of(p: _Table, line: ContactLine) -> tuple[float, float]:
    if p.has("lat") or p.has("lon"):
        p.only("lat", "lon")
        return p.number("lat", low=-90.0, high=90.0), p.number("lon", low=-180.0, high=180.0)
    p.only("along_m", "offset_m")
    along = p.number("along_m", low=0.0, high=line.length_m)
    return line.point_at(along, p.number("offset_m", 0.0))


def _path(t: _Table, line: ContactLine) -> tuple[tuple[float, float], ...]:
    raw = t.items("path", required=True)
    if len(raw) < 2:
        t.fail("path", "a path needs at least two places, got %d" % len(raw))
    places = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            t.fail("path[%d]" % i, "expected {along_m, offset_m} or {lat, lon}, got %r" % (item,))
        places.append(_place_of(_Table(item, t.origin, t.key("path[%d]" % i)), line))
    return tuple(places)


def _explosion(t, ident, time_s, line):
    t.only("type", "id", "time_s", "at", "level_db", "dominant_hz")
    lat, lon = _place(t, "at", line)
    return [Impulse(ident, "explosion", "explosion", time_s, lat, lon,
                    t.number("level_db", 150.0), t.number("dominant_hz", 80.0, positive=True))]


def _artillery(t, ident, time_s, line):
    t.only("type", "id", "time_s", "launch", "impact", "flight_s", "launch_level_db",
           "impact_level_db")
    launch, impact = _place(t, "launch", line), _place(t, "impact", line)
    from linewatch.geo import haversine_m
    flight = t.number("flight_s", haversine_m(*launch, *impact) / 300.0, positive=True)
    return [Impulse(ident + "-launch", "explosion", "launch", time_s, launch[0], launch[1],
                    t.number("launch_level_db", 145.0), 60.0),
            Impulse(ident + "-impact", "explosion", "impact", time_s + flight, impact[0], impact[1],
                    t.number("impact_level_db", 150.0), 80.0)]


def _small_arms(t, ident, time_s, line):
    t.only("type", "id", "time_s", "at", "shots", "interval_s", "level_db")
    lat, lon = _place(t, "at", line)
    return [Impulse(ident, "small_arms", "burst", time_s, lat, lon, t.number("level_db", 130.0),
                    1000.0, t.integer("shots", 10, 1, 1000),
                    t.number("interval_s", 0.1, positive=True))]


def _track(event_class, speed, altitude, level, fundamental):
    def parse(t, ident, time_s, line):
        t.only("type", "id", "time_s", "path", "speed_mps", "altitude_m", "level_db", "fundamental_hz")
        return [Track(ident, event_class, time_s, _path(t, line),
                      t.number("speed_mps", speed, positive=True),
                      t.number("altitude_m", altitude, low=0.0), t.number("level_db", level),
                      t.number("fundamental_hz", fundamental, positive=True))]
    return parse


def _vehicle(t, ident, time_s, line):
    t.only("type", "id", "time_s", "path", "kind", "speed_mps", "level_db", "fundamental_hz")
    kind = t.string("kind", "wheeled", VEHICLE_KINDS)
    return [Track(ident, "vehicle", time_s, _path(t, line), t.number("speed_mps", 10.0, positive=True),
                  0.0, t.number("level_db", VEHICLE_LEVEL_DB[kind]),
                  t.number("fundamental_hz", 40.0, positive=True), kind)]


def _node_id(t: _Table) -> int:
    return t.integer("node", low=0, high=0xFFFF)


def _tamper(t, ident, time_s, line):
    t.only("type", "id", "time_s", "node", "action", "duration_s")
    return [Tamper(ident, _node_id(t), time_s, t.string("action", "shake", TAMPER_ACTIONS),
                   t.number("duration_s", 5.0, positive=True))]


def _failure(t, ident, time_s, line):
    t.only("type", "id", "time_s", "node", "duration_s")
    return [NodeFault(_node_id(t), time_s, "failure", t.number("duration_s", None, positive=True))]


def _reboot(t, ident, time_s, line):
    t.only("type", "id", "time_s", "node", "duration_s")
    return [NodeFault(_node_id(t), time_s, "reboot", t.number("duration_s", 8.0, positive=True))]


def _silent(t, ident, time_s, line):
    t.only("type", "id", "time_s", "node", "duration_s")
    return [NodeFault(_node_id(t), time_s, "silent", t.number("duration_s", None, positive=True))]


def _clock_fault(t, ident, time_s, line):
    t.only("type", "id", "time_s", "node", "fault", "offset_ms", "drift_ppm")
    fault = t.string("fault", choices=CLOCK_FAULTS)
    offset, drift = CLOCK_FAULT_DEFAULTS[fault]
    return [ClockFault(_node_id(t), time_s, fault, t.number("offset_ms", offset),
                       t.number("drift_ppm", drift))]


def _broker_outage(t, ident, time_s, line):
    t.only("type", "id", "time_s", "duration_s")
    return [Outage("broker", time_s, t.number("duration_s", positive=True))]


def _network_outage(t, ident, time_s, line):
    t.only("type", "id", "time_s", "duration_s", "nodes")
    nodes = t.items("nodes")
    for i, n in enumerate(nodes):
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 0xFFFF:
            t.fail("nodes[%d]" % i, "expected a node id (0..0xFFFF), got %r" % (n,))
    return [Outage("network", time_s, t.number("duration_s", positive=True), tuple(nodes))]


_EVENT_PARSERS = {
    "explosion": _explosion, "artillery": _artillery, "small_arms": _small_arms,
    "drone": _track("drone", 25.0, 80.0, 95.0, 180.0),
    "vehicle": _vehicle,
    "tamper": _tamper, "node_failure": _failure, "node_reboot": _reboot, "node_silent": _silent,
    "broker_outage": _broker_outage, "network_outage": _network_outage,
    "clock_fault": _clock_fault,
}


def _check_nodes_exist(scenario: Scenario, top: _Table) -> None:
    """Events naming a node must name one the layout places (checked after the layout)."""
    world_ids = {n.id for n in scenario.build_world().nodes}
    for i, raw in enumerate(top.items("event")):
        named = [raw.get("node")] if "node" in raw else list(raw.get("nodes", []))
        for node_id in named:
            if node_id not in world_ids:
                raise ScenarioError(top.origin, "event[%d].node%s" % (i, "" if "node" in raw else "s"),
                                    "no node 0x%04X in this layout (nodes are 0x%04X..0x%04X)"
                                    % (node_id, min(world_ids), max(world_ids)))


def generate(seed: int, hours: float = 24.0, line_km: float = 1200.0, **options) -> Scenario:
    """A random day on the line, the same for the same arguments (see generator.py)."""
    from linewatch.emulator.generator import generate_scenario
    return generate_scenario(seed, hours, line_km, **options)
