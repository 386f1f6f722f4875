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
AIR_MIN_ARRIVALS = 6   # fewest arrivals whose fit estimates the air (3 spare for 3 unknowns)
AIR_TEST_P = 0.99      # ... and only when the told air fails the chi-square test at this level
AIR_GAIN = 0.5         # ... and the fit narrows the speed of sound to half its prior or better
# A nearly straight row's mirror image that fits within this much chi-square of the fix is one
# the arrivals cannot rule out (a bend or a node off the row makes the wrong image fit far worse).
MIRROR_CHI2 = 25.0
# Nodes that all stand within this of the line through them (one may be farther: a survey
# blunder) are a straight row: the two images are told apart only by the nodes' survey errors
# and the air's second-order effects (a wind across the row adds the same to every travel time
# to first order), which is chance: on generated one-row scenarios the wrong image fitted
# better by up to 16 as often as the right one, and a far source in a wind by more than 25.
# The caller gives it from the survey error it assumes (cluster: 8 x position_sd_m, 12 m by
# default: 4 sigma of the field's 3 m); nodes surveyed farther off the row tell the images apart.
STRAIGHT_ROW_M = 12.0


@dataclass(frozen=True)
class Air:
    """What a fit may assume of the air between source and nodes: the speed of sound and the
    wind it was told (a met station, the nodes' thermometers, the segment's recent fixes),
    each with a 1-sigma uncertainty, and the turbulent travel-time scatter that grows with the
    path (variance per metre). With uncertainties the fit estimates the effective speed of
    sound and the wind as nuisance unknowns, the told values as their prior: a blast heard by
    many nodes corrects them, and the position's covariance carries what stays unknown (three
    arrivals cannot tell, so their ellipse grows by what the air's uncertainty makes of it)."""
    c_offset_mps: float = 0.0                  # prior centre: the caller's c plus this
    wind: tuple[float, float] = CALM           # prior centre of the wind (east, north) m/s
    c_sd_mps: float = 0.0
    wind_sd_mps: float = 0.0                   # per component
    jitter_s2_per_m: float = 0.0

    @property
    def estimated(self) -> bool:
        return self.c_sd_mps > 0.0 or self.wind_sd_mps > 0.0


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
    wind: tuple[float, float] = CALM   # (east, north) m/s the fix was computed with (estimated
                                       # when the fit was given an uncertain Air)
    c_mps: float = 0.0                 # effective speed of sound of the fit (0: the caller's c)
    air_sd: tuple[float, float, float] = (0.0, 0.0, 0.0)   # 1-sigma of (c, wind east, north)
                                       # after the fit (0: taken as known)
    prior: "Air | None" = None         # the air the fit was given (airmemory learns the difference)

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


def _air_free(air: Air) -> list[int]:
    """The unknowns of (x, y, s, dc, wind east, wind north) a fit with this air estimates."""
    free = [0, 1, 2]
    if air.c_sd_mps > 0.0:
        free.append(3)
    if air.wind_sd_mps > 0.0:
        free += [4, 5]
    return free


def _air_residuals(p, xy, range_m, sigma_m, c, air: Air, free):
    """Residuals and Jacobian of the arrivals and of the air's prior, with the speed of
    sound c + dc and the wind (p[4], p[5]) unknowns: range c*d/g, g = c + dc + w.u."""
    dx = p[0] - xy[:, 0]
    dy = p[1] - xy[:, 1]
    d = np.sqrt(dx * dx + dy * dy)
    d_safe = np.maximum(d, 1e-6)
    ux, uy = -dx / d_safe, -dy / d_safe
    along = p[4] * ux + p[5] * uy
    c_eff = c + p[3]
    g = c_eff + along
    r = (range_m - p[2] - c * d / g) / sigma_m
    q = c / (g * g * sigma_m)
    columns = (q * (ux * c_eff - p[4] + 2.0 * ux * along), q * (uy * c_eff - p[5] + 2.0 * uy * along),
               -1.0 / sigma_m, q * d, q * d * ux, q * d * uy)
    jac = np.column_stack([columns[k] for k in free])
    centre = (air.c_offset_mps, air.wind[0], air.wind[1])
    sd = (air.c_sd_mps, air.wind_sd_mps, air.wind_sd_mps)
    prior = [k for k in free if k >= 3]
    prior_r = np.array([(p[k] - centre[k - 3]) / sd[k - 3] for k in prior])
    prior_j = np.zeros((len(prior), len(free)))
    for row, k in enumerate(prior):
        prior_j[row, free.index(k)] = 1.0 / sd[k - 3]
    return np.concatenate([r, prior_r]), np.vstack([jac, prior_j])


