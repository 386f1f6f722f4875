"""How well the commission saw what happened: match incidents to the truth and count.

Matching: an incident can match a source of the same class family whose time span (first
to last shot, start to end of a track) lies within the family's window of the incident's
time; pairs are taken cheapest first (time offset relative to the window, plus distance
relative to 10 km when the incident has a position), one-to-one.

Figures: detection rate (of sources heard by at least one node), false incidents (matched
to nothing), localization error (incidents with a tdoa/hyperbola fix; tracks: distance to
where the track was at the incident's time), side-of-line accuracy (sources more than
200 m from the line; tracks count from where they came from), alert latency (formed_at_us
minus the source's time; tracks: minus the time a node could first hear them).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from linewatch.geo import haversine_m

FAMILIES = {
    "explosion": "explosion", "artillery": "explosion", "launch": "explosion", "impact": "explosion",
    "small_arms": "small_arms", "gunfire": "small_arms",
    "drone": "drone", "vehicle": "vehicle", "tamper": "tamper",
}
MATCH_WINDOW_S = {"explosion": 10.0, "small_arms": 10.0, "drone": 60.0, "vehicle": 60.0,
                  "tamper": 60.0}
FIX_KINDS = ("tdoa", "hyperbola")
SIDE_MIN_DISTANCE_M = 200.0
IGNORED_STATUSES = ("dismissed", "retracted")
DISTANCE_SCALE_M = 10_000.0
TRACKS = ("drone", "vehicle")


def load_incidents(path: str | Path) -> list[dict]:
    """Incidents from JSON lines; a later line with the same id replaces the earlier one."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError("%s: cannot read: %s" % (path, exc.strerror)) from None
    latest: dict = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            incident = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError("%s:%d: not JSON: %s" % (path, number, exc.msg)) from None
        problem = _incident_problem(incident)
        if problem:
            raise ValueError("%s:%d: %s" % (path, number, problem))
        latest.pop(incident["id"], None)
        latest[incident["id"]] = incident
    return list(latest.values())


def withdrawn(incident: dict) -> bool:
    """Fusion withdraws an incident whose reports all moved to others: its last version is
    final with no reports. It is no longer an incident, so it is neither a hit nor false."""
    return incident.get("provisional") is False and incident.get("reports") == []


def _incident_problem(incident) -> str | None:
    if not isinstance(incident, dict):
        return "expected an incident object, got %s" % type(incident).__name__
    for key in ("id", "class", "time_utc_us"):
        if key not in incident:
            return "incident without %r" % key
    if not isinstance(incident["time_utc_us"], int) or isinstance(incident["time_utc_us"], bool):
        return "incident %r: time_utc_us must be an integer" % (incident["id"],)
    return None


def family(cls) -> str | None:
    return FAMILIES.get(cls) if isinstance(cls, str) else None


def score(truth: dict, incidents: list[dict], windows_s: dict | None = None) -> dict:
    windows = {**MATCH_WINDOW_S, **(windows_s or {})}
    incidents = [i for i in incidents if i.get("status") not in IGNORED_STATUSES and not withdrawn(i)]
    sources = truth["sources"]
    pairs = _match(sources, incidents, windows)
    matched_src = {si: ii for si, ii in pairs}
    matched_inc = {ii for _, ii in pairs}
    heard = [i for i, s in enumerate(sources) if s.get("heard_by")]
    result = {
        "scenario": truth.get("scenario"), "seed": truth.get("seed"),
        "sources": len(sources), "heard": len(heard),
        "detected": sum(1 for i in heard if i in matched_src),
        "detection_rate": _ratio(sum(1 for i in heard if i in matched_src), len(heard)),
        "by_class": _by_class(sources, heard, matched_src),
        "incidents": len(incidents),
        "false_incidents": len(incidents) - len(matched_inc),
        "localization_error_m": _spread(_location_errors(sources, incidents, pairs)),
        "side": _side_accuracy(sources, incidents, pairs),
        "alert_latency_s": _spread(_latencies(sources, incidents, pairs)),
        "missed": [sources[i]["id"] for i in heard if i not in matched_src],
        "false": [inc["id"] for k, inc in enumerate(incidents) if k not in matched_inc],
    }
    return result


