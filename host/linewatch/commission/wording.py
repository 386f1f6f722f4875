"""An incident in the operator's words: time, class, how it was placed (in words, not `tdoa`),
nodes, side of the line by the names the config gives the sides, with its probability, status.

One place for the demo's lines, `incidents list` and (later) the desk:

    describe(incident, sides)      # one line
    row(incident, sides)           # the same as table cells, under COLUMNS
    LEGEND                         # what the fix words mean, said once
"""
from __future__ import annotations

import datetime
import math

DEFAULT_SIDES = ("side A", "side B")     # (left, right) of the line as its vertices are drawn

# fix kind -> (short word, what it means)
FIXES = {
    "tdoa": ("located", "placed from the differences in arrival time at 3 or more nodes; "
                        "+- is the 95 % error radius"),
    "mirror": ("one of two places", "heard by one straight row of nodes: the source is at one of two "
                                    "places, mirror images across the row; the row cannot tell which"),
    "hyperbola": ("on a curve", "heard by 2 nodes: the source lies on a curve between them, "
                                "its place along it unknown"),
    "detection": ("heard only", "reported by nodes whose times do not place it (often one node)"),
    "track": ("tracked", "a moving source (drone) followed from node to node"),
}
LEGEND = "\n".join("  %-10s %s" % (word, meaning) for word, meaning in FIXES.values())
COLUMNS = ("id", "time (UTC)", "class", "how placed", "nodes", "side of the line", "status")


def withdrawn(incident: dict) -> bool:
    """Fusion withdraws an incident whose reports all moved to other incidents: its last
    version is final and has no reports."""
    return incident.get("provisional") is False and incident.get("reports") == []


def status(incident: dict) -> str:
    if withdrawn(incident):
        return "withdrawn"
    return str(incident.get("status") or "new")


def when(time_us) -> str:
    if not isinstance(time_us, int) or time_us <= 0:
        return "time unknown"
    moment = datetime.datetime.fromtimestamp(time_us / 1e6, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def fix_words(incident: dict) -> str:
    """How the incident was placed, with where when it was."""
    if withdrawn(incident):
        return "withdrawn: its reports joined other incidents"
    kind = "track" if incident.get("track") else incident.get("fix")
    word = FIXES.get(kind, (str(kind), ""))[0]
    lat, lon = incident.get("lat"), incident.get("lon")
    if not isinstance(lat, (int, float)) or not isinstance(lon, (int, float)):
        return word
    where = "%s %s %.5f, %.5f" % (word, "near" if kind == "detection" else "at", lat, lon)
    radius = _radius_m(incident.get("ellipse_95"))
    where += " +-%.0f m" % radius if radius is not None else ""
    other = incident.get("mirror") if kind == "mirror" else None
    if isinstance(other, dict) and isinstance(other.get("lat"), (int, float)) and isinstance(other.get("lon"), (int, float)):
        radius = _radius_m(other.get("ellipse_95"))
        where += " or %.5f, %.5f%s" % (other["lat"], other["lon"], " +-%.0f m" % radius if radius is not None else "")
    return where


def _radius_m(ellipse) -> float | None:
    if not isinstance(ellipse, dict):
        return None
    axes = [v for k, v in ellipse.items() if k.endswith("_m") and isinstance(v, (int, float))]
    return max(axes) if axes and all(math.isfinite(a) for a in axes) else None


def side_words(incident: dict, sides: tuple[str, str] = DEFAULT_SIDES) -> str:
    side = incident.get("side")
    if withdrawn(incident):
        return "-"
    if side not in ("L", "R"):
        return "undecided"
    name = sides[0] if side == "L" else sides[1]
    away = incident.get("distance_from_line_m")
    if isinstance(away, (int, float)):
        name += " %s from the line" % (("%.1f km" % (away / 1000)) if away >= 1000 else "%.0f m" % away)
    p = incident.get("side_probability")
    return "%s (p %.2f)" % (name, p) if isinstance(p, (int, float)) else name


def plural(n: int, word: str, words: str | None = None) -> str:
    return "%d %s" % (n, word if n == 1 else (words or word + "s"))


def node_words(incident: dict) -> str:
    return plural(len(incident.get("nodes") or ()), "node")


def row(incident: dict, sides: tuple[str, str] = DEFAULT_SIDES) -> list[str]:
    return [str(incident.get("id")), when(incident.get("time_utc_us")), str(incident.get("class", "?")),
            fix_words(incident), "-" if withdrawn(incident) else str(len(incident.get("nodes") or ())),
            side_words(incident, sides), status(incident)]


def describe(incident: dict, sides: tuple[str, str] = DEFAULT_SIDES) -> str:
    """One line: 'I-000001 06:00:03 UTC explosion, located at 48.01234, 37.81234 +-40 m,
    5 nodes, side A (p 0.97)'."""
    head = "%s %s UTC %s" % (incident.get("id"), when(incident.get("time_utc_us"))[11:],
                             incident.get("class", "?"))
    if withdrawn(incident):
        return "%s, %s" % (head, fix_words(incident))
    pair = ""
    if incident.get("impact_id"):
        pair = ", a launch (its impact: %s)" % incident["impact_id"]
    elif incident.get("launch_id"):
        pair = ", an impact (launched at %s)" % incident["launch_id"]
    return "%s, %s, %s, %s%s" % (head, fix_words(incident), node_words(incident), side_words(incident, sides), pair)


def table(incidents: list[dict], sides: tuple[str, str] = DEFAULT_SIDES) -> list[str]:
    """Aligned lines with a header, one incident per line."""
    rows = [list(COLUMNS)] + [row(i, sides) for i in incidents]
    widths = [max(len(r[k]) for r in rows) for k in range(len(COLUMNS))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def side_legend(line: tuple[tuple[float, float], ...], sides: tuple[str, str] = DEFAULT_SIDES) -> str:
    """Which side is which, in compass words: 'side A: north-west of the line, side B: south-east'."""
    if len(line) < 2:
        return "%s: left of the line as drawn, %s: right" % sides
    (lat0, lon0), (lat1, lon1) = line[0], line[-1]
    east = (lon1 - lon0) * math.cos(math.radians((lat0 + lat1) / 2))
    bearing = math.degrees(math.atan2(east, lat1 - lat0)) % 360
    return "%s: %s of the line, %s: %s" % (sides[0], _compass(bearing - 90), sides[1], _compass(bearing + 90))


def _compass(bearing: float) -> str:
    names = ("north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west")
    return names[int(((bearing % 360) + 22.5) // 45) % 8]