def _air_solve(xy, range_m, sigma_m, start, c, air: Air, iterations=60):
    """Levenberg-Marquardt over the free unknowns of (x, y, s, dc, we, wn) from `start` (6
    values). Returns (params, covariance of the free unknowns, data residuals, chi2 with
    the prior's terms, data Jacobian)."""
    free = _air_free(air)
    n = len(range_m)
    params = np.array(start, dtype=float)
    r, jac = _air_residuals(params, xy, range_m, sigma_m, c, air, free)
    cost = float(r @ r)
    lam = 1e-3
    for _ in range(iterations):
        normal = jac.T @ jac
        damped = normal + lam * np.diag(np.maximum(np.diag(normal), 1e-12))
        try:
            step = -np.linalg.solve(damped, jac.T @ r)
        except np.linalg.LinAlgError:
            lam *= 10.0
            continue
        if not np.isfinite(step).all():
            break
        if float(np.abs(step[:3]).max()) < 1e-4 and (len(step) == 3 or float(np.abs(step[3:]).max()) < 1e-6):
            break
        trial = params.copy()
        trial[free] += step
        if abs(trial[0] - start[0]) + abs(trial[1] - start[1]) > 100_000.0 or abs(trial[3]) > 0.3 * c:
            break
        r_t, jac_t = _air_residuals(trial, xy, range_m, sigma_m, c, air, free)
        cost_t = float(r_t @ r_t)
        if cost_t <= cost:
            params, r, jac = trial, r_t, jac_t
            stalled = cost - cost_t <= 1e-9 * cost
            cost = cost_t
            lam = max(lam / 3.0, 1e-12)
            if stalled:
                break
        else:
            lam *= 4.0
            if lam > 1e8:
                break
    try:
        cov = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        cov = np.full((len(free), len(free)), np.inf)
    return params, cov, r[:n], cost, jac[:n]


def _air_spread(params, xy, range_m, sigma_m, c, air: Air, cov3):
    """The position block of a fit that took the air as told, grown by what the air's
    uncertainty makes of it (linear propagation: dp = -(Jp'Jp)^-1 Jp'Ja da)."""
    free = _air_free(air)
    _, jac = _air_residuals(params, xy, range_m, sigma_m, c, air, free)
    jp, ja = jac[:len(range_m), :3], jac[:len(range_m), 3:]
    sd = np.array([air.c_sd_mps if k == 3 else air.wind_sd_mps for k in free[3:]])
    gain = -cov3 @ jp.T @ ja
    return cov3 + (gain * sd * sd) @ gain.T


def _tells_air(cov, air: Air) -> bool:
    """The fit narrowed the speed of sound well below its prior (sources inside or near the
    array); a far source on one side of the nodes trades its range against c, and estimating
    c there only adds variance."""
    free = _air_free(air)
    if 3 not in free:
        return True
    var = float(cov[free.index(3), free.index(3)])
    return math.isfinite(var) and math.sqrt(max(var, 0.0)) <= AIR_GAIN * air.c_sd_mps


