"""The scorer's gates: when an incident is about a source, and which incident is whose.

The rules and why are in docs/scenarios.md ("Score"). In short:
- an impulse (blast, launch, impact, burst) is *located* by a `tdoa` fix of its class family
  within TIME_GATE_S of its time span and within DISTANCE_GATE_M of it, inside the fix's own
  95% ellipse grown by ELLIPSE_MARGIN_M;
- it is *heard* by an incident that does not claim a place (detection, hyperbola, mirror: two
  places, a straight row's mirror images) when one of
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
Pairs are one to one, by an optimal assignment: as many hits as the gates allow, then located
before heard, nearer before farther.
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
        # nearer in time to the source's own arrival at one of the incident's nodes first
        miss_s = self._miss_s(src, nodes, t)
        return Candidate(si, ii, "heard", 1.0 + min(0.99, miss_s / 100.0), None)

    def _miss_s(self, src: dict, nodes: list[int], t_us: int) -> float:
        """How far (s) the incident's time lies from the source's arrival (first to last shot,
        at a typical speed of sound) at the nearest-in-time of these nodes. Ranking by the
        farthest node's arrival, as before, gave one source's detection to another whose far
        arrival happened to fall near it."""
        start, end = src["time_utc_us"], src.get("end_utc_us") or src["time_utc_us"]
        best = math.inf
        for n in nodes:
            where = self.nodes.get(n)
            if where is None or "lat" not in src:
                continue
            travel_us = haversine_m(where[0], where[1], src["lat"], src["lon"]) / TYPICAL_SOUND_MPS * 1e6
            best = min(best, max(0.0, start + travel_us - t_us, t_us - end - travel_us))
        return (max(0.0, start - t_us, t_us - end) if best == math.inf else best) / 1e6

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
    """Hits, each source and incident at most once: {source: candidate}.

    An optimal assignment (Hungarian method, per group of sources and incidents that share
    candidates): as many hits as the gates allow, then the cheapest in all (located before
    heard, nearer before farther). Taking the cheapest pair first, as before, could give a
    source the one incident another source needed and leave that one unmatched."""
    edges = {}
    for c in candidates:
        if c.quality == "misplaced":
            continue
        key = (c.source, c.incident)
        if key not in edges or c.cost < edges[key].cost:
            edges[key] = c
    out = {}
    for sources, incidents in _groups(edges):
        rows, cols = sorted(sources), sorted(incidents)
        flip = len(rows) > len(cols)
        if flip:
            rows, cols = cols, rows
        cost = np.zeros((len(rows), len(cols)))
        for r, a in enumerate(rows):
            for k, b in enumerate(cols):
                c = edges.get((b, a) if flip else (a, b))
                if c is not None:
                    # every hit is worth more than any difference in cost: cardinality first
                    cost[r, k] = c.cost - _HIT_VALUE
        for r, k in _assign(cost):
            if cost[r, k] < 0:
                c = edges[(cols[k], rows[r]) if flip else (rows[r], cols[k])]
                out[c.source] = c
    return out


_HIT_VALUE = 1000.0


def _groups(edges: dict) -> list[tuple[set, set]]:
    """Connected groups of (sources, incidents) in the candidate graph."""
    adj: dict = {}
    for s, i in edges:
        adj.setdefault(("s", s), set()).add(("i", i))
        adj.setdefault(("i", i), set()).add(("s", s))
    seen, out = set(), []
    for start in sorted(adj):
        if start in seen:
            continue
        stack, group = [start], []
        seen.add(start)
        while stack:
            v = stack.pop()
            group.append(v)
            for w in sorted(adj[v]):
                if w not in seen:
                    seen.add(w)
                    stack.append(w)
        out.append(({v[1] for v in group if v[0] == "s"}, {v[1] for v in group if v[0] == "i"}))
    return out


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment of every row to a distinct column (rows <= columns): the
    shortest augmenting path form of the Hungarian method with potentials, O(n^2 m)."""
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=int)          # p[j]: row (1-based) assigned to column j; 0: none
    way = np.zeros(m + 1, dtype=int)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            delta, j1 = np.inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = cost[i0 - 1, j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    return [(int(p[j]) - 1, j - 1) for j in range(1, m + 1) if p[j]]
