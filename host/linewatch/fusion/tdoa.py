"""Time-difference-of-arrival fix: where and when one sound was emitted, from >= 3 arrivals.

Model: node i at (x_i, y_i) hears at t_i = t0 + |p - n_i| / (c + w.u_i) + e_i, with
e_i ~ N(0, sigma_i), w the (known) wind velocity and u_i the unit vector source -> node: the
wind adds its component along each ray to the speed of sound (calm air: w = 0).
Unknowns are the source p = (x, y) and the emission time t0, solved by weighted nonlinear
least squares (Levenberg-Marquardt). The emission time is carried as s = c * t0 in metres so
all three unknowns share one scale and the normal equations stay well conditioned.

Arrivals that do not fit (an echo picked instead of the direct sound, a wrong clock) are
removed one at a time, worst studentized residual first, while the fit fails a chi-square test
and enough arrivals remain to test the rest (at least four after removal: three are always
fitted exactly and prove nothing).

Positions are in a local east/north frame in metres, times in seconds relative to any
reference the caller picks (the earliest onset keeps the numbers small).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np

from .sound import CALM, travel_time_s

MIN_NODES = 3          # unknowns x, y, t0
MIN_TESTABLE = 4       # one redundant arrival: the least that can reveal a bad one


@dataclass(frozen=True)
class TdoaFix:
    """A localization result. `used`/`rejected` index the arrivals given to `locate`."""
    x: float
    y: float
    t0_s: float
    cov_xy: tuple[tuple[float, float], tuple[float, float]]   # m^2, inflated by chi2/dof when > 1
    chi2: float
    dof: int
    used: tuple[int, ...]
    rejected: tuple[int, ...]
    mirror: "TdoaFix | None" = None    # the other solution when the node layout is nearly a line
    wind: tuple[float, float] = CALM   # (east, north) m/s the fix was computed with

    @property
    def covariance(self) -> np.ndarray:
        return np.array(self.cov_xy, dtype=float)


def chi2_quantile(dof: int, p: float) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile (no scipy on the Pi)."""
    if dof <= 0:
        return 0.0
    z = NormalDist().inv_cdf(p)
    k = 2.0 / (9.0 * dof)
    return dof * (1.0 - k + z * math.sqrt(k)) ** 3


def _residuals(params: np.ndarray, xy: np.ndarray, range_m: np.ndarray, sigma_m: np.ndarray,
               wind=CALM, c: float = 1.0):
    dx = params[0] - xy[:, 0]
    dy = params[1] - xy[:, 1]
    d = np.sqrt(dx * dx + dy * dy)
    d_safe = np.maximum(d, 1e-6)
    jac = np.empty((len(d), 3))
    jac[:, 2] = -1.0 / sigma_m
    if wind[0] == 0.0 and wind[1] == 0.0:
        r = (range_m - params[2] - d) / sigma_m
        jac[:, 0] = -dx / d_safe / sigma_m
        jac[:, 1] = -dy / d_safe / sigma_m
        return r, jac
    # Range c*d/g with g = c + w.u, u = -(dx, dy)/d; its gradient in p is
    # -c (c u - w + 2 u (u.w)) / g^2, so the residual's is the opposite over sigma.
    ux, uy = -dx / d_safe, -dy / d_safe
    along = wind[0] * ux + wind[1] * uy
    g = c + along
    r = (range_m - params[2] - c * d / g) / sigma_m
    scale = c / (g * g) / sigma_m
    jac[:, 0] = scale * (c * ux - wind[0] + 2.0 * ux * along)
    jac[:, 1] = scale * (c * uy - wind[1] + 2.0 * uy * along)
    return r, jac


def _solve3(a, b):
    """x with a x = b for a 3x3 matrix, by cofactors: numpy.linalg.solve's per-call overhead
    is ten times the arithmetic at this size, and the LM loop calls it hundreds of times."""
    (a00, a01, a02), (a10, a11, a12), (a20, a21, a22) = a
    c00 = a11 * a22 - a12 * a21
    c01 = a12 * a20 - a10 * a22
    c02 = a10 * a21 - a11 * a20
    det = a00 * c00 + a01 * c01 + a02 * c02
    if det == 0.0 or not math.isfinite(det):
        return None
    b0, b1, b2 = b
    c10 = a02 * a21 - a01 * a22
    c11 = a00 * a22 - a02 * a20
    c12 = a01 * a20 - a00 * a21
    c20 = a01 * a12 - a02 * a11
    c21 = a02 * a10 - a00 * a12
    c22 = a00 * a11 - a01 * a10
    return ((c00 * b0 + c10 * b1 + c20 * b2) / det,
            (c01 * b0 + c11 * b1 + c21 * b2) / det,
            (c02 * b0 + c12 * b1 + c22 * b2) / det)