def _solve_in(xy, range_m, base_m, start6, wind, c, air: Air | None):
    """One fit of the arrivals: the air taken as told (3 unknowns) or, with an uncertain air,
    AIR_MIN_ARRIVALS or more and the told air failing the chi-square test (AIR_TEST_P),
    estimated. Fewer arrivals cannot tell the air from the place, and its freedom would let
    arrivals of different sounds fit one phantom; arrivals the told air fits gain less from
    estimating it than its variance costs. A fit that keeps the told air has its position's
    covariance grown by the air's uncertainty. With path jitter each timing error grows with
    the node's range from the fit, which is repeated once. Returns (params of 6, covariance
    and Jacobian of the fitted unknowns, data residuals, chi2, the position's covariance)."""
    jitter = air.jitter_s2_per_m * c * c if air is not None else 0.0
    estimate = air is not None and air.estimated and len(range_m) >= AIR_MIN_ARRIVALS
    sigma_m = base_m
    if jitter > 0.0:
        d = np.hypot(xy[:, 0] - start6[0], xy[:, 1] - start6[1])
        sigma_m = np.sqrt(base_m * base_m + jitter * d)
    passes = 2 if jitter > 0.0 else 1
    for k in range(passes):
        params3, cov, r, chi2, _ = _solve(xy, range_m, sigma_m, start6[:3], wind, c)
        _, jac = _residuals(params3, xy, range_m, sigma_m, wind, c)
        params = np.array([*params3, start6[3], start6[4], start6[5]])
        if estimate and chi2 > chi2_quantile(len(range_m) - 3, AIR_TEST_P):
            # the told air does not fit these arrivals: estimate it, and keep the estimate
            # when the arrivals tell the speed of sound apart from the place (AIR_GAIN)
            solved = _air_solve(xy, range_m, sigma_m, params, c, air)
            if _tells_air(solved[1], air):
                params, cov, r, chi2, jac = solved
        estimated = len(cov) > 3
        if k + 1 < passes:
            d = np.hypot(xy[:, 0] - params[0], xy[:, 1] - params[1])
            sigma_m = np.sqrt(base_m * base_m + jitter * d)
            start6 = params
    cov_xy = cov[:2, :2]
    if not estimated and air is not None and air.estimated and np.isfinite(cov).all():
        cov_xy = _air_spread(params, xy, range_m, sigma_m, c, air, cov)[:2, :2]
    return params, cov, r, chi2, jac, cov_xy


def _studentized(r, jac_normal_inv, jac):
    leverage = np.einsum("ij,jk,ik->i", jac, jac_normal_inv, jac)
    return np.abs(r) / np.sqrt(np.clip(1.0 - leverage, 1e-6, None))


def _make_fix(params, cov, cov_xy, chi2, dof, c, used, rejected, mirror=None, wind=CALM,
              air: Air | None = None):
    inflate = max(1.0, chi2 / dof) if dof > 0 else 1.0
    cxy = np.asarray(cov_xy) * inflate
    c_mps, air_sd = 0.0, (0.0, 0.0, 0.0)
    if air is not None and air.estimated and len(cov) > 3:
        free = _air_free(air)
        wind = (params[4], params[5])
        c_mps = c + float(params[3])
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None) * inflate)
        air_sd = tuple(float(sd[free.index(k)]) if k in free else 0.0 for k in (3, 4, 5))
    return TdoaFix(
        x=float(params[0]), y=float(params[1]), t0_s=float(params[2] / c),
        cov_xy=((float(cxy[0, 0]), float(cxy[0, 1])), (float(cxy[1, 0]), float(cxy[1, 1]))),
        chi2=float(chi2), dof=dof, used=tuple(used), rejected=tuple(rejected), mirror=mirror,
        wind=(float(wind[0]), float(wind[1])), c_mps=c_mps, air_sd=air_sd)


def _nearly_collinear(xy: np.ndarray) -> tuple[bool, np.ndarray, np.ndarray]:
    centre = xy.mean(axis=0)
    _, sv, vt = np.linalg.svd(xy - centre, full_matrices=False)
    spread = sv[0] if len(sv) else 0.0
    flat = len(sv) < 2 or spread == 0.0 or sv[1] / spread < 0.15
    return flat, centre, vt[0]


