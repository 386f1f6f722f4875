"""Side of the contact line for a fix: which side, how sure, how far.

The line is evaluated in the fix's own local frame (not the ContactLine's single frame, which
is centred on the whole line and stretches east-west over hundreds of kilometres), so the
side of a source a few metres from the line is decided with the same geometry as its fix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ..geo import ContactLine, LocalFrame

_NORMAL = NormalDist()


@dataclass(frozen=True)
class SideOfLine:
    side: str | None            # "L"/"R" of the line's drawing order; None when exactly on it
    probability: float | None   # probability that `side` is right
    distance_m: float           # shortest distance to the line


@dataclass(frozen=True)
class _Nearest:
    distance_m: float
    signed_m: float            # > 0 left of the drawing direction, < 0 right
    normal: tuple[float, float]  # unit vector to the left of the drawing direction


def nearest(line: ContactLine, frame: LocalFrame, x: float, y: float) -> _Nearest:
    best: _Nearest | None = None
    points = [frame.to_xy(lat, lon) for lat, lon in line.vertices]
    for (ax, ay), (bx, by) in zip(points, points[1:]):
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        if length2 == 0.0:
            continue
        t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / length2))
        px, py = ax + t * dx, ay + t * dy
        distance = math.hypot(x - px, y - py)
        if best is None or distance < best.distance_m:
            length = math.sqrt(length2)
            normal = (-dy / length, dx / length)
            cross = dx * (y - ay) - dy * (x - ax)
            best = _Nearest(distance, math.copysign(distance, cross) if cross else 0.0, normal)
    if best is None:
        raise ValueError("contact line has no segment of non-zero length")
    return best


def _probability_left(near: _Nearest, cov_xy) -> float:
    n = np.array(near.normal)
    cov = np.asarray(cov_xy, dtype=float)
    if not np.isfinite(cov).all():
        return 0.5
    sigma = math.sqrt(max(0.0, float(n @ cov @ n)))
    if sigma == 0.0:
        return 1.0 if near.signed_m > 0 else 0.0 if near.signed_m < 0 else 0.5
    return _NORMAL.cdf(near.signed_m / sigma)


def side_of_fix(line: ContactLine, frame: LocalFrame, x: float, y: float, cov_xy,
                alternatives=()) -> SideOfLine:
    """Side of a Gaussian position estimate. `alternatives` are (x, y, cov, weight) of other
    solutions that fit (a single row's mirror image); the probability mixes all of them."""
    near = nearest(line, frame, x, y)
    solutions = [(near, cov_xy, 1.0)]
    for ax, ay, acov, weight in alternatives:
        solutions.append((nearest(line, frame, ax, ay), acov, weight))
    total = sum(w for _, _, w in solutions)
    p_left = sum(_probability_left(n, c) * w for n, c, w in solutions) / total
    if p_left == 0.5 and near.signed_m == 0.0:
        return SideOfLine(None, None, near.distance_m)
    side = "L" if p_left > 0.5 or (p_left == 0.5 and near.signed_m > 0) else "R"
    return SideOfLine(side, p_left if side == "L" else 1.0 - p_left, near.distance_m)


def side_of_points(line: ContactLine, frame: LocalFrame, points, x: float, y: float) -> SideOfLine:
    """Side of a curve of possible positions (a hyperbola branch): the share of its points
    on the majority side, and the distance of the reported point (x, y)."""
    signs = [nearest(line, frame, px, py).signed_m for px, py in points]
    left = sum(1 for s in signs if s > 0)
    right = sum(1 for s in signs if s < 0)
    distance = nearest(line, frame, x, y).distance_m
    if left == right:
        return SideOfLine(None, None, distance)
    side = "L" if left > right else "R"
    return SideOfLine(side, max(left, right) / float(left + right), distance)
