"""How well the commission saw what happened: a strict count of incidents against the truth.

The gates (when an incident is about a source) are in gates.py; the rules and why are in
docs/scenarios.md ("Score"). Every source stays in the report: heard by 3 or more nodes (the
recall and localization figures), by 1 or 2, or by none (with the reason). Every incident
that is not a source's match is false, by class: a phantom, a misplaced fix, or a duplicate.

The result is a plain dict (figures only); format_text() is the one place it is printed.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from linewatch.emulator import gates as g
from linewatch.emulator.gates import Candidate, Gates, family
from linewatch.geo import haversine_m

LOCATABLE_MIN_NODES = 3
SIDE_MIN_DISTANCE_M = 200.0
NEAR_M = 25.0
DAY_S = 86_400.0
LATE_S = 3600.0


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


# ---------------------------------------------------------------------------- the score

def score(truth: dict, incidents: list[dict]) -> dict:
    kept = [i for i in incidents if not withdrawn(i)]
    sources = truth["sources"]
    gates = Gates(truth)
    crossings = [(si, c) for si, s in enumerate(sources) for c in s.get("crossings") or ()]
    cands, cross_cands = _candidates(gates, sources, kept, crossings)
    hits = g.one_to_one(cands)
    cross_hits = g.one_to_one(cross_cands)
    matched = {c.incident for c in hits.values()} | {c.incident for c in cross_hits.values()}
    background = _on_background(truth, kept, matched)
    heard3 = [i for i, s in enumerate(sources) if _impulse(s) and _heard(s) >= LOCATABLE_MIN_NODES]
    return {
        "scenario": truth.get("scenario"), "seed": truth.get("seed"),
        "rules": _rules(),
        "sources": len(sources), "nodes": len(truth.get("nodes") or ()),
        "duration_s": truth.get("duration_s"),
        "hearing": _hearing(sources, hits),
        "recall": _recall(sources, heard3, hits),
        "localization_error_m": _localization(heard3, hits, cands),
        "side": _side(sources, heard3, hits, kept),
        "mirror": _mirror(sources, heard3, kept),
        "tracks": _tracks(sources, hits),
        "crossings": _crossings(sources, crossings, cross_hits, kept),
        "tamper": _tamper(sources, hits),
        "artillery_pairs": _pairs(sources, hits, kept),
        "background": {"count": len(background), "ids": [kept[i]["id"] for i in sorted(background)]},
        "false": _false(truth, kept, matched | background, hits, cands, cross_hits, cross_cands),
        "incidents": len(kept),
        "withdrawn": len(incidents) - len(kept),
        "dismissed": sum(1 for i in kept if i.get("status") == "dismissed"),
        "alert_latency_s": _latencies(truth, sources, kept, hits),
        "missed": [sources[i]["id"] for i in heard3 if i not in hits],
        "unlocated": [sources[i]["id"] for i in heard3 if not _located(hits.get(i))],
    }


def _rules() -> dict:
    return {"distance_gate_m": g.DISTANCE_GATE_M, "ellipse_margin_m": g.ELLIPSE_MARGIN_M,
            "time_gate_s": g.TIME_GATE_S, "track_gate_m": g.TRACK_GATE_M,
            "crossing_time_gate_s": g.CROSSING_TIME_GATE_S, "tamper_gate_s": g.TAMPER_GATE_S,
            "locatable_min_nodes": LOCATABLE_MIN_NODES, "side_min_distance_m": SIDE_MIN_DISTANCE_M}


def _impulse(src: dict) -> bool:
    return family(src.get("class")) in g.IMPULSES


def _heard(src: dict) -> int:
    return len(src.get("heard_by") or ())


def _located(c: Candidate | None) -> bool:
    return c is not None and c.quality == "located"


def _candidates(gates: Gates, sources, incidents, crossings):
    cands, cross_cands = [], []
    by_family: dict = {}
    for si, src in enumerate(sources):
        by_family.setdefault(family(src.get("class")), []).append(si)
    for ii, inc in enumerate(incidents):
        fam = family(inc.get("class"))
        if fam is None:
            continue
        if g.crossing_of(inc):
            for ci, (si, crossing) in enumerate(crossings):
                if family(sources[si]["class"]) == fam:
                    c = gates.crossing(ci, crossing, ii, inc)
                    if c:
                        cross_cands.append(c)
            continue
        for si in by_family.get(fam, ()):
            src = sources[si]
            if fam in g.IMPULSES:
                c = gates.impulse(si, src, ii, inc)
            elif fam in g.TRACKS:
                c = gates.track(si, src, ii, inc)
            else:
                c = gates.tamper(si, src, ii, inc)
            if c:
                cands.append(c)
    return cands, cross_cands


def _hearing(sources, hits) -> dict:
    """Every source by how many nodes heard it; the unheard with the reason."""
    out = {"heard_by_3_or_more": 0, "heard_by_1_or_2": 0, "not_heard": 0, "not_heard_by_reason": {},
           "heard_by_1_or_2_reported": 0, "not_heard_reported": 0, "not_heard_sources": []}
    for si, s in enumerate(sources):
        n = _heard(s)
        if n >= LOCATABLE_MIN_NODES:
            out["heard_by_3_or_more"] += 1
        elif n:
            out["heard_by_1_or_2"] += 1
            out["heard_by_1_or_2_reported"] += si in hits
        else:
            reason = s.get("not_heard") or "not heard"
            out["not_heard"] += 1
            out["not_heard_reported"] += si in hits
            out["not_heard_by_reason"][reason] = out["not_heard_by_reason"].get(reason, 0) + 1
            out["not_heard_sources"].append({"id": s["id"], "class": s["class"], "reason": reason,
                                             "best_snr_db": s.get("best_snr_db")})
    return out


def _recall(sources, heard3, hits) -> dict:
    """Impulses heard by >= 3 nodes: reported at all (any hit) and located (a fix in the gates)."""
    by_class: dict = {}
    for i in heard3:
        row = by_class.setdefault(sources[i]["class"], {"eligible": 0, "reported": 0, "located": 0})
        row["eligible"] += 1
        row["reported"] += i in hits
        row["located"] += _located(hits.get(i))
    for row in by_class.values():
        row["rate"] = _ratio(row["reported"], row["eligible"])
    reported = sum(1 for i in heard3 if i in hits)
    return {"eligible": len(heard3), "reported": reported, "rate": _ratio(reported, len(heard3)),
            "by_class": dict(sorted(by_class.items()))}


def _localization(heard3, hits, cands) -> dict:
    """Error of each eligible source's fix: its located match, else the nearest misplaced fix
    (so the median and p90 show how far off the misses were); shares over all eligible."""
    errors, near, located = [], 0, 0
    misplaced: dict[int, float] = {}
    for c in cands:
        if c.quality == "misplaced":
            misplaced[c.source] = min(misplaced.get(c.source, math.inf), c.error_m)
    for i in heard3:
        hit = hits.get(i)
        if _located(hit):
            located += 1
            near += hit.error_m <= NEAR_M
            errors.append(hit.error_m)
        elif i in misplaced:
            errors.append(misplaced[i])
    out = _spread(errors)
    out.update(eligible=len(heard3), located=located, within_25m=_ratio(near, len(heard3)),
               unlocated=_ratio(len(heard3) - located, len(heard3)))
    return out


def _mirror(sources, heard3, incidents) -> dict:
    """"mirror" incidents (one straight row: two places, neither claimed; matched as heard):
    how many have one place within the distance and time gates of a source heard by >= 3
    nodes of its family, and how many such sources have one (the heard matching pairs by time
    only, so this says whether the two places hold the source)."""
    mirrors = [i for i in incidents if i.get("fix") == "mirror" and isinstance(i.get("mirror"), dict)
               and None not in (i.get("lat"), i.get("lon"), i["mirror"].get("lat"), i["mirror"].get("lon"))]

    def holds(inc, src):
        if family(inc.get("class")) != family(src.get("class")) or None in (src.get("lat"), src.get("lon")):
            return False
        if abs(inc["time_utc_us"] - src["time_utc_us"]) > g.TIME_GATE_S * 1e6:
            return False
        return min(haversine_m(src["lat"], src["lon"], *p) for p in
                   ((inc["lat"], inc["lon"]), (inc["mirror"]["lat"], inc["mirror"]["lon"]))) <= g.DISTANCE_GATE_M

    eligible = [sources[i] for i in heard3]
    return {"incidents": len(mirrors), "at_a_source": sum(1 for m in mirrors if any(holds(m, s) for s in eligible)),
            "sources_placed": sum(1 for s in eligible if any(holds(m, s) for m in mirrors))}


def _side(sources, heard3, hits, incidents) -> dict:
    """Sources heard by >= 3 nodes, more than 200 m from the line: the matched incident's side.
    Undecided or no incident is not right."""
    out = {"eligible": 0, "right": 0, "wrong": 0, "undecided": 0, "no_incident": 0}
    for i in heard3:
        src = sources[i]
        if src.get("side") not in g.SIDES or (src.get("distance_from_line_m") or 0) <= SIDE_MIN_DISTANCE_M:
            continue
        out["eligible"] += 1
        hit = hits.get(i)
        said = incidents[hit.incident].get("side") if hit else None
        key = "no_incident" if hit is None else "undecided" if said not in g.SIDES else \
            "right" if said == src["side"] else "wrong"
        out[key] += 1
    out["rate"] = _ratio(out["right"], out["eligible"])
    return out


def _tracks(sources, hits) -> dict:
    out: dict = {}
    for si, s in enumerate(sources):
        if family(s.get("class")) not in g.TRACKS:
            continue
        row = out.setdefault(s["class"], {"sources": 0, "heard": 0, "tracked": 0})
        row["sources"] += 1
        if _heard(s):
            row["heard"] += 1
            row["tracked"] += si in hits
    for row in out.values():
        row["rate"] = _ratio(row["tracked"], row["heard"])
    return dict(sorted(out.items()))


def _crossings(sources, crossings, cross_hits, incidents) -> dict:
    """Line crossings of tracks; the figure is over crossings within hearing range."""
    out: dict = {}
    for ci, (si, c) in enumerate(crossings):
        row = out.setdefault(sources[si]["class"], {"crossings": 0, "in_hearing_range": 0,
                                                    "reported": 0, "direction_right": 0})
        row["crossings"] += 1
        if not c.get("in_hearing_range"):
            continue
        row["in_hearing_range"] += 1
        hit = cross_hits.get(ci)
        if hit is not None:
            row["reported"] += 1
            row["direction_right"] += g.crossing_of(incidents[hit.incident]) == (c["from"], c["to"])
    for row in out.values():
        row["rate"] = _ratio(row["direction_right"], row["in_hearing_range"])
    return dict(sorted(out.items()))


def _tamper(sources, hits) -> dict:
    mine = [si for si, s in enumerate(sources) if family(s.get("class")) == "tamper"]
    heard = [si for si in mine if _heard(sources[si])]
    return {"sources": len(mine), "heard": len(heard), "reported": sum(1 for si in heard if si in hits)}


def _pairs(sources, hits, incidents) -> dict:
    """Artillery: launches whose impact is also located, and how many of those fusion paired."""
    index = {s["id"]: si for si, s in enumerate(sources)}
    both = linked = 0
    for si, s in enumerate(sources):
        if s.get("kind") != "launch" or s.get("partner") not in index:
            continue
        a, b = hits.get(si), hits.get(index[s["partner"]])
        if not (_located(a) and _located(b)):
            continue
        both += 1
        launch, impact = incidents[a.incident], incidents[b.incident]
        linked += launch.get("impact_id") == impact["id"] or impact.get("launch_id") == launch["id"]
    return {"both_located": both, "linked": linked}


def _on_background(truth: dict, incidents: list[dict], matched: set) -> set[int]:
    """Incidents (not a source's match) about the background's real sources (truth
    "background": cars and tractors passing near a node): of their class, and every point of
    the track within the source's range plus TRACK_GATE_M of its node, within
    TRACK_TIME_SLACK_S of its time. Real, not a violation: neither a hit nor false."""
    by_class: dict = {}
    for b in truth.get("background") or ():
        by_class.setdefault(family(b.get("class")), []).append(b)
    out = set()
    slack = g.TRACK_TIME_SLACK_S * 1e6
    for ii, inc in enumerate(incidents):
        fam = family(inc.get("class"))
        if ii in matched or fam not in by_class or g.crossing_of(inc):
            continue
        track = inc.get("track")
        points = [p for p in track if _point(p)] if isinstance(track, (list, tuple)) else []
        if not points:
            where = g.position(inc)
            if where is None:
                continue
            points = [(inc["time_utc_us"], *where)]
        if all(any(b["time_utc_us"] - slack <= p[0] <= b["end_utc_us"] + slack
                   and haversine_m(p[1], p[2], b["lat"], b["lon"]) <= b["range_m"] + g.TRACK_GATE_M
                   for b in by_class[fam]) for p in points):
            out.add(ii)
    return out


def _point(p) -> bool:
    return isinstance(p, (list, tuple)) and len(p) == 3 and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in p)


def _false(truth, incidents, matched, hits, cands, cross_hits, cross_cands) -> dict:
    """Every incident that is no source's match, by class and kind: a duplicate (it passes the
    gates of a source that has its match), misplaced (a fix with a source's arrivals outside
    the distance gate), or a phantom (anything else)."""
    kind: dict[int, str] = {}
    for candidates, matches in ((cands, hits), (cross_cands, cross_hits)):
        for c in candidates:
            if c.incident in matched:
                continue
            if c.quality != "misplaced" and c.source in matches:
                kind[c.incident] = "duplicate"
            elif c.quality == "misplaced" and kind.get(c.incident) != "duplicate":
                kind[c.incident] = "misplaced"
    by_class: dict = {}
    ids = []
    for ii, inc in enumerate(incidents):
        if ii in matched:
            continue
        why = kind.get(ii, "phantom")
        row = by_class.setdefault(str(inc.get("class")), {"phantom": 0, "misplaced": 0, "duplicate": 0})
        row[why] += 1
        ids.append(inc["id"])
    node_days = len(truth.get("nodes") or ()) * float(truth.get("duration_s") or 0.0) / DAY_S
    return {"count": len(ids), "of": len(incidents),
            "per_node_day": len(ids) / node_days if node_days > 0 else None,
            "by_class": dict(sorted(by_class.items())), "ids": ids}


def _latencies(truth, sources, incidents, hits) -> dict:
    """formed_at_us minus the source's time. Only for incidents formed during the run (plus
    an hour): a virtual-time run's aggregator stamps them with its own wall clock."""
    start = truth.get("start_utc_us")
    end = None if start is None else start + int((float(truth.get("duration_s") or 0) + LATE_S) * 1e6)
    out, skipped = [], 0
    for si, c in hits.items():
        src, inc = sources[si], incidents[c.incident]
        formed = inc.get("formed_at_us")
        if not isinstance(formed, int):
            continue
        if start is not None and not start <= formed <= end:
            skipped += 1
            continue
        ref = src["time_utc_us"]
        if src.get("class") in g.TRACKS and src.get("first_heard_utc_us"):
            ref = src["first_heard_utc_us"]
        out.append((formed - ref) / 1e6)
    result = _spread(out)
    result["not_comparable"] = skipped
    return result


