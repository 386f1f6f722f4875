"""A fix its arrivals cannot tell from its mirror image, said as such.

Nodes in one straight row hear a source and its reflection across the row at the same times
(the wind's component across the row adds the same to every travel time, and the emission
time absorbs it), so such a fix has two places (tdoa.py finds the second: `TdoaFix.mirror`).
On a straight row only the nodes' survey errors tell them apart, which is chance: on generated
one-row scenarios the wrong image fitted better about as often as the right one. So:
- images within ONE_PLACE_M of each other are one place: the fix stands, its covariance grown
  to the two images' mixture about the fix, so that the 95 % ellipse holds both;
- images farther apart make a "mirror" incident: both places, neither claimed; its side of
  the line is the one both images are on, with the mixture's probability, or undecided when
  they lie on either side (a single row cannot tell the side of a far source).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geo import ContactLine, LocalFrame, haversine_m
from . import side as side_of_line
from .ellipse import error_ellipse
from .incident import Incident, MirrorImage
from .tdoa import TdoaFix

# Two images nearer than this are one place whose ellipse holds both (the distance within which
# a fix still tells an operator which position fired: docs/scenarios.md "Score").
ONE_PLACE_M = 200.0


@dataclass(frozen=True)
class Placement:
    """What a fix says of its place: kind "tdoa" (one place, `cov_xy` its covariance) or
    "mirror" (two, the other in `mirror`), and the side of the line."""
    kind: str
    cov_xy: np.ndarray
    side: side_of_line.SideOfLine
    mirror: MirrorImage | None = None


def place(line: ContactLine, frame: LocalFrame, fix: TdoaFix) -> Placement:
    """The fix's place, or places, and its side of the line."""
    cov = fix.covariance
    other = fix.mirror
    if other is None:
        return Placement("tdoa", cov, side_of_line.side_of_fix(line, frame, fix.x, fix.y, cov))
    offset = np.array([other.x - fix.x, other.y - fix.y])
    both = [(other.x, other.y, other.covariance, 1.0)]      # equally likely: see above
    if math.hypot(*offset) <= ONE_PLACE_M:
        grown = 0.5 * cov + 0.5 * (other.covariance + np.outer(offset, offset))
        return Placement("tdoa", grown, side_of_line.side_of_fix(line, frame, fix.x, fix.y, grown, both))
    here = side_of_line.side_of_fix(line, frame, fix.x, fix.y, cov)
    there = side_of_line.side_of_fix(line, frame, other.x, other.y, other.covariance)
    mixed = side_of_line.side_of_fix(line, frame, fix.x, fix.y, cov, both)
    if here.side is None or here.side != there.side or mixed.side != here.side:
        mixed = side_of_line.SideOfLine(None, None, here.distance_m)
    lat, lon = frame.to_latlon(other.x, other.y)
    image = MirrorImage(lat, lon, error_ellipse(other.covariance), there.side, there.distance_m)
    return Placement("mirror", cov, mixed, image)


def apart_m(a: Incident, b: Incident) -> float:
    """How far apart two located incidents are: the nearest of their places (a "mirror"
    incident has two)."""
    return min(haversine_m(*p, *q) for p in a.places() for q in b.places())