def locate(xy, t_s, sigma_s, c: float, *, start=None, margin_m: float = 8000.0,
           outlier_p: float = 0.999, mirror: bool = True, wind=CALM, air: Air | None = None,
           row_m: float = STRAIGHT_ROW_M) -> TdoaFix | None:
    """Robust TDOA fix from >= 3 arrivals, or None when fewer than three are given.

    xy: (n, 2) node positions in metres; t_s: arrival times; sigma_s: their standard errors
    (clock error and model floor combined by the caller); c: speed of sound in m/s;
    start: optional (x, y, t0_s) guess, otherwise a coarse grid search around the nodes;
    mirror: also look for the mirror solution of a nearly straight row (a search trying
    candidate groups skips it and asks again for the fix it keeps);
    wind: (east, north) air velocity in m/s, taken as known unless `air` says how uncertain
    the speed of sound and the wind are (then both are estimated, `air.wind` their prior
    centre, and the covariance carries their uncertainty; `air.jitter_s2_per_m` lets each
    arrival's error grow with its range). The grid seed and the closed-form start ignore the
    wind: they only start the fit.
    """
    xy = np.asarray(xy, dtype=float)
    t_s = np.asarray(t_s, dtype=float)
    sigma_s = np.asarray(sigma_s, dtype=float)
    n = len(t_s)
    if n < MIN_NODES:
        return None
    if xy.shape != (n, 2) or sigma_s.shape != (n,) or not (sigma_s > 0).all():
        raise ValueError("tdoa: need (n,2) positions and n positive timing errors for n arrivals")
    told = air
    c, air = _shifted(c, air)
    if air is not None:
        wind = air.wind
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
    guess = (*guess[:3], air.c_offset_mps if air is not None else 0.0, wind[0], wind[1])
    keep = list(range(n))
    rejected: list[int] = []
    while True:
        params, cov, r, chi2, jac, cov_xy = _solve_in(xy[keep], range_m[keep], sigma_m[keep], guess, wind, c, air)
        dof = len(keep) - 3
        if dof < 1 or len(keep) - 1 < MIN_TESTABLE or chi2 <= chi2_quantile(dof, outlier_p):
            break
        worst = int(np.argmax(_studentized(r, cov, jac)))
        rejected.append(keep.pop(worst))
        guess = params
    other = _mirror_solution(xy, range_m, sigma_m, keep, params, chi2, c, wind, air) if mirror else None
    fix = _told(_make_fix(params, cov, cov_xy, chi2, len(keep) - 3, c, keep, sorted(rejected), other, wind, air),
                c, told)
    return _imaged(_better_first(fix), xy[keep], row_m) if mirror else fix


def _shifted(c: float, air: Air | None) -> tuple[float, Air | None]:
    """An air whose prior centre is off the caller's c (carried from recent fixes: airmemory)
    is fitted at that speed of sound, as if the caller had said it."""
    if air is None or air.c_offset_mps == 0.0:
        return c, air
    return c + air.c_offset_mps, replace(air, c_offset_mps=0.0)


def _told(fix: TdoaFix, c: float, told: Air | None) -> TdoaFix:
    """The fix with the air it was given, and the speed of sound it used when that was not the
    caller's (a fit that keeps the told air still predicts in it)."""
    mirror = fix.mirror
    if told is not None and told.c_offset_mps != 0.0 and not fix.c_mps:
        fix = replace(fix, c_mps=c)
        mirror = replace(mirror, c_mps=c) if mirror is not None and not mirror.c_mps else mirror
    return replace(fix, prior=told, mirror=mirror)


