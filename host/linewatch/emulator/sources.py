"""What happens on the line: sound sources, tampering, node faults and outages.

Times are seconds from the scenario start; positions are true (lat, lon). Levels are dB SPL
at 1 m, RMS over the source's main burst (impulses) or steady emission (tracks).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from linewatch.geo import haversine_m

EVENT_CLASSES = ("unknown", "explosion", "small_arms", "drone", "vehicle", "tamper")
IMPULSE_KINDS = ("explosion", "launch", "impact", "burst")
TAMPER_ACTIONS = ("shake", "move", "open")


@dataclass(frozen=True)
class Impulse:
    """An explosion, an artillery launch or impact, or a burst of small-arms fire."""
    id: str
    event_class: str             # "explosion" | "small_arms"
    kind: str                    # one of IMPULSE_KINDS
    time_s: float                # first shot / detonation
    lat: float
    lon: float
    level_db: float
    dominant_hz: float
    shots: int = 1
    shot_interval_s: float = 0.1

    def shot_times_s(self) -> list[float]:
        return [self.time_s + i * self.shot_interval_s for i in range(self.shots)]

    @property
    def end_s(self) -> float:
        return self.time_s + (self.shots - 1) * self.shot_interval_s


VEHICLE_KINDS = ("wheeled", "tracked")
# Steady level at 1 m (dB SPL) when a scenario names none: a lorry ~80-85 dB at 15 m, a heavy
# tracked vehicle ~90 dB at 15 m.
VEHICLE_LEVEL_DB = {"wheeled": 105.0, "tracked": 113.0}


@dataclass(frozen=True)
class Track:
    """A drone or a vehicle moving along waypoints at a constant speed."""
    id: str
    event_class: str             # "drone" | "vehicle"
    time_s: float                # leaves the first waypoint
    waypoints: tuple[tuple[float, float], ...]
    speed_mps: float
    altitude_m: float
    level_db: float
    fundamental_hz: float        # drone blade-pass frequency; vehicle engine firing rate
    kind: str = ""               # vehicles: "wheeled" | "tracked" (VEHICLE_KINDS)

    @property
    def leg_lengths_m(self) -> list[float]:
        return [haversine_m(a[0], a[1], b[0], b[1]) for a, b in zip(self.waypoints, self.waypoints[1:])]

    @property
    def duration_s(self) -> float:
        return sum(self.leg_lengths_m) / self.speed_mps

    @property
    def end_s(self) -> float:
        return self.time_s + self.duration_s

    def positions_at(self, times_s) -> tuple[np.ndarray, np.ndarray]:
        """(lats, lons) at scenario times (clamped to the track's start and end)."""
        legs = self.leg_lengths_m
        along = np.concatenate([[0.0], np.cumsum(legs)])
        dist = np.clip((np.asarray(times_s, dtype=float) - self.time_s) * self.speed_mps, 0.0, along[-1])
        lats = np.interp(dist, along, [w[0] for w in self.waypoints])
        lons = np.interp(dist, along, [w[1] for w in self.waypoints])
        return lats, lons

    def position_at(self, time_s: float) -> tuple[float, float]:
        lats, lons = self.positions_at([time_s])
        return float(lats[0]), float(lons[0])


@dataclass(frozen=True)
class Tamper:
    """Someone handles a node: shakes it, moves it away, or opens its case."""
    id: str
    node_id: int
    time_s: float
    action: str = "shake"
    duration_s: float = 5.0
    event_class: str = "tamper"

    @property
    def end_s(self) -> float:
        return self.time_s + self.duration_s


@dataclass(frozen=True)
class NodeFault:
    """A node fails (dead for duration_s, or for good when None: its will tells the commission),
    reboots (down briefly), or goes silent (its microphone reads digital silence for duration_s,
    or for good, while the node stays connected and keeps its heartbeat)."""
    node_id: int
    time_s: float
    kind: str                    # "failure" | "reboot" | "silent"
    duration_s: float | None

    def down_during(self, time_s: float) -> bool:
        end = math.inf if self.duration_s is None else self.time_s + self.duration_s
        return self.time_s <= time_s < end


@dataclass(frozen=True)
class ClockFault:
    """A node's clock goes wrong from time_s on, and the node does not know (nodeclock.py):
    `offset`/`step` jump by offset_ms, `drift` adds drift_ppm, `false_lock` claims GPS PPS
    while off by offset_ms and drifting by drift_ppm."""
    node_id: int
    time_s: float
    fault: str                   # one of nodeclock.CLOCK_FAULTS
    offset_ms: float = 0.0
    drift_ppm: float = 0.0


@dataclass(frozen=True)
class Outage:
    """The broker, or the network of some nodes (all when node_ids is empty), is unreachable."""
    kind: str                    # "broker" | "network"
    time_s: float
    duration_s: float
    node_ids: tuple[int, ...] = ()

    @property
    def end_s(self) -> float:
        return self.time_s + self.duration_s

    def affects(self, node_id: int) -> bool:
        return self.kind == "broker" or not self.node_ids or node_id in self.node_ids


Source = Impulse | Track | Tamper
Fault = NodeFault | Outage | ClockFault


def node_down(faults, node_id: int, time_s: float) -> bool:
    """Whether a node is not listening at a time (failed, rebooting or silent)."""
    return any(isinstance(f, NodeFault) and f.node_id == node_id and f.down_during(time_s)
               for f in faults)