def _match(sources, incidents, windows) -> list[tuple[int, int]]:
    candidates = []
    for ii, inc in enumerate(incidents):
        fam = family(inc.get("class"))
        if fam is None:
            continue
        for si, src in enumerate(sources):
            if family(src.get("class")) != fam:
                continue
            start, end = src["time_utc_us"], src.get("end_utc_us") or src["time_utc_us"]
            t = inc["time_utc_us"]
            dt_s = max(0, start - t, t - end) / 1e6
            if dt_s > windows[fam]:
                continue
            cost = dt_s / windows[fam]
            where = _incident_position(inc)
            if where and "lat" in src:
                cost += _distance_to_source(src, where, t) / DISTANCE_SCALE_M
            candidates.append((cost, si, ii))
    candidates.sort()
    used_s, used_i, pairs = set(), set(), []
    for _, si, ii in candidates:
        if si not in used_s and ii not in used_i:
            used_s.add(si)
            used_i.add(ii)
            pairs.append((si, ii))
    return pairs


def _incident_position(inc) -> tuple[float, float] | None:
    lat, lon = inc.get("lat"), inc.get("lon")
    if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
        return float(lat), float(lon)
    return None


def _distance_to_source(src: dict, where: tuple[float, float], t_us: int) -> float:
    lat, lon = src["lat"], src["lon"]
    path = src.get("path")
    if path:
        times = [p[0] for p in path]
        lat = float(np.interp(t_us, times, [p[1] for p in path]))
        lon = float(np.interp(t_us, times, [p[2] for p in path]))
    return haversine_m(where[0], where[1], lat, lon)


def _location_errors(sources, incidents, pairs) -> list[float]:
    out = []
    for si, ii in pairs:
        inc = incidents[ii]
        where = _incident_position(inc)
        if inc.get("fix") in FIX_KINDS and where and "lat" in sources[si]:
            out.append(_distance_to_source(sources[si], where, inc["time_utc_us"]))
    return out


def _side_accuracy(sources, incidents, pairs) -> dict:
    correct = wrong = undecided = 0
    for si, ii in pairs:
        src = sources[si]
        if src.get("side") not in ("L", "R") or src.get("distance_from_line_m", 0) <= SIDE_MIN_DISTANCE_M:
            continue
        said = incidents[ii].get("side")
        if said not in ("L", "R"):
            undecided += 1
        elif said == src["side"]:
            correct += 1
        else:
            wrong += 1
    return {"eligible": correct + wrong + undecided, "correct": correct, "wrong": wrong,
            "undecided": undecided, "accuracy": _ratio(correct, correct + wrong)}


def _latencies(sources, incidents, pairs) -> list[float]:
    out = []
    for si, ii in pairs:
        src, inc = sources[si], incidents[ii]
        if not isinstance(inc.get("formed_at_us"), int):
            continue
        ref = src["time_utc_us"]
        if src.get("class") in TRACKS and src.get("first_heard_utc_us"):
            ref = src["first_heard_utc_us"]
        out.append((inc["formed_at_us"] - ref) / 1e6)
    return out


def _by_class(sources, heard, matched_src) -> dict:
    out: dict = {}
    for i in heard:
        row = out.setdefault(sources[i]["class"], {"heard": 0, "detected": 0})
        row["heard"] += 1
        row["detected"] += i in matched_src
    for row in out.values():
        row["rate"] = _ratio(row["detected"], row["heard"])
    return dict(sorted(out.items()))


def _ratio(a: int, b: int) -> float | None:
    return None if b == 0 else a / b


def _spread(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "median": None, "p90": None}
    arr = np.asarray(values, dtype=float)
    return {"count": len(values), "median": float(np.median(arr)), "p90": float(np.percentile(arr, 90))}


def format_text(result: dict) -> str:
    def pct(x):
        return "n/a" if x is None else "%.1f %%" % (100 * x)

    def num(x, unit):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else "%.1f %s" % (x, unit)

    loc, lat, side = result["localization_error_m"], result["alert_latency_s"], result["side"]
    lines = [
        "scenario %s (seed %s)" % (result.get("scenario"), result.get("seed")),
        "detection rate      %s  (%d of %d sources heard by a node; %d sources in all)"
        % (pct(result["detection_rate"]), result["detected"], result["heard"], result["sources"]),
    ]
    for cls, row in result["by_class"].items():
        lines.append("  %-16s  %s  (%d of %d)" % (cls, pct(row["rate"]), row["detected"], row["heard"]))
    lines += [
        "false incidents     %d of %d" % (result["false_incidents"], result["incidents"]),
        "localization error  median %s, p90 %s  (%d fixes)"
        % (num(loc["median"], "m"), num(loc["p90"], "m"), loc["count"]),
        "side of the line    %s  (%d right, %d wrong, %d undecided; sources > %d m from the line)"
        % (pct(side["accuracy"]), side["correct"], side["wrong"], side["undecided"], SIDE_MIN_DISTANCE_M),
        "alert latency       median %s, p90 %s  (%d incidents)"
        % (num(lat["median"], "s"), num(lat["p90"], "s"), lat["count"]),
    ]
    return "\n".join(lines) + "\n"
