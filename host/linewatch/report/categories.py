"""The categories monitors count, from an incident as fusion stored it.

    explosion  -> impact       (fusion paired it with an earlier launch: it has a launch_id)
               -> outgoing     (fusion paired it with a later impact: it has an impact_id)
               -> undetermined (not paired: either, or neither, as a monitor would write)
    small_arms -> burst (two or more shots from one place) / shot
    drone      -> crossing (its track has points on both sides of the contact line) / overflight
    vehicle, tamper (a node handled: not a violation, counted apart), unknown
"""
from __future__ import annotations

from linewatch.geo import ContactLine

# (key, words), in the report's order
CATEGORIES = (
    ("explosion_impact", "explosions: impacts"),
    ("explosion_outgoing", "explosions: outgoing (launches)"),
    ("explosion_undetermined", "explosions: undetermined"),
    ("small_arms_burst", "small arms: bursts"),
    ("small_arms_shot", "small arms: single shots"),
    ("drone_crossing", "drones: crossings of the line"),
    ("drone_overflight", "drones: overflights"),
    ("vehicle", "vehicles"),
    ("unknown", "unclassified sounds"),
    ("tamper", "nodes handled (tampering, not a violation)"),
)
WORDS = dict(CATEGORIES)
# each category's short word in the incident table
SHORT = {"explosion_impact": "impact", "explosion_outgoing": "outgoing", "explosion_undetermined": "undetermined",
         "small_arms_burst": "burst", "small_arms_shot": "shot", "drone_crossing": "crossing",
         "drone_overflight": "overflight", "vehicle": "vehicle", "unknown": "unclassified", "tamper": "tampering"}


def category(incident: dict, line: ContactLine | None) -> str:
    kind = incident.get("class")
    if kind == "explosion":
        if incident.get("launch_id"):
            return "explosion_impact"
        if incident.get("impact_id"):
            return "explosion_outgoing"
        return "explosion_undetermined"
    if kind == "small_arms":
        return "small_arms_burst" if shots(incident) >= 2 else "small_arms_shot"
    if kind == "drone":
        return "drone_crossing" if crossed(incident, line) else "drone_overflight"
    if kind in ("vehicle", "tamper"):
        return kind
    return "unknown"


def shots(incident: dict) -> int:
    n = incident.get("shots")
    return n if isinstance(n, int) and n > 0 else 1


def track_points(incident: dict) -> list[tuple[int, float, float]]:
    """The drone's track as (time_us, lat, lon); [] when it has none."""
    out = []
    for point in incident.get("track") or ():
        if isinstance(point, (list, tuple)) and len(point) == 3 and all(isinstance(v, (int, float)) for v in point):
            out.append((int(point[0]), float(point[1]), float(point[2])))
    return out


def track_sides(incident: dict, line: ContactLine | None) -> list[str]:
    """The side ("L"/"R") of each track point, in time order; [] without a line."""
    if line is None:
        return []
    return [line.locate(lat, lon).side for _, lat, lon in sorted(track_points(incident))]


def crossed(incident: dict, line: ContactLine | None) -> bool:
    sides = {s for s in track_sides(incident, line) if s}
    return sides == {"L", "R"}
