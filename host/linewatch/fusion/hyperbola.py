"""Two arrivals: the source lies on one branch of a hyperbola with the two nodes as foci.

Reported position is the branch's vertex, the point of the branch nearest the pair's
midline (on the baseline between the nodes); the sampled branch lets the caller say on which
side of the contact line the possible positions lie.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class HyperbolaFix:
    x: float                 # vertex of the branch
    y: float
    range_difference_m: float  # |p - a| - |p - b| on the branch
    branch: tuple[tuple[float, float], ...]  # sampled points, out to `reach_m` from the midpoint


def hyperbola(a, b, t_a: float, t_b: float, c: float, reach_m: float = 8000.0,
              samples: int = 41) -> HyperbolaFix:
    ax, ay = a
    bx, by = b
    baseline = math.hypot(bx - ax, by - ay)
    if baseline == 0.0:
        raise ValueError("hyperbola: the two nodes are at the same position")
    ux, uy = (bx - ax) / baseline, (by - ay) / baseline
    mx, my = (ax + bx) / 2.0, (ay + by) / 2.0
    delta = c * (t_a - t_b)                     # |p-a| - |p-b|
    half = max(-baseline / 2.0, min(baseline / 2.0, delta / 2.0))
    vertex = (mx + ux * half, my + uy * half)
    semi_major = abs(half)
    focal = baseline / 2.0
    points = []
    if semi_major >= focal:                      # end-fire: a ray beyond the earlier node
        sign = 1.0 if half > 0 else -1.0
        for k in range(samples):
            s = focal + (reach_m - focal) * k / (samples - 1)
            points.append((mx + ux * sign * s, my + uy * sign * s))
    else:
        semi_minor = math.sqrt(focal * focal - semi_major * semi_major)
        sign = 1.0 if half >= 0 else -1.0
        tau_max = math.asinh(reach_m / max(semi_minor, 1e-9))
        for k in range(samples):
            tau = -tau_max + 2.0 * tau_max * k / (samples - 1)
            u = sign * semi_major * math.cosh(tau)
            v = semi_minor * math.sinh(tau)
            points.append((mx + ux * u - uy * v, my + uy * u + ux * v))
    return HyperbolaFix(vertex[0], vertex[1], delta, tuple(points))
