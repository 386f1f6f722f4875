"""The scorer's gates: when an incident is about a source, and which incident is whose.

The rules and why are in docs/scenarios.md ("Score"). In short:
- an impulse (blast, launch, impact, burst) is *located* by a `tdoa` fix of its class family
  within TIME_GATE_S of its time span and within DISTANCE_GATE_M of it, inside the fix's own
  95% ellipse grown by ELLIPSE_MARGIN_M;
- it is *heard* by an incident that does not claim a place (detection, hyperbola) when one of
  the incident's nodes could hear it (truth: heard_by or reached_by) and the incident's time
  (an arrival at a node) lies between the source's time and its travel time to that node,
  widened by TIME_GATE_S and the clock error the nodes claim;
- a fix with the source's arrivals (a node that heard it, in the time gate) that lies outside
  the distance gate is *misplaced*: a false statement about a real source;
- a track (drone, vehicle) is followed by a track incident whose points lie, at their times,
  within TRACK_GATE_M of where the track was (median over the points);
- a line crossing is reported by a crossing incident (`crossing: {from, to}`) within
  CROSSING_TIME_GATE_S and TRACK_GATE_M of the true crossing;
- a tamper by a tamper incident naming the node within TAMPER_GATE_S (plus clock error).
Pairs are taken cheapest first, one to one: located before heard, nearer before farther.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from linewatch.geo import LocalFrame, haversine_m

FAMILIES = {
    "explosion": "explosion", "artillery": "explosion", "launch": "explosion", "impact": "explosion",
    "small_arms": "small_arms", "gunfire": "small_arms",
    "drone": "drone", "vehicle": "vehicle", "tamper": "tamper",
}
IMPULSES = ("explosion", "small_arms")
TRACKS = ("drone", "vehicle")
SIDES = ("L", "R")

DISTANCE_GATE_M = 250.0
ELLIPSE_MARGIN_M = 25.0
TIME_GATE_S = 2.0
# The slowest sound a non-located incident's arrival can have travelled at (-50 degC air).
SLOWEST_SOUND_MPS = 300.0
TYPICAL_SOUND_MPS = 340.0
TRACK_GATE_M = 1000.0
TRACK_TIME_SLACK_S = 30.0
CROSSING_TIME_GATE_S = 30.0
TAMPER_GATE_S = 10.0
# What a node with no time source claims when truth does not say (world.FREE_RUNNING_ERROR_US).
CLAIMED_CLOCK_ERROR_S = {"gps_pps": 0.0, "ntp": 0.05, "none": 60.0}


def family(cls) -> str | None:
    return FAMILIES.get(cls) if isinstance(cls, str) else None


def position(inc: dict) -> tuple[float, float] | None:
    lat, lon = inc.get("lat"), inc.get("lon")
    if isinstance(lat, (int, float)) and isinstance(lon, (int, float)) and not isinstance(lat, bool):
        return float(lat), float(lon)
    return None


def is_fix(inc: dict) -> bool:
    """An incident that claims a place: a TDOA fix with a position."""
    return inc.get("fix") == "tdoa" and position(inc) is not None


def nodes_of(inc: dict) -> list[int]:
    """The incident's node ids (anything else in the list is ignored)."""
    nodes = inc.get("nodes")
    if not isinstance(nodes, (list, tuple)):
        return []
    return [n for n in nodes if isinstance(n, int) and not isinstance(n, bool)]


def crossing_of(inc: dict) -> tuple[str, str] | None:
    c = inc.get("crossing")
    if isinstance(c, dict) and c.get("from") in SIDES and c.get("to") in SIDES:
        return c["from"], c["to"]
    return None


def inside_ellipse(inc: dict, lat: float, lon: float, margin_m: float = ELLIPSE_MARGIN_M) -> bool:
    """Whether (lat, lon) lies in the incident's 95% ellipse with both semi-axes grown by the
    margin. No ellipse (an unbounded direction): no constraint beyond the distance gate."""
    e = inc.get("ellipse_95")
    if not isinstance(e, dict):
        return True
    try:
        a, b = float(e["major_m"]) + margin_m, float(e["minor_m"]) + margin_m
        angle = math.radians(float(e["angle_deg"]))
    except (KeyError, TypeError, ValueError):
        return True
    if not (a > 0 and b > 0):
        return True
    x, y = LocalFrame(inc["lat"], inc["lon"]).to_xy(lat, lon)
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def track_position(src: dict, t_us: int) -> tuple[float, float]:
    path = src.get("path")
    if not path:
        return src["lat"], src["lon"]
    times = [p[0] for p in path]
    return (float(np.interp(t_us, times, [p[1] for p in path])),
            float(np.interp(t_us, times, [p[2] for p in path])))


@dataclass(frozen=True)
class Candidate:
    """An incident that passes a source's gates. quality: "located", "heard" (the hits),
    or "misplaced" (a fix with the source's arrivals outside the distance gate)."""
    source: int
    incident: int
    quality: str
    cost: float
    error_m: float | None        # fixes and tracks: distance to the source