def with_mirror(fix: TdoaFix, xy, t_s, sigma_s, c: float, air: Air | None = None,
                row_m: float = STRAIGHT_ROW_M) -> TdoaFix:
    """The fix (from locate with mirror=False on the same arrivals) with its mirror solution
    added as locate(mirror=True) would: a search asks for it only once a fix has passed its
    cheaper tests, since most candidate fits are refused."""
    xy = np.asarray(xy, dtype=float)
    told = air
    c, air = _shifted(c, air)
    range_m = np.asarray(t_s, dtype=float) * c
    sigma_m = np.asarray(sigma_s, dtype=float) * c
    dc = fix.c_mps - c if fix.c_mps else 0.0
    params = (fix.x, fix.y, fix.t0_s * c, dc, fix.wind[0], fix.wind[1])
    wind = air.wind if air is not None else fix.wind
    other = _mirror_solution(xy, range_m, sigma_m, list(fix.used), params, fix.chi2, c, wind, air)
    return _imaged(_better_first(_told(replace(fix, mirror=other), c, told)), xy[list(fix.used)], row_m)


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


def _mirror_solution(xy, range_m, sigma_m, keep, params, chi2, c, wind=CALM, air: Air | None = None):
    """Nodes on (nearly) one straight row cannot tell a source from its reflection across
    the row. Solve from the reflected point; return it when it fits about as well."""
    flat, centre, axis = _nearly_collinear(xy[keep])
    if not flat:
        return None
    p = np.array(params[:2]) - centre
    reflected = centre + 2.0 * axis * (p @ axis) - p
    # the wind reflected too: the mirror image of a source in a wind across the row is a
    # source in the opposite wind, so a fit that estimates the air starts at the reflection
    w = np.array(params[4:6], dtype=float)
    w = 2.0 * axis * (w @ axis) - w
    start = (reflected[0], reflected[1], params[2], params[3], w[0], w[1])
    m_params, m_cov, _, m_chi2, _, m_xy = _solve_in(xy[keep], range_m[keep], sigma_m[keep], start, wind, c, air)
    if math.dist(m_params[:2], params[:2]) < 1.0 or m_chi2 > chi2 + MIRROR_CHI2:
        return None
    return _make_fix(m_params, m_cov, m_xy, m_chi2, len(keep) - 3, c, keep, [], wind=wind, air=air)


def _straight(xy: np.ndarray, centre: np.ndarray, axis: np.ndarray, row_m: float) -> bool:
    """All nodes but (at most) one within row_m of the line through them."""
    off = np.abs((xy - centre) @ np.array([-axis[1], axis[0]]))
    return len(off) < 2 or float(np.sort(off)[-2]) <= row_m


def _imaged(fix: TdoaFix, xy: np.ndarray, row_m: float) -> TdoaFix:
    """The fix with a mirror image when its used nodes are a straight row: the mirror fit
    when it found one, else the fix reflected across the row (position, covariance, wind)."""
    if fix.mirror is not None:
        return fix
    flat, centre, axis = _nearly_collinear(xy)
    if not flat or not _straight(xy, centre, axis, row_m):
        return fix
    turn = 2.0 * np.outer(axis, axis) - np.eye(2)
    x, y = turn @ (np.array([fix.x, fix.y]) - centre) + centre
    if math.hypot(x - fix.x, y - fix.y) < 1.0:
        return fix
    cov = turn @ fix.covariance @ turn.T
    wind = turn @ np.array(fix.wind)
    image = replace(fix, x=float(x), y=float(y), rejected=(), mirror=None,
                    cov_xy=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
                    wind=(float(wind[0]), float(wind[1])))
    return replace(fix, mirror=image)


def _better_first(fix: TdoaFix) -> TdoaFix:
    """The fix with its mirror image, the one that fits its arrivals better in front (the other
    dropped when it fits far worse: the first fit had stopped short of the source)."""
    mirror = fix.mirror
    if mirror is None or mirror.chi2 >= fix.chi2:
        return fix
    other = replace(fix, mirror=None) if fix.chi2 <= mirror.chi2 + MIRROR_CHI2 else None
    return replace(mirror, rejected=fix.rejected, prior=fix.prior, mirror=other)


def predicted_arrival_s(fix: TdoaFix, x, y, c: float):
    """When the fix's source is heard at (x, y) (arrays welcome), with the fix's wind and, when
    it estimated one, its speed of sound."""
    return fix.t0_s + travel_time_s(np.asarray(x) - fix.x, np.asarray(y) - fix.y, fix.c_mps or c, fix.wind)