def _fit(xy, range_m, sigma_m, start, wind=CALM, c=1.0, iterations=60):
    """Levenberg-Marquardt from `start` = (x, y, s). Returns (params, jacobian, chi2)."""
    params = np.array(start, dtype=float)
    r, jac = _residuals(params, xy, range_m, sigma_m, wind, c)
    cost = float(r @ r)
    lam = 1e-3
    for _ in range(iterations):
        normal = (jac.T @ jac).tolist()
        grad = (jac.T @ r).tolist()
        damped = [row[:] for row in normal]
        for k in range(3):
            damped[k][k] += lam * max(normal[k][k], 1e-12)
        solved = _solve3(damped, grad)
        if solved is None:
            lam *= 10.0
            continue
        step = -np.array(solved)
        size = max(abs(solved[0]), abs(solved[1]), abs(solved[2]))
        if size < 1e-4:      # metres: far below any error
            break
        trial = params + step
        if abs(trial[0] - start[0]) + abs(trial[1] - start[1]) > 100_000.0:
            break                # running off along an asymptote: nothing is heard that far
        r_t, jac_t = _residuals(trial, xy, range_m, sigma_m, wind, c)
        cost_t = float(r_t @ r_t)
        if cost_t <= cost:
            params, r, jac = trial, r_t, jac_t
            stalled = cost - cost_t <= 1e-9 * cost
            cost = cost_t
            lam = max(lam / 3.0, 1e-12)
            if stalled:          # no longer improving (a group that is not one source)
                break
        else:
            lam *= 4.0
            if lam > 1e8:        # damping this strong takes steps too small to matter
                break
    return params, jac, r, cost


