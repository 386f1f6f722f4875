"""The world of an emulated run: the contact line, its segments and the nodes along it.

Each node has a true position and the position it reports, a clock (offset, drift, jitter
by clock source), a battery (linear discharge, LiPo voltage curve) and a radio link
(latency, loss, outage windows). Everything is drawn deterministically from the seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from linewatch.geo import EARTH_RADIUS_M, ContactLine
from linewatch.emulator.randomness import stream

CLOCK_SOURCES = ("none", "ntp", "gps_pps")        # wire codes 0, 1, 2
CLOCK_SOURCE_CODES = {name: code for code, name in enumerate(CLOCK_SOURCES)}
# The error a node with a free-running clock reports (it cannot know better).
FREE_RUNNING_ERROR_US = 60_000_000

# LiPo open-circuit voltage against state of charge (0..1).
LIPO_CURVE = ((0.0, 3.30), (0.05, 3.50), (0.10, 3.60), (0.20, 3.70), (0.50, 3.80),
              (0.80, 3.95), (1.00, 4.20))


@dataclass(frozen=True)
class NodeClock:
    """The node's idea of UTC: true time + offset + drift since the run began + jitter."""
    source: str
    offset_us: float
    drift_ppm: float
    jitter_us: float
    error_estimate_us: int
    reference_us: int = 0       # true UTC at which `offset_us` holds (the scenario start)

    def node_time_us(self, true_us: float, rng: np.random.Generator | None = None) -> int:
        t = true_us + self.offset_us + self.drift_ppm * 1e-6 * (true_us - self.reference_us)
        if rng is not None and self.jitter_us > 0:
            t += rng.normal(0.0, self.jitter_us)
        return int(round(t))

    def true_time_us(self, node_us: float) -> float:
        """Inverse of node_time_us without jitter."""
        return (node_us - self.offset_us + self.drift_ppm * 1e-6 * self.reference_us) / (
            1.0 + self.drift_ppm * 1e-6)

    @property
    def source_code(self) -> int:
        return CLOCK_SOURCE_CODES[self.source]


def draw_clock(source: str, rng: np.random.Generator, reference_us: int) -> NodeClock:
    """A clock typical of its source: GPS PPS ~1 us, NTP ~1-10 ms, none free-running."""
    if source == "gps_pps":
        return NodeClock(source, rng.normal(0.0, 1.0), 0.0, 1.0, 2, reference_us)
    if source == "ntp":
        sd_us = rng.uniform(1_000.0, 10_000.0)
        return NodeClock(source, rng.normal(0.0, sd_us), rng.normal(0.0, 0.2), 300.0,
                         int(2 * sd_us), reference_us)
    if source == "none":
        return NodeClock(source, rng.normal(0.0, 30e6), rng.normal(0.0, 20.0), 20.0,
                         FREE_RUNNING_ERROR_US, reference_us)
    raise ValueError("unknown clock source %r (expected one of %s)" % (source, ", ".join(CLOCK_SOURCES)))


@dataclass(frozen=True)
class Battery:
    """Constant average draw from a LiPo cell; no solar charging."""
    capacity_mah: float
    charge_at_start: float      # state of charge 0..1
    draw_ma: float

    def charge_at(self, elapsed_s: float) -> float:
        used = self.draw_ma * max(0.0, elapsed_s) / 3600.0 / self.capacity_mah
        return max(0.0, self.charge_at_start - used)

    def voltage_at(self, elapsed_s: float) -> float:
        soc = self.charge_at(elapsed_s)
        return float(np.interp(soc, [p[0] for p in LIPO_CURVE], [p[1] for p in LIPO_CURVE]))

    def millivolts_at(self, elapsed_s: float) -> int:
        return int(round(self.voltage_at(elapsed_s) * 1000))

    def empty_after_s(self) -> float:
        if self.draw_ma <= 0:
            return math.inf
        return self.charge_at_start * self.capacity_mah / self.draw_ma * 3600.0


@dataclass(frozen=True)
class RadioLink:
    """Uplink from a node to the broker: latency, independent losses, outage windows. A
    loss costs TCP a retransmission timeout (doubling each time); after
    `max_retransmissions` in a row it gives up and the link breaks (see radio.py)."""
    latency_ms: float = 80.0
    latency_jitter_ms: float = 20.0
    loss_probability: float = 0.0
    outages: tuple[tuple[float, float], ...] = ()     # [start_s, end_s) of scenario time
    retransmit_ms: float = 200.0
    max_retransmissions: int = 4

    def is_up(self, t_s: float) -> bool:
        return not any(start <= t_s < end for start, end in self.outages)

    def delivery_delay_s(self, t_s: float, rng: np.random.Generator) -> float | None:
        """Delay of one transmission at t_s, or None when it is lost (or the link is down)."""
        if not self.is_up(t_s) or rng.random() < self.loss_probability:
            return None
        return max(0.0, rng.normal(self.latency_ms, self.latency_jitter_ms)) / 1000.0

    def give_up_s(self) -> float:
        """From a write to TCP giving up on it: every retransmission timeout in a row."""
        return (self.latency_ms + self.retransmit_ms * (2 ** (self.max_retransmissions + 1) - 1)) / 1000.0

    def with_outage(self, start_s: float, end_s: float) -> "RadioLink":
        return replace(self, outages=tuple(sorted(self.outages + ((start_s, end_s),))))


@dataclass(frozen=True)
class Segment:
    number: int          # u8 on the wire, from 1
    start_m: float       # along the line
    end_m: float


