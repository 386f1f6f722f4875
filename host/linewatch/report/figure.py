"""The report's map figure: the contact line, the nodes (coloured by their availability over
the day), the reference points, and the day's incidents by category, with launch -> impact
arrows and drone tracks. Drawn with matplotlib's Agg backend (no display, runs on a
Raspberry Pi) and returned as a PNG data URI, so the page holds it inline.
"""
from __future__ import annotations

import base64
import io
import math

from linewatch.report.categories import SHORT, track_points

# category -> (marker, colour): explosions in reds, small arms in orange, drones in blue
STYLE = {
    "explosion_impact": ("X", "#b2182b"), "explosion_outgoing": ("^", "#d6604d"),
    "explosion_undetermined": ("o", "#ef8a62"), "small_arms_burst": ("p", "#e08214"),
    "small_arms_shot": ("p", "#fdb863"), "drone_crossing": ("D", "#2166ac"),
    "drone_overflight": ("D", "#67a9cf"), "vehicle": ("P", "#5aae61"), "unknown": ("*", "#878787"),
    "tamper": ("v", "#762a83"),
}


def map_png(data, width_in: float = 9.0) -> str | None:
    """A data: URI of the map, or None when there is nothing to draw (no node, line or incident)."""
    points = _extent_points(data)
    if not points:
        return None
    lat0 = sum(p[0] for p in points) / len(points)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(width_in, width_in * 0.62), dpi=110)
    try:
        _draw(ax, data)
        ax.set_aspect(1.0 / max(0.05, math.cos(math.radians(lat0))))   # metres look square
        ax.set_xlabel("longitude (degrees, WGS84)")
        ax.set_ylabel("latitude")
        ax.grid(True, color="#dddddd", linewidth=0.5)
        ax.ticklabel_format(useOffset=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _pyplot():
    """matplotlib on its Agg backend, imported when a map is drawn: it takes seconds to import
    on a loaded Raspberry Pi, and every other `linewatch` command (the aggregator first) must
    not pay for it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _extent_points(data) -> list[tuple[float, float]]:
    points = [(n.lat, n.lon) for n in data.nodes] + list(data.line)
    for e in data.counted:
        lat, lon = e.incident.get("lat"), e.incident.get("lon")
        if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
            points.append((lat, lon))
    return points


def _draw(ax, data) -> None:
    if data.line:
        ax.plot([p[1] for p in data.line], [p[0] for p in data.line], color="black", linewidth=1.6,
                label="contact line")
    _nodes(ax, data)
    for ref in data.references if not data.references_note.startswith("the nearest node") else ():
        ax.plot(ref.lon, ref.lat, marker="o", markersize=4, color="#333333", linestyle="none")
        ax.annotate(ref.name, (ref.lon, ref.lat), textcoords="offset points", xytext=(4, 4), fontsize=7,
                    color="#333333")
    _incidents(ax, data)


def _nodes(ax, data) -> None:
    share = {a.node: a.fraction for a in data.availability}
    groups = {"node, available >= 95 %": ("#1a9850", []), "node, available 50-95 %": ("#fee08b", []),
              "node, available < 50 % or unknown": ("#d73027", [])}
    for n in data.nodes:
        f = share.get(n.id)
        key = ("node, available >= 95 %" if f is not None and f >= 0.95 else
               "node, available 50-95 %" if f is not None and f >= 0.5 else "node, available < 50 % or unknown")
        groups[key][1].append(n)
    for label, (colour, members) in groups.items():
        if members:
            ax.plot([n.lon for n in members], [n.lat for n in members], marker="s", markersize=5, linestyle="none",
                    color=colour, markeredgecolor="black", markeredgewidth=0.5, label=label)


def _incidents(ax, data) -> None:
    by_id = {e.id: e for e in data.counted}
    shown: set[str] = set()
    for e in data.counted:
        lat, lon = e.incident.get("lat"), e.incident.get("lon")
        track = track_points(e.incident)
        if len(track) >= 2:
            ax.plot([p[2] for p in track], [p[1] for p in track], color=STYLE[e.category][1], linewidth=1,
                    linestyle="--")
        if not (isinstance(lat, (int, float)) and isinstance(lon, (int, float))):
            continue
        marker, colour = STYLE[e.category]
        label = SHORT[e.category] if e.category not in shown else None
        shown.add(e.category)
        ax.plot(lon, lat, marker=marker, markersize=8, color=colour, markeredgecolor="black",
                markeredgewidth=0.4, linestyle="none", label=label)
        ax.annotate(e.id.rsplit("-", 1)[-1].lstrip("0") or "0", (lon, lat), textcoords="offset points", xytext=(5, -9),
                    fontsize=6)
        impact = by_id.get(str(e.incident.get("impact_id")))
        if impact is not None and isinstance(impact.incident.get("lat"), (int, float)):
            ax.annotate("", xy=(impact.incident["lon"], impact.incident["lat"]), xytext=(lon, lat),
                        arrowprops={"arrowstyle": "->", "color": "#b2182b", "linewidth": 1.2})
