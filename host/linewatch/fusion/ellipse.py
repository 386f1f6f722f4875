"""The 95% error ellipse of a 2-D position covariance."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CHI2_2DOF_95 = 5.991464547107979   # -2 ln(0.05): 95% of a 2-D Gaussian lies inside


@dataclass(frozen=True)
class ErrorEllipse:
    major_m: float       # semi-axes, metres
    minor_m: float
    angle_deg: float     # of the major axis, from east, counter-clockwise, in [0, 180)

    def to_json(self) -> dict:
        return {"major_m": round(self.major_m, 3), "minor_m": round(self.minor_m, 3),
                "angle_deg": round(self.angle_deg, 2)}


def error_ellipse(cov_xy: np.ndarray, scale: float = CHI2_2DOF_95) -> ErrorEllipse | None:
    """None when the covariance is not finite (an unbounded direction)."""
    cov = np.asarray(cov_xy, dtype=float)
    if not np.isfinite(cov).all():
        return None
    values, vectors = np.linalg.eigh((cov + cov.T) / 2.0)
    values = np.clip(values, 0.0, None)
    major = vectors[:, 1]
    angle = math.degrees(math.atan2(major[1], major[0])) % 180.0
    return ErrorEllipse(math.sqrt(scale * values[1]), math.sqrt(scale * values[0]), angle)