@dataclass(frozen=True)
class Node:
    id: int                      # u16
    segment: int
    row: int                     # 0 = first row
    along_m: float
    offset_m: float              # + left of the line, - right
    lat: float                   # true position
    lon: float
    reported_lat: float          # what the node was told / its GPS says
    reported_lon: float
    clock: NodeClock
    battery: Battery
    radio: RadioLink
    noise_floor_db: float        # broadband background, dB SPL

    @property
    def name(self) -> str:
        return "0x%04X" % self.id

    @property
    def clock_source(self) -> str:
        return self.clock.source


@dataclass(frozen=True)
class Environment:
    temperature_c: float = 15.0
    noise_floor_db: float = 45.0
    noise_floor_spread_db: float = 3.0
    wind_speed_mps: float = 0.0
    wind_from_deg: float = 0.0


@dataclass(frozen=True)
class Layout:
    """Where nodes go: rows at signed offsets from the line (+ left), one node per spacing."""
    row_offsets_m: tuple[float, ...] = (-300.0,)
    spacing_m: float = 1000.0
    stagger: bool = True              # second row shifted by half a spacing
    start_m: float = 0.0
    end_m: float | None = None        # None = to the end of the line
    position_error_m: float = 5.0     # 1-sigma per axis, reported vs true
    clock_mix: tuple[tuple[str, float], ...] = (("gps_pps", 1.0),)
    battery_mah: float = 3000.0
    battery_draw_ma: float = 40.0
    battery_charge: tuple[float, float] = (0.6, 1.0)   # uniform range at start


def make_segments(line: ContactLine, segment_length_m: float) -> tuple[Segment, ...]:
    count = max(1, math.ceil(line.length_m / segment_length_m - 1e-9))
    if count > 255:
        raise ValueError("%d segments of %.0f m exceed the u8 segment number; make segments longer"
                         % (count, segment_length_m))
    return tuple(Segment(i + 1, i * segment_length_m, min(line.length_m, (i + 1) * segment_length_m))
                 for i in range(count))


def segment_at(segments: tuple[Segment, ...], along_m: float) -> int:
    for seg in segments:
        if along_m < seg.end_m:
            return seg.number
    return segments[-1].number


def offset_latlon(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (lat + math.degrees(north_m / EARTH_RADIUS_M),
            lon + math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat)))))


@dataclass(frozen=True)
class World:
    line: ContactLine
    segments: tuple[Segment, ...]
    nodes: tuple[Node, ...]
    environment: Environment
    start_utc_us: int
    seed: int
    _by_id: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({n.id: n for n in self.nodes})

    def node(self, node_id: int) -> Node:
        try:
            return self._by_id[node_id]
        except KeyError:
            raise KeyError("no node 0x%04X in this world" % node_id) from None

    def has_node(self, node_id: int) -> bool:
        return node_id in self._by_id

    @cached_property
    def node_ids(self) -> np.ndarray:
        return np.array([n.id for n in self.nodes], dtype=np.int64)

    @cached_property
    def node_lats(self) -> np.ndarray:
        return np.array([n.lat for n in self.nodes])

    @cached_property
    def node_lons(self) -> np.ndarray:
        return np.array([n.lon for n in self.nodes])

    @cached_property
    def noise_floors_db(self) -> np.ndarray:
        return np.array([n.noise_floor_db for n in self.nodes])


def place_nodes(line: ContactLine, segments: tuple[Segment, ...], layout: Layout,
                environment: Environment, radio: RadioLink, seed: int,
                start_utc_us: int) -> tuple[Node, ...]:
    """Nodes in rows along the line; id = segment << 8 | index within the segment (from 1)."""
    end_m = line.length_m if layout.end_m is None else min(layout.end_m, line.length_m)
    per_segment: dict[int, int] = {}
    nodes = []
    for row, offset in enumerate(layout.row_offsets_m):
        shift = layout.spacing_m / 2 if layout.stagger and row % 2 else 0.0
        along = layout.start_m + shift
        while along <= end_m + 1e-6:
            seg = segment_at(segments, along)
            per_segment[seg] = per_segment.get(seg, 0) + 1
            if per_segment[seg] > 255:
                raise ValueError("more than 255 nodes in segment %d: widen the spacing" % seg)
            node_id = (seg << 8) | per_segment[seg]
            nodes.append(_make_node(line, node_id, seg, row, along, offset, layout,
                                    environment, radio, seed, start_utc_us))
            along += layout.spacing_m
    return tuple(sorted(nodes, key=lambda n: n.id))


def _make_node(line, node_id, seg, row, along, offset, layout, environment, radio, seed, start_utc_us):
    rng = stream(seed, "node", node_id)
    lat, lon = line.point_at(along, offset)
    err_e, err_n = rng.normal(0.0, layout.position_error_m, size=2)
    rep_lat, rep_lon = offset_latlon(lat, lon, err_e, err_n)
    sources = [s for s, _ in layout.clock_mix]
    weights = np.array([w for _, w in layout.clock_mix], dtype=float)
    source = sources[int(rng.choice(len(sources), p=weights / weights.sum()))]
    clock = draw_clock(source, rng, start_utc_us)
    lo, hi = layout.battery_charge
    battery = Battery(layout.battery_mah, float(rng.uniform(lo, hi)), layout.battery_draw_ma)
    floor = float(rng.normal(environment.noise_floor_db, environment.noise_floor_spread_db))
    return Node(node_id, seg, row, along, offset, lat, lon, rep_lat, rep_lon, clock, battery,
                radio, floor)
