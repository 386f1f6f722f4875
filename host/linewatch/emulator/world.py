"""The world of an emulated run: the contact line, its segments, the nodes along it and the air.

Each node has a true position and the position it reports (surveyed, with error), a clock
(nodeclock.py), a board (boards.py: thermometer, block stamps), a battery (linear discharge,
LiPo voltage curve) and a radio link (latency, loss, outage windows). The air (air.py) and
how kind all of it is follow the world's realism profile (profiles.py). Everything is drawn
deterministically from the seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from linewatch.geo import EARTH_RADIUS_M, ContactLine
from linewatch.emulator.air import Air
from linewatch.emulator.boards import BoardModel, StampTiming, Thermometer
from linewatch.emulator.nodeclock import (CLOCK_SOURCE_CODES, CLOCK_SOURCES,  # noqa: F401 (re-exported)
                                          FREE_RUNNING_ERROR_US, NodeClock, draw_clock,
                                          draw_field_clock)
from linewatch.emulator.profiles import IDEAL, Profile
from linewatch.emulator.randomness import stream

# LiPo open-circuit voltage against state of charge (0..1).
LIPO_CURVE = ((0.0, 3.30), (0.05, 3.50), (0.10, 3.60), (0.20, 3.70), (0.50, 3.80),
              (0.80, 3.95), (1.00, 4.20))


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
    board: BoardModel = BoardModel()

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
    humidity_pct: float | None = None     # None: the profile's (70 %)


@dataclass(frozen=True)
class Layout:
    """Where nodes go: rows at signed offsets from the line (+ left), one node per spacing."""
    row_offsets_m: tuple[float, ...] = (-300.0,)
    spacing_m: float = 1000.0
    stagger: bool = True              # second row shifted by half a spacing
    start_m: float = 0.0
    end_m: float | None = None        # None = to the end of the line
    position_error_m: float | None = None   # 1-sigma per axis, reported vs true (None: the
                                            # profile's survey error)
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
    profile: Profile = IDEAL
    _by_id: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({n.id: n for n in self.nodes})

    @cached_property
    def air(self) -> Air:
        env = self.environment
        return Air(env.temperature_c, env.wind_speed_mps, env.wind_from_deg, self.profile.air,
                   self.seed, self.line.vertices[0], self.start_utc_us, env.humidity_pct)

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
                start_utc_us: int, profile: Profile = IDEAL) -> tuple[Node, ...]:
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
                                    environment, radio, seed, start_utc_us, profile))
            along += layout.spacing_m
    return tuple(sorted(nodes, key=lambda n: n.id))


def _make_node(line, node_id, seg, row, along, offset, layout, environment, radio, seed,
               start_utc_us, profile: Profile):
    rng = stream(seed, "node", node_id)
    lat, lon = line.point_at(along, offset)
    sigma = profile.board.survey_error_m if layout.position_error_m is None else layout.position_error_m
    err_e, err_n = rng.normal(0.0, sigma, size=2)
    sources = [s for s, _ in layout.clock_mix]
    weights = np.array([w for _, w in layout.clock_mix], dtype=float)
    source = sources[int(rng.choice(len(sources), p=weights / weights.sum()))]
    clock = draw_clock(source, rng, start_utc_us)
    lo, hi = layout.battery_charge
    battery = Battery(layout.battery_mah, float(rng.uniform(lo, hi)), layout.battery_draw_ma)
    floor = float(rng.normal(environment.noise_floor_db, environment.noise_floor_spread_db))
    # What the field profile adds is drawn from a stream of its own, so the ideal world
    # stays the one it always was.
    extra = stream(seed, "board", node_id)
    board = _draw_board(profile, extra, node_id, seed)
    blunder = profile.board
    if blunder.survey_blunder_share > 0 and extra.random() < blunder.survey_blunder_share:
        angle = extra.uniform(0.0, 2.0 * math.pi)
        err_e += blunder.survey_blunder_m * math.sin(angle)
        err_n += blunder.survey_blunder_m * math.cos(angle)
    if profile.timing.clocks == "field":
        clock = draw_field_clock(source, board.kind, extra, start_utc_us, (seed << 20) ^ node_id)
    rep_lat, rep_lon = offset_latlon(lat, lon, err_e, err_n)
    return Node(node_id, seg, row, along, offset, lat, lon, rep_lat, rep_lon, clock, battery,
                radio, floor, board)


def _draw_board(profile: Profile, rng: np.random.Generator, node_id: int, seed: int) -> BoardModel:
    b, t = profile.board, profile.timing
    kind = "esp32" if rng.random() < b.esp32_share else "rp2"
    key = (seed << 24) ^ (node_id << 4)
    thermometer = Thermometer()
    if b.thermometer == "board":
        thermometer = Thermometer("board", float(rng.normal(0.0, b.sensor_offset_sd_c)), b.self_heating_c,
                                  b.sun_gain_c * float(rng.uniform(0.0, 1.0)), b.reading_noise_c, key ^ 1)
    stamps = StampTiming()
    if t.stamps == "driver":
        stamps = StampTiming(key ^ 2, t.wake_latency_ms * 1000.0, t.stall_per_s, t.stall_max_ms * 1000.0,
                             t.long_stall_per_h)
    return BoardModel(kind, thermometer, stamps)
