"""The incident: what the commission acts on, as fusion publishes it (an immutable snapshot)."""
from __future__ import annotations

from dataclasses import dataclass

from .ellipse import ErrorEllipse

FIX_KINDS = ("tdoa", "mirror", "hyperbola", "detection")
# A fit of three or more arrivals: it predicts when other nodes hear its source, can be
# refitted with more, and holds its arrivals against weaker groupings. "mirror" is such a fit
# whose nodes stand in one straight row: two places fit, mirror images across the row.
FITTED = ("tdoa", "mirror")


@dataclass(frozen=True)
class MirrorImage:
    """The other place a "mirror" incident's arrivals fit as well: its reflection across the
    straight row of nodes that heard it."""
    lat: float
    lon: float
    ellipse_95: ErrorEllipse | None
    side: str | None
    distance_from_line_m: float

    def to_json(self) -> dict:
        return {"lat": _round(self.lat, 7), "lon": _round(self.lon, 7),
                "ellipse_95": self.ellipse_95.to_json() if self.ellipse_95 else None,
                "side": self.side, "distance_from_line_m": _round(self.distance_from_line_m, 2)}


@dataclass(frozen=True)
class Incident:
    id: str
    event_class: str
    status: str
    provisional: bool
    fix: str
    time_utc_us: int
    lat: float | None
    lon: float | None
    ellipse_95: ErrorEllipse | None
    side: str | None
    side_probability: float | None
    distance_from_line_m: float | None
    nodes: tuple[int, ...]
    reports: tuple[int, ...]
    rejected_nodes: tuple[int, ...]
    formed_at_us: int
    updated_at_us: int
    version: int
    launch_id: str | None = None
    impact_id: str | None = None
    track: tuple[tuple[int, float, float], ...] | None = None
    heading_deg: float | None = None
    # Impulsive sounds the incident joins: a burst from one place is one incident (see engine).
    shots: int = 1
    # fix "mirror": the other place (the incident's lat/lon is the one that fits better)
    mirror: MirrorImage | None = None

    def places(self) -> list[tuple[float, float]]:
        """Where the source may be: its position, and its mirror image when it has one."""
        if self.lat is None or self.lon is None:
            return []
        return [(self.lat, self.lon)] + ([(self.mirror.lat, self.mirror.lon)] if self.mirror else [])

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "class": self.event_class,
            "status": self.status,
            "provisional": self.provisional,
            "fix": self.fix,
            "time_utc_us": int(self.time_utc_us),
            "lat": _round(self.lat, 7),
            "lon": _round(self.lon, 7),
            "ellipse_95": self.ellipse_95.to_json() if self.ellipse_95 else None,
            "side": self.side,
            "side_probability": _round(self.side_probability, 4),
            "distance_from_line_m": _round(self.distance_from_line_m, 2),
            "nodes": list(self.nodes),
            "reports": list(self.reports),
            "rejected_nodes": list(self.rejected_nodes),
            "formed_at_us": int(self.formed_at_us),
            "updated_at_us": int(self.updated_at_us),
            "version": self.version,
            "launch_id": self.launch_id,
            "impact_id": self.impact_id,
            "track": [[int(t), round(la, 7), round(lo, 7)] for t, la, lo in self.track]
            if self.track is not None else None,
            "heading_deg": _round(self.heading_deg, 2),
            "shots": int(self.shots),
            "mirror": self.mirror.to_json() if self.mirror else None,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def incident_id(number: int) -> str:
    return "I-%06d" % number


def incident_number(incident_id_: str | None) -> int | None:
    """The number of an id made by incident_id(), else None (a cluster's I-e... ids, anything else)."""
    if not incident_id_ or not incident_id_.startswith("I-") or not incident_id_[2:].isdigit() \
            or not incident_id_[2:].isascii():
        return None
    return int(incident_id_[2:])
