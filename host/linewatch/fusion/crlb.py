"""Cramer-Rao lower bound of a TDOA fix: the smallest position covariance any unbiased
estimator can reach for a given source, node layout and timing error.

The emission time is a nuisance unknown estimated along with the position, exactly as the
solver does, so the bound is the 2x2 position block of the inverse Fisher information of
(x, y, c*t0).
"""
from __future__ import annotations

import math

import numpy as np

from . import tdoa
from .sound import CALM


def fisher_information(nodes_xy, source_xy, sigma_s, c: float, wind=CALM) -> np.ndarray:
    """Of (x, y, c*t0), the wind known (the same model and Jacobian as the solver's)."""
    nodes = np.asarray(nodes_xy, dtype=float)
    sigma_m = np.broadcast_to(np.asarray(sigma_s, dtype=float), (len(nodes),)) * c
    source = np.asarray(source_xy, dtype=float)
    _, jac = tdoa._residuals(np.array([source[0], source[1], 0.0]), nodes,
                             np.zeros(len(nodes)), sigma_m, wind, c)
    return jac.T @ jac


def position_bound(nodes_xy, source_xy, sigma_s, c: float, wind=CALM) -> np.ndarray:
    """2x2 covariance bound in m^2 (infinite when the geometry cannot fix the source)."""
    info = fisher_information(nodes_xy, source_xy, sigma_s, c, wind)
    try:
        return np.linalg.inv(info)[:2, :2]
    except np.linalg.LinAlgError:
        return np.full((2, 2), np.inf)


def rms_error_bound(nodes_xy, source_xy, sigma_s, c: float) -> float:
    """sqrt(trace): the bound on root-mean-square position error, metres."""
    cov = position_bound(nodes_xy, source_xy, sigma_s, c)
    return math.sqrt(max(0.0, float(np.trace(cov)))) if np.isfinite(cov).all() else math.inf


def radial_error_quantiles(cov_xy, quantiles=(0.5, 0.9), samples: int = 4000, seed: int = 0):
    """Quantiles of |error| for a zero-mean Gaussian with this covariance (Monte Carlo), so a
    measured median/p90 error can be set next to the bound's own median/p90."""
    cov = np.asarray(cov_xy, dtype=float)
    if not np.isfinite(cov).all():
        return tuple(math.inf for _ in quantiles)
    rng = np.random.default_rng(seed)
    values, vectors = np.linalg.eigh((cov + cov.T) / 2.0)
    draws = rng.standard_normal((samples, 2)) * np.sqrt(np.clip(values, 0.0, None))
    radial = np.linalg.norm(draws @ vectors.T, axis=1)
    return tuple(float(np.quantile(radial, q)) for q in quantiles)
