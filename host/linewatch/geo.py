"""Positions on the line: a local metric frame around a reference point, and the contact line.

Distances along a 1,200 km line need more than one flat frame; every computation that mixes
positions (a TDOA fix, a side-of-line test) happens in a frame centred near the data. The
frame is equirectangular with one longitude scale, so its error grows with the square of the
distance from the centre (about d^2 tan(lat) / R: at latitude 48 degrees roughly 4 m at 5 km
and 17 m at 10 km; the emulator's error budget saw ~10 m for sources 5 km beyond the nodes,
docs/emulator.md). Centre the frame on the nodes of the fix, not on the whole line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class LocalFrame:
    """East/north metres around (lat0, lon0)."""
    lat0: float
    lon0: float

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        x = math.radians(lon - self.lon0) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))
        y = math.radians(lat - self.lat0) * EARTH_RADIUS_M
        return x, y

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        lat = self.lat0 + math.degrees(y / EARTH_RADIUS_M)
        lon = self.lon0 + math.degrees(x / (EARTH_RADIUS_M * math.cos(math.radians(self.lat0))))
        return lat, lon


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class LinePosition:
    """Where a point lies relative to a polyline drawn from its first vertex to its last."""
    distance_m: float      # shortest distance to the line, >= 0
    side: str              # "L" or "R" of the line's direction of drawing ("" when on it)
    along_m: float         # distance along the line to the closest point
    segment_index: int     # index of the closest polyline piece


class ContactLine:
    """The contact line as a polyline of (lat, lon) vertices; sides are L/R of its drawing order."""

    def __init__(self, vertices: list[tuple[float, float]]):
        if len(vertices) < 2:
            raise ValueError("a contact line needs at least two vertices")
        self.vertices = [(float(a), float(b)) for a, b in vertices]
        lat0 = sum(v[0] for v in self.vertices) / len(self.vertices)
        lon0 = sum(v[1] for v in self.vertices) / len(self.vertices)
        self.frame = LocalFrame(lat0, lon0)
        self.xy = [self.frame.to_xy(*v) for v in self.vertices]
        self.lengths = [math.dist(a, b) for a, b in zip(self.xy, self.xy[1:])]
        self.length_m = sum(self.lengths)

    def locate_xy(self, x: float, y: float) -> LinePosition:
        best = None
        along = 0.0
        for i, ((ax, ay), (bx, by)) in enumerate(zip(self.xy, self.xy[1:])):
            dx, dy = bx - ax, by - ay
            seg2 = dx * dx + dy * dy
            t = 0.0 if seg2 == 0 else max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / seg2))
            px, py = ax + t * dx, ay + t * dy
            d = math.hypot(x - px, y - py)
            cross = dx * (y - ay) - dy * (x - ax)
            if best is None or d < best[0]:
                best = (d, cross, along + t * self.lengths[i], i)
            along += self.lengths[i]
        d, cross, at, i = best
        side = "L" if cross > 0 else "R" if cross < 0 else ""
        return LinePosition(d, side, at, i)

    def locate(self, lat: float, lon: float) -> LinePosition:
        return self.locate_xy(*self.frame.to_xy(lat, lon))

    def point_at(self, along_m: float, offset_m: float = 0.0) -> tuple[float, float]:
        """(lat, lon) at a distance along the line, offset to the left (+) or right (-)."""
        along_m = max(0.0, min(self.length_m, along_m))
        for (ax, ay), (bx, by), length in zip(self.xy, self.xy[1:], self.lengths):
            if along_m <= length or length == self.lengths[-1] and (ax, ay) == self.xy[-2]:
                t = 0.0 if length == 0 else along_m / length
                ux, uy = ((bx - ax) / length, (by - ay) / length) if length else (1.0, 0.0)
                x = ax + t * (bx - ax) - uy * offset_m
                y = ay + t * (by - ay) + ux * offset_m
                return self.frame.to_latlon(x, y)
            along_m -= length
        raise AssertionError("unreachable")
