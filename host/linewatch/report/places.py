"""Where an incident was, in the words monitoring missions use: a compass bearing and a
distance band from the nearest named reference point ("2-5 km south-west of Novoselivka").

The reference points come from the config ([report] places). With none configured, the
nodes stand in ("node 0x0102"): a place anyone holding the registry can find.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from linewatch.geo import haversine_m

COMPASS = ("north", "north-north-east", "north-east", "east-north-east", "east", "east-south-east",
           "south-east", "south-south-east", "south", "south-south-west", "south-west", "west-south-west",
           "west", "west-north-west", "north-west", "north-north-west")
# (upper bound in metres, words): the distance is given as a band, as the fix's own error and
# a reader's map make more digits meaningless
BANDS = ((500, "under 500 m"), (1000, "500 m-1 km"), (2000, "1-2 km"), (5000, "2-5 km"),
         (10000, "5-10 km"), (20000, "10-20 km"), (50000, "20-50 km"))
FAR = "over 50 km"
NEAR_M = 250          # closer than this: "at <place>", no bearing worth saying


@dataclass(frozen=True)
class Reference:
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Placing:
    reference: str
    distance_m: float
    bearing_deg: float       # from the reference point to the incident, degrees from north
    band: str
    compass: str

    @property
    def text(self) -> str:
        if self.distance_m < NEAR_M:
            return "at %s" % self.reference
        return "%s %s of %s" % (self.band, self.compass, self.reference)


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def compass(bearing: float) -> str:
    return COMPASS[int(((bearing % 360.0) + 11.25) // 22.5) % 16]


def band(distance_m: float) -> str:
    for bound, words in BANDS:
        if distance_m < bound:
            return words
    return FAR


def place(references: list[Reference], lat, lon) -> Placing | None:
    """The incident told from its nearest reference point; None without a position or references."""
    if not references or not isinstance(lat, (int, float)) or not isinstance(lon, (int, float)):
        return None
    ref = min(references, key=lambda r: (haversine_m(r.lat, r.lon, lat, lon), r.name))
    d = haversine_m(ref.lat, ref.lon, lat, lon)
    b = bearing_deg(ref.lat, ref.lon, lat, lon)
    return Placing(ref.name, d, b, band(d), compass(b))


def references(places, nodes) -> tuple[list[Reference], str]:
    """The configured places, else the registered nodes; and a sentence saying which."""
    if places:
        return [Reference(p.name, p.lat, p.lon) for p in places], "named reference points ([report] places)"
    return ([Reference("node 0x%04x" % n.id, n.lat, n.lon) for n in nodes],
            "the nearest node (no reference points configured: [report] places)")
