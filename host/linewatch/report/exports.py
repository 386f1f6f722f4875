"""The day's incidents, tracks and nodes as CSV and GeoJSON that open in QGIS as they are.

GeoJSON follows RFC 7946: a FeatureCollection, WGS84 longitude/latitude in that order (no
"crs" member), properties flat (no nested object or list) and of one type per name across
features (text, integer, number or boolean; null where a value is unknown). CSV has the same
properties as columns with a header, plus lon/lat (points: QGIS's "Delimited Text" picks
them as X/Y) or wkt (tracks: a WKT LINESTRING).

    incidents  every incident of the day (withdrawn ones too: see `status`); Point, or no
               geometry when it was not placed
    tracks     drone tracks (kind "drone_track") and launch -> impact pairs ("launch_impact");
               LineString
    nodes      every registered node with its availability over the day; Point
"""
from __future__ import annotations

import csv
import io
import json

from linewatch.commission import wording
from linewatch.geo import ContactLine, haversine_m
from linewatch.report import FORMATS, WHAT
from linewatch.report.categories import crossed, track_points
from linewatch.report.gather import DayData, Entry

DIGITS = 7         # ~1 cm: more than any fix is worth, less than float noise

INCIDENT_FIELDS = ("id", "time_utc", "time_utc_us", "class", "category", "status", "segment", "place",
                   "reference", "bearing_deg", "distance_m", "distance_band", "side", "side_code",
                   "side_probability", "distance_from_line_m", "confidence", "nodes", "node_ids", "how_placed",
                   "fix", "radius_95_m", "ellipse_major_m", "ellipse_minor_m", "ellipse_angle_deg", "shots",
                   "launch_id", "impact_id", "lon", "lat")
TRACK_FIELDS = ("id", "kind", "incident_id", "launch_id", "impact_id", "start_utc", "end_utc", "start_utc_us",
                "end_utc_us", "points", "length_m", "crosses_line", "segment", "wkt")
NODE_FIELDS = ("id", "node", "segment", "alt_m", "registered_utc", "available", "frames", "heartbeats",
               "state_changes", "state_at_end", "lon", "lat")


def features(data: DayData, what: str) -> list[tuple[dict, dict | None]]:
    """(flat properties, RFC 7946 geometry or None) per feature."""
    if what == "incidents":
        return [_incident(e) for e in data.entries]
    if what == "tracks":
        return _tracks(data)
    if what == "nodes":
        return _nodes(data)
    raise ValueError(f"nothing to export called {what!r} (one of {', '.join(WHAT)})")


def geojson(data: DayData, what: str) -> str:
    out = []
    for props, geometry in features(data, what):
        clean = {k: v for k, v in props.items() if k not in ("lon", "lat", "wkt")}
        out.append({"type": "Feature", "id": str(props["id"]), "geometry": geometry, "properties": clean})
    return json.dumps({"type": "FeatureCollection", "features": out}, indent=1) + "\n"


def csv_text(data: DayData, what: str) -> str:
    columns = {"incidents": INCIDENT_FIELDS, "tracks": TRACK_FIELDS, "nodes": NODE_FIELDS}[what]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for props, _ in features(data, what):
        writer.writerow({k: _cell(props.get(k)) for k in columns})
    return buffer.getvalue()


def render(data: DayData, what: str, form: str) -> str:
    if form not in FORMATS:
        raise ValueError(f"no export format {form!r} (one of {', '.join(FORMATS)})")
    return geojson(data, what) if form == "geojson" else csv_text(data, what)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _point(lat, lon) -> dict | None:
    if not isinstance(lat, (int, float)) or not isinstance(lon, (int, float)):
        return None
    return {"type": "Point", "coordinates": [round(float(lon), DIGITS), round(float(lat), DIGITS)]}


def _line(points: list[tuple[float, float]]) -> dict:
    return {"type": "LineString", "coordinates": [[round(lon, DIGITS), round(lat, DIGITS)] for lat, lon in points]}


def _wkt(points: list[tuple[float, float]]) -> str:
    return "LINESTRING (" + ", ".join(f"{lon:.{DIGITS}f} {lat:.{DIGITS}f}" for lat, lon in points) + ")"