class Gates:
    """The truth's nodes (position, claimed clock error) for the gates that need them."""

    def __init__(self, truth: dict):
        self.nodes = {}
        for n in truth.get("nodes") or ():
            claimed = n.get("reported_clock_error_us")
            claimed_s = claimed / 1e6 if isinstance(claimed, (int, float)) else \
                CLAIMED_CLOCK_ERROR_S.get(n.get("clock_source"), 0.0)
            self.nodes[n["id"]] = (n["lat"], n["lon"], claimed_s)

    # -- impulses --------------------------------------------------------------------------

    def impulse(self, si: int, src: dict, ii: int, inc: dict) -> Candidate | None:
        start, end = src["time_utc_us"], src.get("end_utc_us") or src["time_utc_us"]
        t = inc["time_utc_us"]
        listeners = set(src.get("heard_by") or ()) | set(src.get("reached_by") or ())
        nodes = [n for n in nodes_of(inc) if n in listeners]
        if is_fix(inc):
            dt_s = max(0, start - t, t - end) / 1e6
            if dt_s > TIME_GATE_S or "lat" not in src:
                return None
            lat, lon = position(inc)
            d = haversine_m(lat, lon, src["lat"], src["lon"])
            if d <= DISTANCE_GATE_M and inside_ellipse(inc, src["lat"], src["lon"]):
                return Candidate(si, ii, "located", d / DISTANCE_GATE_M, d)
            if nodes:
                return Candidate(si, ii, "misplaced", 2.0 + d / DISTANCE_GATE_M, d)
            return None
        if not nodes:
            return None
        travel_s, slack_s = self._reach(src, nodes)
        early_s = (start - t) / 1e6 - TIME_GATE_S - slack_s
        late_s = (t - end) / 1e6 - travel_s - TIME_GATE_S - slack_s
        if early_s > 0 or late_s > 0:
            return None
        # nearer in time to the source's own arrivals first
        expected_us = start + travel_s * SLOWEST_SOUND_MPS / TYPICAL_SOUND_MPS * 1e6
        return Candidate(si, ii, "heard", 1.0 + min(0.99, abs(t - expected_us) / 1e8), None)

    def _reach(self, src: dict, nodes: list[int]) -> tuple[float, float]:
        """(longest travel time from the source to these nodes at the slowest sound, the
        largest clock error they claim), in seconds."""
        travel, slack = 0.0, 0.0
        for n in nodes:
            where = self.nodes.get(n)
            if where is None:
                continue
            if "lat" in src:
                travel = max(travel, haversine_m(where[0], where[1], src["lat"], src["lon"]) / SLOWEST_SOUND_MPS)
            slack = max(slack, where[2])
        return travel, slack

    # -- tracks, crossings, tamper ---------------------------------------------------------

    def track(self, si: int, src: dict, ii: int, inc: dict) -> Candidate | None:
        points = inc.get("track")
        points = [p for p in points if _point(p)] if isinstance(points, (list, tuple)) else []
        if not points:
            where = position(inc)
            if where is None:
                return None
            points = [(inc["time_utc_us"], *where)]
        start, end = src["time_utc_us"], src.get("end_utc_us") or src["time_utc_us"]
        slack = TRACK_TIME_SLACK_S * 1e6
        if any(p[0] < start - slack or p[0] > end + slack for p in points):
            return None
        dists = [haversine_m(p[1], p[2], *track_position(src, p[0])) for p in points]
        d = float(np.median(dists))
        if d > TRACK_GATE_M:
            return None
        return Candidate(si, ii, "located", d / TRACK_GATE_M, d)

    def crossing(self, ci: int, crossing: dict, ii: int, inc: dict) -> Candidate | None:
        where = position(inc)
        if where is None:
            return None
        dt_s = abs(inc["time_utc_us"] - crossing["time_utc_us"]) / 1e6
        d = haversine_m(*where, crossing["lat"], crossing["lon"])
        if dt_s > CROSSING_TIME_GATE_S or d > TRACK_GATE_M:
            return None
        return Candidate(ci, ii, "located", d / TRACK_GATE_M + dt_s / CROSSING_TIME_GATE_S, d)

    def tamper(self, si: int, src: dict, ii: int, inc: dict) -> Candidate | None:
        node = src.get("node")
        if node is None or node not in nodes_of(inc):
            return None
        slack_s = TAMPER_GATE_S + self.nodes.get(node, (0, 0, 0.0))[2]
        start, end = src["time_utc_us"], src.get("end_utc_us") or src["time_utc_us"]
        dt_s = max(0, start - inc["time_utc_us"], inc["time_utc_us"] - end) / 1e6
        if dt_s > slack_s:
            return None
        return Candidate(si, ii, "heard", 1.0 + dt_s / slack_s, None)


def _point(p) -> bool:
    return isinstance(p, (list, tuple)) and len(p) == 3 and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in p)


def one_to_one(candidates: list[Candidate]) -> dict[int, Candidate]:
    """Hits taken cheapest first, each source and incident once: {source: candidate}."""
    used_s, used_i, out = set(), set(), {}
    for c in sorted((c for c in candidates if c.quality != "misplaced"),
                    key=lambda c: (c.cost, c.source, c.incident)):
        if c.source not in used_s and c.incident not in used_i:
            used_s.add(c.source)
            used_i.add(c.incident)
            out[c.source] = c
    return out