def _ratio(a: int, b: int) -> float | None:
    return None if b == 0 else a / b


def _spread(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "median": None, "p90": None}
    arr = np.asarray(values, dtype=float)
    return {"count": len(values), "median": float(np.median(arr)), "p90": float(np.percentile(arr, 90))}


# ---------------------------------------------------------------------------- the text

def format_text(result: dict) -> str:
    def pct(x):
        return "n/a" if x is None else "%.1f %%" % (100 * x)

    def num(x, unit):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else "%.1f %s" % (x, unit)

    rec, loc, side, false = result["recall"], result["localization_error_m"], result["side"], result["false"]
    hearing, lat, rules = result["hearing"], result["alert_latency_s"], result["rules"]
    lines = [
        "scenario %s (seed %s): %d sources, %d nodes; strict gates: %.0f m (and the fix's 95%% "
        "ellipse + %.0f m), %.0f s" % (result.get("scenario"), result.get("seed"), result["sources"],
                                       result["nodes"], rules["distance_gate_m"],
                                       rules["ellipse_margin_m"], rules["time_gate_s"]),
        "heard by >= 3 nodes %d, by 1-2 %d (%d reported), by none %d%s"
        % (hearing["heard_by_3_or_more"], hearing["heard_by_1_or_2"], hearing["heard_by_1_or_2_reported"],
           hearing["not_heard"], _reasons(hearing["not_heard_by_reason"])),
        "recall              %s  (%d of %d blasts and bursts heard by >= 3 nodes reported)"
        % (pct(rec["rate"]), rec["reported"], rec["eligible"]),
    ]
    for cls, row in rec["by_class"].items():
        lines.append("  %-16s  %s  (%d of %d; %d located)"
                     % (cls, pct(row["rate"]), row["reported"], row["eligible"], row["located"]))
    lines += [
        "localization        median %s, p90 %s  (%d %s); within 25 m %s, unlocated %s"
        % (num(loc["median"], "m"), num(loc["p90"], "m"), loc["count"], "fix" if loc["count"] == 1 else "fixes",
           pct(loc["within_25m"]),
           pct(loc["unlocated"])),
        "side of the line    %s  (%d right, %d wrong, %d undecided, %d without incident, of %d "
        "sources > %d m from the line)" % (pct(side["rate"]), side["right"], side["wrong"],
                                           side["undecided"], side["no_incident"], side["eligible"],
                                           rules["side_min_distance_m"]),
        "false incidents     %d of %d%s  %s"
        % (false["count"], false["of"],
           "" if false["per_node_day"] is None else " (%.1f per node-day)" % false["per_node_day"],
           _false_text(false["by_class"])),
    ]
    if result.get("background", {}).get("count"):
        lines.append("background traffic  %d incidents about the background's passing cars and tractors"
                     " (real, not a violation: neither hits nor false)" % result["background"]["count"])
    mirror = result.get("mirror") or {}
    if mirror.get("incidents"):
        lines.append("mirror places       %d of %d blasts heard by >= 3 nodes have one of a mirror incident's two "
                     "places (%d of %d mirror incidents hold a source)"
                     % (mirror["sources_placed"], rec["eligible"], mirror["at_a_source"], mirror["incidents"]))
    for cls, row in result["tracks"].items():
        lines.append("%-19s %d of %d heard tracked (%d in all)" % (cls + " tracks", row["tracked"],
                                                                   row["heard"], row["sources"]))
    for cls, row in result["crossings"].items():
        lines.append("%-19s %s  (%d of %d in hearing range reported with the right direction, "
                     "%d reported; %d %s in all)"
                     % (cls + " crossings", pct(row["rate"]), row["direction_right"],
                        row["in_hearing_range"], row["reported"], row["crossings"],
                        "crossing" if row["crossings"] == 1 else "crossings"))
    tamper, pairs = result["tamper"], result["artillery_pairs"]
    lines += [
        "tamper              %d of %d reported" % (tamper["reported"], tamper["heard"]),
        "artillery pairs     %d of %d paired (launch and impact both located)"
        % (pairs["linked"], pairs["both_located"]),
        "alert latency       not measured: a virtual-time run (incidents formed on the commission's"
        " clock, not the scenario's: %d)" % lat["not_comparable"]
        if lat["not_comparable"] and not lat["count"] else
        "alert latency       median %s, p90 %s  (%d incidents%s)"
        % (num(lat["median"], "s"), num(lat["p90"], "s"), lat["count"],
           "; %d formed outside the run's time: a virtual-time run" % lat["not_comparable"]
           if lat["not_comparable"] else ""),
    ]
    return "\n".join(lines) + "\n"


def _reasons(by_reason: dict) -> str:
    if not by_reason:
        return ""
    return " (%s)" % ", ".join("%s %d" % (k, v) for k, v in sorted(by_reason.items()))


def _false_text(by_class: dict) -> str:
    parts = []
    for cls, row in by_class.items():
        kinds = ", ".join("%d %s" % (row[k], k) for k in ("phantom", "misplaced", "duplicate") if row[k])
        parts.append("%s: %s" % (cls, kinds))
    return "; ".join(parts)