def _float(value, digits: int = 3) -> float | None:
    return round(float(value), digits) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _incident(e: Entry) -> tuple[dict, dict | None]:
    d = e.incident
    ellipse = d.get("ellipse_95") if isinstance(d.get("ellipse_95"), dict) else {}
    geometry = _point(d.get("lat"), d.get("lon"))
    p = e.placing
    props = {
        "id": e.id, "time_utc": _iso(e.time_us), "time_utc_us": e.time_us, "class": str(d.get("class", "unknown")),
        "category": e.category, "status": e.status, "segment": e.segment,
        "place": p.text if p else None, "reference": p.reference if p else None,
        "bearing_deg": _float(p.bearing_deg, 1) if p else None, "distance_m": _float(p.distance_m, 0) if p else None,
        "distance_band": p.band if p else None,
        "side": e.side, "side_code": d.get("side") if d.get("side") in ("L", "R") else None,
        "side_probability": _float(e.side_probability, 4),
        "distance_from_line_m": _float(d.get("distance_from_line_m"), 1),
        "confidence": _float(e.confidence, 3), "nodes": e.nodes,
        "node_ids": " ".join("0x%04x" % n for n in d.get("nodes") or () if isinstance(n, int)),
        "how_placed": wording.fix_words(d), "fix": "track" if d.get("track") else str(d.get("fix") or ""),
        "radius_95_m": _float(max((v for k, v in ellipse.items() if k.endswith("_m")), default=None), 1),
        "ellipse_major_m": _float(ellipse.get("major_m"), 1), "ellipse_minor_m": _float(ellipse.get("minor_m"), 1),
        "ellipse_angle_deg": _float(ellipse.get("angle_deg"), 1), "shots": e.shots,
        "launch_id": d.get("launch_id"), "impact_id": d.get("impact_id"),
        "lon": geometry["coordinates"][0] if geometry else None,
        "lat": geometry["coordinates"][1] if geometry else None,
    }
    return props, geometry


def _tracks(data: DayData) -> list[tuple[dict, dict | None]]:
    line = _contact_line(data)
    out = []
    by_id = {e.id: e for e in data.counted}
    for e in data.counted:
        track = sorted(track_points(e.incident))
        if len(track) >= 2:
            points = [(lat, lon) for _, lat, lon in track]
            out.append(_track(f"{e.id}-track", "drone_track", e.id, None, None, track[0][0], track[-1][0], points,
                              crossed(e.incident, line), e.segment))
        impact = by_id.get(str(e.incident.get("impact_id")))
        if impact is not None:
            a, b = e.incident, impact.incident
            if all(isinstance(v, (int, float)) for v in (a.get("lat"), a.get("lon"), b.get("lat"), b.get("lon"))):
                points = [(a["lat"], a["lon"]), (b["lat"], b["lon"])]
                crosses = bool(a.get("side") and b.get("side") and a.get("side") != b.get("side"))
                out.append(_track(f"{e.id}-{impact.id}", "launch_impact", None, e.id, impact.id, e.time_us,
                                  impact.time_us, points, crosses, impact.segment))
    return out


def _track(id_, kind, incident, launch, impact, start, end, points, crosses, segment) -> tuple[dict, dict]:
    length = sum(haversine_m(*a, *b) for a, b in zip(points, points[1:]))
    return ({"id": id_, "kind": kind, "incident_id": incident, "launch_id": launch, "impact_id": impact,
             "start_utc": _iso(start), "end_utc": _iso(end), "start_utc_us": int(start), "end_utc_us": int(end),
             "points": len(points), "length_m": round(length, 1), "crosses_line": bool(crosses), "segment": segment,
             "wkt": _wkt(points)}, _line(points))


def _nodes(data: DayData) -> list[tuple[dict, dict | None]]:
    share = {a.node: a for a in data.availability}
    out = []
    for n in data.nodes:
        a = share.get(n.id)
        geometry = _point(n.lat, n.lon)
        out.append(({"id": "0x%04x" % n.id, "node": n.id, "segment": n.segment, "alt_m": _float(n.alt_m, 1),
                     "registered_utc": _iso(n.added_us) if n.added_us else None,
                     "available": _float(a.fraction, 4) if a and a.fraction is not None else None,
                     "frames": a.frames if a else 0, "heartbeats": a.heartbeats if a else 0,
                     "state_changes": a.changes if a else 0, "state_at_end": a.last_state if a else "unknown",
                     "lon": geometry["coordinates"][0] if geometry else None,
                     "lat": geometry["coordinates"][1] if geometry else None}, geometry))
    return out


def _contact_line(data: DayData) -> ContactLine | None:
    return ContactLine(list(data.line)) if data.line else None


def _iso(time_us: int) -> str | None:
    text = wording.when(time_us)
    return text.replace(" ", "T") + "Z" if text[:1].isdigit() else None