def _start_from_grid(xy, range_m, sigma_m, margin_m, points=61):
    """The grid point (and its best emission time) with the least weighted squared misfit."""
    lo = xy.min(axis=0) - margin_m
    hi = xy.max(axis=0) + margin_m
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], points), np.linspace(lo[1], hi[1], points))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    d = np.sqrt(((grid[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    w = 1.0 / sigma_m ** 2
    s = ((range_m[None, :] - d) * w).sum(axis=1) / w.sum()
    misfit = (((range_m[None, :] - d - s[:, None]) ** 2) * w).sum(axis=1)
    best = int(np.argmin(misfit))
    return (grid[best, 0], grid[best, 1], s[best])


def _solve(xy, range_m, sigma_m, start, wind=CALM, c=1.0):
    params, jac, r, chi2 = _fit(xy, range_m, sigma_m, start, wind, c)
    normal = jac.T @ jac
    try:
        cov = np.linalg.inv(normal)
    except np.linalg.LinAlgError:
        cov = np.full((3, 3), np.inf)
    return params, cov, r, chi2, normal


def _studentized(r, jac_normal_inv, jac):
    leverage = np.einsum("ij,jk,ik->i", jac, jac_normal_inv, jac)
    return np.abs(r) / np.sqrt(np.clip(1.0 - leverage, 1e-6, None))


def _make_fix(params, cov, chi2, dof, c, used, rejected, mirror=None, wind=CALM):
    inflate = max(1.0, chi2 / dof) if dof > 0 else 1.0
    cxy = cov[:2, :2] * inflate
    return TdoaFix(
        x=float(params[0]), y=float(params[1]), t0_s=float(params[2] / c),
        cov_xy=((float(cxy[0, 0]), float(cxy[0, 1])), (float(cxy[1, 0]), float(cxy[1, 1]))),
        chi2=float(chi2), dof=dof, used=tuple(used), rejected=tuple(rejected), mirror=mirror,
        wind=(float(wind[0]), float(wind[1])))


def _nearly_collinear(xy: np.ndarray) -> tuple[bool, np.ndarray, np.ndarray]:
    centre = xy.mean(axis=0)
    _, sv, vt = np.linalg.svd(xy - centre, full_matrices=False)
    spread = sv[0] if len(sv) else 0.0
    flat = len(sv) < 2 or spread == 0.0 or sv[1] / spread < 0.15
    return flat, centre, vt[0]


def locate(xy, t_s, sigma_s, c: float, *, start=None, margin_m: float = 8000.0,
           outlier_p: float = 0.999, mirror: bool = True, wind=CALM) -> TdoaFix | None:
    """Robust TDOA fix from >= 3 arrivals, or None when fewer than three are given.

    xy: (n, 2) node positions in metres; t_s: arrival times; sigma_s: their standard errors
    (clock error and model floor combined by the caller); c: speed of sound in m/s;
    start: optional (x, y, t0_s) guess, otherwise a coarse grid search around the nodes;
    mirror: also look for the mirror solution of a nearly straight row (a search trying
    candidate groups skips it and asks again for the fix it keeps);
    wind: (east, north) air velocity in m/s, taken as known (the covariance does not include
    its uncertainty). The grid seed and the closed-form start ignore it: they only start the fit.
    """
    xy = np.asarray(xy, dtype=float)
    t_s = np.asarray(t_s, dtype=float)
    sigma_s = np.asarray(sigma_s, dtype=float)
    n = len(t_s)
    if n < MIN_NODES:
        return None
    if xy.shape != (n, 2) or sigma_s.shape != (n,) or not (sigma_s > 0).all():
        raise ValueError("tdoa: need (n,2) positions and n positive timing errors for n arrivals")
    range_m = t_s * c
    sigma_m = sigma_s * c
    if start is None:
        guess = _start_from_grid(xy, range_m, sigma_m, margin_m)
    else:
        guess = (start[0], start[1], start[2] * c)
    if n == MIN_NODES:
        exact = exact_three(xy, range_m)
        if exact:
            guess = min(exact, key=lambda p: math.hypot(p[0] - guess[0], p[1] - guess[1]))
    keep = list(range(n))
    rejected: list[int] = []
    while True:
        params, cov, r, chi2, _ = _solve(xy[keep], range_m[keep], sigma_m[keep], guess, wind, c)
        dof = len(keep) - 3
        if dof < 1 or len(keep) - 1 < MIN_TESTABLE or chi2 <= chi2_quantile(dof, outlier_p):
            break
        _, jac = _residuals(params, xy[keep], range_m[keep], sigma_m[keep], wind, c)
        worst = int(np.argmax(_studentized(r, cov, jac)))
        rejected.append(keep.pop(worst))
        guess = params
    other = _mirror_solution(xy, range_m, sigma_m, keep, params, chi2, c, wind) if mirror else None
    return _make_fix(params, cov, chi2, len(keep) - 3, c, keep, sorted(rejected), other, wind)


def with_mirror(fix: TdoaFix, xy, t_s, sigma_s, c: float) -> TdoaFix:
    """The fix (from locate with mirror=False on the same arrivals) with its mirror solution
    added as locate(mirror=True) would: a search asks for it only once a fix has passed its
    cheaper tests, since most candidate fits are refused."""
    xy = np.asarray(xy, dtype=float)
    range_m = np.asarray(t_s, dtype=float) * c
    sigma_m = np.asarray(sigma_s, dtype=float) * c
    params = (fix.x, fix.y, fix.t0_s * c)
    other = _mirror_solution(xy, range_m, sigma_m, list(fix.used), params, fix.chi2, c, fix.wind)
    return replace(fix, mirror=other)


def exact_three(xy: np.ndarray, range_m: np.ndarray) -> list[tuple[float, float, float]]:
    """The (at most two) exact solutions (x, y, s) for three arrivals, in closed form.

    Three hyperbola bands meet at the source, but also run side by side for kilometres along
    their asymptotes, where a grid seed (and Levenberg-Marquardt from it) can get lost; the
    closed form goes straight to the crossings. With node 0 at the origin and r0 its range to
    the source, r_j = r0 + d_j gives -2 n_j.p + |n_j|^2 = 2 r0 d_j + d_j^2: p = u + r0 v, and
    |p| = r0 is a quadratic in r0."""
    origin = xy[0]
    nodes = xy[1:] - origin
    d = range_m[1:] - range_m[0]
    a = -2.0 * nodes
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    if abs(det) < 1e-9 * max(1.0, float(np.abs(a).max()) ** 2):
        return []
    inv = np.array([[a[1, 1], -a[0, 1]], [-a[1, 0], a[0, 0]]]) / det
    u = inv @ (d * d - (nodes * nodes).sum(axis=1))
    v = inv @ (2.0 * d)
    qa, qb, qc = float(v @ v) - 1.0, 2.0 * float(u @ v), float(u @ u)
    if abs(qa) < 1e-12:
        roots = [-qc / qb] if qb else []
    else:
        disc = qb * qb - 4.0 * qa * qc
        if disc < 0.0:
            return []
        roots = [(-qb + sign * math.sqrt(disc)) / (2.0 * qa) for sign in (1.0, -1.0)]
    out = []
    for r0 in roots:
        if r0 >= 0.0 and all(r0 + dj >= -1e-6 for dj in d):
            p = u + r0 * v + origin
            out.append((float(p[0]), float(p[1]), float(range_m[0] - r0)))
    return out


def _mirror_solution(xy, range_m, sigma_m, keep, params, chi2, c, wind=CALM):
    """Nodes on (nearly) one straight row cannot tell a source from its reflection across
    the row. Solve from the reflected point; return it when it fits about as well."""
    flat, centre, axis = _nearly_collinear(xy[keep])
    if not flat:
        return None
    p = np.array(params[:2]) - centre
    reflected = centre + 2.0 * axis * (p @ axis) - p
    m_params, m_cov, _, m_chi2, _ = _solve(xy[keep], range_m[keep], sigma_m[keep],
                                          (reflected[0], reflected[1], params[2]), wind, c)
    if math.dist(m_params[:2], params[:2]) < 1.0 or m_chi2 > chi2 + 25.0:
        return None
    return _make_fix(m_params, m_cov, m_chi2, len(keep) - 3, c, keep, [], wind=wind)


def predicted_arrival_s(fix: TdoaFix, x, y, c: float):
    """When the fix's source is heard at (x, y) (arrays welcome), with the fix's wind."""
    return fix.t0_s + travel_time_s(np.asarray(x) - fix.x, np.asarray(y) - fix.y, c, fix.wind)
