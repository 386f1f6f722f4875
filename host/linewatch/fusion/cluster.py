"""Association: which reports from different nodes can come from one source.

Two tests, from cheap to strong:
- pair_consistent: two onsets can belong to one sound only if they differ by no more than
  the travel time between the two nodes plus both clock errors and a margin.
- partition: a set of open reports is split into sources. Each source is found by stacking
  (for every point of a coarse grid, each arrival implies an emission time t_i - d_i/c; where
  many nodes agree on one emission time there is a source), then fixed by TDOA, then every
  remaining arrival is tested against the fix's predicted arrival time. The strongest source
  is taken out first and the search repeats, so two blasts a second apart and 2 km apart come
  out as two sources even though their arrivals interleave at every node.
  A node contributes at most one arrival to a source; a report goes to one source only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from . import tdoa, timing
from .config import FusionConfig
from .hearing import SILENT_MIN
from .report import Report, compatible, timed as is_timed

# Nodes surveyed within this many survey errors (config.position_sd_m) of the line through them
# are a straight row that cannot tell a source from its mirror image (tdoa.STRAIGHT_ROW_M).
ROW_SURVEY_SIGMAS = 8.0


@dataclass(frozen=True)
class Arrival:
    """A report placed in a local frame: node position (m) and onset (s from a reference)."""
    report: Report
    x: float
    y: float
    t_s: float
    sigma_s: float


@dataclass
class Source:
    """One group of arrivals from one source: kind is "tdoa", "hyperbola" or "detection"."""
    kind: str
    members: list[int]                 # indices into the arrivals, used by the fix
    rejected: list[int] = field(default_factory=list)
    fix: tdoa.TdoaFix | None = None


def timing_sigma_s(report: Report, config: FusionConfig) -> float:
    """The arrival's standard error before the path's jitter (timing.arrival_sigma_s)."""
    return timing.arrival_sigma_s(report, config)


def pair_consistent(a: Arrival, b: Arrival, c: float, config: FusionConfig) -> bool:
    if a.report.node_id == b.report.node_id or not compatible(a.report, b.report):
        return False
    distance = math.hypot(a.x - b.x, a.y - b.y)
    if distance > config.max_baseline_m:
        return False
    slack = distance / c + 3.0 * (a.sigma_s + b.sigma_s) + config.window_margin_us / 1e6
    return abs(a.t_s - b.t_s) <= slack


def partition(arrivals: list[Arrival], c: float, config: FusionConfig, judge=None) -> list[Source]:
    """judge (hearing.Judge, optional) refuses fixes that no real source can give."""
    remaining = set(range(len(arrivals)))
    timed = {i for i in remaining if is_timed(arrivals[i].report, config.max_clock_error_us)}
    sources: list[Source] = []
    rejected_by: dict[int, int] = {}
    grid = _Grid(arrivals, sorted(timed), config) if len(timed) >= tdoa.MIN_NODES else None
    while len({arrivals[i].report.node_id for i in remaining & timed}) >= tdoa.MIN_NODES:
        source = _strongest_source(arrivals, sorted(remaining & timed), c, config, grid, judge)
        if source is None:
            break
        for i in source.rejected:
            rejected_by.setdefault(i, len(sources))
        source.rejected = []
        sources.append(source)
        remaining -= set(source.members)
    for i in sorted(remaining):
        owner = rejected_by.get(i, _closest_fix(arrivals, i, sources, c, config))
        if owner is not None:
            sources[owner].rejected.append(i)
            remaining.discard(i)
    sources.extend(_pairs_and_singles(arrivals, remaining, c, config))
    return sources


class _Grid:
    """The stacking grid over all timed arrivals of one partition and each grid point's
    distance to each arrival's node, computed once: every source taken out of the group
    searches the same grid again with fewer arrivals."""

    def __init__(self, arrivals, indices, config):
        xy = np.array([(arrivals[i].x, arrivals[i].y) for i in indices])
        lo = xy.min(axis=0) - config.search_margin_m
        hi = xy.max(axis=0) + config.search_margin_m
        self.step = max((hi - lo).max() / (config.grid_points - 1), 1.0)
        gx = np.arange(lo[0], hi[0] + self.step / 2, self.step)
        gy = np.arange(lo[1], hi[1] + self.step / 2, self.step)
        self.points = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        self.column = {i: k for k, i in enumerate(indices)}
        self.distance = np.sqrt(((self.points[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))

    def distances(self, indices):
        return self.distance[:, [self.column[i] for i in indices]]


def _strongest_source(arrivals, indices, c, config, grid=None, judge=None) -> Source | None:
    t = np.array([arrivals[i].t_s for i in indices])
    sigma = np.array([arrivals[i].sigma_s for i in indices])
    grid = grid or _Grid(arrivals, indices, config)
    seed = _stack(grid.points, grid.step, grid.distances(indices), t, sigma, c, config)
    if seed is None:
        return None
    return _source_from_seed(arrivals, indices, c, config, seed, judge=judge)


def _source_from_seed(arrivals, indices, c, config, seed, require=None, judge=None) -> Source | None:
    """One arrival per node near the seed's emission time, fitted, re-gated and refitted."""
    xy = np.array([(arrivals[i].x, arrivals[i].y) for i in indices])
    t = np.array([arrivals[i].t_s for i in indices])
    sigma = np.array([arrivals[i].sigma_s for i in indices])
    gx, gy, t0, window = seed
    chosen = _one_per_node(arrivals, indices, t - np.hypot(xy[:, 0] - gx, xy[:, 1] - gy) / c,
                           t0, np.full(len(indices), window))
    if len({arrivals[i].report.node_id for i in chosen}) < tdoa.MIN_NODES or \
            (require is not None and require not in chosen):
        return None
    fix = _fit(arrivals, chosen, c, config, (gx, gy, t0), judge=judge)
    if fix is None or (require is not None and require not in [chosen[k] for k in fix.used]):
        return None
    # Re-gate every open arrival against the fix: the coarse window may have missed some.
    spread_m = math.sqrt(max(0.0, fix.cov_xy[0][0] + fix.cov_xy[1][1]))
    predicted = tdoa.predicted_arrival_s(fix, xy[:, 0], xy[:, 1], c)
    gates = config.gate_sigmas * sigma + spread_m / c + config.window_margin_us / 1e6
    chosen = _one_per_node(arrivals, indices, t - predicted + fix.t0_s, fix.t0_s, gates)
    if len({arrivals[i].report.node_id for i in chosen}) < tdoa.MIN_NODES:
        return None
    fix = _fit(arrivals, chosen, c, config, (fix.x, fix.y, fix.t0_s), mirror=True, judge=judge)
    if fix is None:
        return None
    return Source("tdoa", [chosen[k] for k in fix.used], [chosen[k] for k in fix.rejected], fix)


def anchored_source(arrivals, c, config, judge=None, near_first=True) -> Source | None:
    """The source that includes arrivals[0] (the report just received), or None when none
    can exist: the other arrivals are open reports that each could share a source with it.

    Only a source containing the new report can be new (every other grouping was already
    searched when its own last report arrived), so the search is anchored: at each point
    the new arrival implies one emission time and the others either agree with it or not -
    one pass, no sorting, no search for sources without the new report. The point is found
    coarse to fine: a cell is split only while at least two other nodes can agree with the
    new arrival anywhere inside it (the window widens by the cell's size, so no cell holding
    a source is dropped), down to cells finer than the old whole-group grid."""
    # Three nodes agree along whole hyperbola bands, which can run close together far away
    # as well as cross at the source: the best few separate places are tried in turn.
    # A new source must pass the chi-square test (when it can be tested at all).
    local = local_source(arrivals, c, config, judge) if near_first else None
    if local is not None:
        return local
    seeds, plausible = _ranked_seeds(arrivals, _anchored_seed(arrivals, c, config, judge=judge), c, config)
    return _first_source(arrivals, seeds[:max(plausible, ANCHOR_FITS)], c, config, judge)


def _first_source(arrivals, seeds, c, config, judge, testable=False) -> Source | None:
    """The first seed that gives a source containing the new report and passing chi-square
    (testable: with at least one degree of freedom, so three exact arrivals do not count)."""
    indices = list(range(len(arrivals)))
    for seed in seeds:
        source = _source_from_seed(arrivals, indices, c, config, seed, require=0, judge=judge)
        if source is None or 0 not in source.members:
            continue
        fix = source.fix
        if fix.dof == 0 and not testable or fix.dof >= 1 and fix.chi2 <= tdoa.chi2_quantile(fix.dof, config.outlier_p):
            return source
    return None


def local_source(arrivals, c, config, judge=None) -> Source | None:
    """The common case first: a source near the new report's node, heard by its neighbours.
    The search over the whole hearing range meets a crowd of places where the new arrival and
    unrelated reports of far nodes agree within the window (at 1,000 reports/s a few nodes agree
    by chance in most cells), which costs time and can crowd the real place out of the seeds.
    Near the node, with near nodes only, agreement by chance is rare: a place whose four or
    more arrivals pass chi-square there is taken at once (its fit re-gates every arrival, far
    ones too); otherwise the wide search decides, as before."""
    anchor = arrivals[0]
    near = [a for a in arrivals[1:] if math.hypot(a.x - anchor.x, a.y - anchor.y) <= LOCAL_REACH_M]
    if len({a.report.node_id for a in near}) < tdoa.MIN_TESTABLE - 1:
        return None
    local = [anchor] + near
    seeds, plausible = _ranked_seeds(local, _anchored_seed(local, c, config, LOCAL_HALF_M, LOCAL_APART_M, LOCAL_FINEST_M),
                                     c, config, by_fit=True)
    return _first_source(arrivals, seeds[:plausible], c, config, judge, testable=True)


ANCHOR_CELLS = 32          # first level: cells per axis around the new report's node
ANCHOR_FINEST_M = 40.0     # stop splitting cells below this side
ANCHOR_KEEP = 512          # cells split per level at most (the best-agreeing ones)
ANCHOR_SEEDS = 64          # separate places pre-fitted (_ranked_seeds), best cells first
ANCHOR_APART_M = 1000.0    # how far apart those places must be
ANCHOR_FITS = 4            # seeds fitted at most per report, best pre-fit first (all plausible ones)
PREFIT_STEPS = 5           # Gauss-Newton steps of the pre-fit
LOCAL_HALF_M = 2_000.0     # the local search (_local_source): places this near the new node,
LOCAL_REACH_M = 4_000.0    # ... heard by nodes this near it
LOCAL_APART_M = 150.0      # ... and its seed places this far apart
LOCAL_FINEST_M = 10.0      # finer cells than the wide search's: a narrower window for picking


def _anchored_seed(arrivals, c, config, half=None, apart=ANCHOR_APART_M, finest=ANCHOR_FINEST_M, judge=None):
    anchor, others = arrivals[0], arrivals[1:]
    node_ids = sorted({a.report.node_id for a in others})
    if len(node_ids) < tdoa.MIN_NODES - 1:
        return []
    column_node = np.array([node_ids.index(a.report.node_id) for a in others])
    one_each = len(node_ids) == len(others)
    px = np.array([a.x for a in others])
    py = np.array([a.y for a in others])
    pt = np.array([a.t_s for a in others])
    base = 3.0 * float(np.median([a.sigma_s for a in arrivals])) + config.window_margin_us / 1e6
    # A node hears a source at most half the longest baseline away (two nodes hearing one
    # source are at most max_baseline_m apart).
    half = half or config.max_baseline_m / 2.0
    side = 2.0 * half / ANCHOR_CELLS
    offsets = (np.arange(ANCHOR_CELLS) + 0.5) * side - half
    gx, gy = np.meshgrid(anchor.x + offsets, anchor.y + offsets)
    centres = np.column_stack([gx.ravel(), gy.ravel()])
    children = np.array([(-1, -1), (-1, 1), (1, -1), (1, 1)]) * 0.25
    # Candidate (cell, arrival) pairs: every pair at the first level; below it only those
    # whose arrival agreed in the parent cell, since an arrival that does not agree anywhere
    # in a cell agrees nowhere in its children (a child's window is narrower by at most as
    # much as its centre is nearer). Most arrivals agree in few cells, so this is sparse.
    first_side = side
    cell = np.repeat(np.arange(len(centres)), len(others))
    col = np.tile(np.arange(len(others)), len(centres))
    while True:
        m = len(centres)
        window = base + math.sqrt(2.0) * side / c      # 2 x half-diagonal / c
        emitted = anchor.t_s - np.hypot(centres[:, 0] - anchor.x, centres[:, 1] - anchor.y) / c
        if side == first_side:                  # every pair, by broadcasting
            diff = (pt[None, :] - np.hypot(centres[:, 0, None] - px[None, :], centres[:, 1, None] - py[None, :]) / c
                    - emitted[:, None]).ravel()
        else:
            diff = pt[col] - np.hypot(centres[cell, 0] - px[col], centres[cell, 1] - py[col]) / c - emitted[cell]
        agree = np.abs(diff) <= window
        hits = np.bincount(cell[agree], minlength=m)
        if one_each:
            nodes = hits
        else:                       # a node with several arrivals counts once
            heard = np.zeros((m, len(node_ids)), dtype=bool)
            heard[cell[agree], column_node[col[agree]]] = True
            nodes = heard.sum(axis=1)
        count = hits + 1.0
        if side <= finest:
            break
        keep = np.flatnonzero(nodes >= tdoa.MIN_NODES - 1)
        if not len(keep):
            return []
        if len(keep) > ANCHOR_KEEP:             # only then is the score needed before the end
            score = _cell_score(nodes, count, cell, agree, diff, window)
            keep = keep[np.argsort(-score[keep], kind="stable")[:ANCHOR_KEEP]]
        rank = np.full(m, -1)
        rank[keep] = np.arange(len(keep))
        parent = agree & (rank[cell] >= 0)
        cell = (4 * rank[cell[parent]][:, None] + np.arange(4)[None, :]).ravel()
        col = np.repeat(col[parent], 4)
        centres = (centres[keep][:, None, :] + children[None, :, :] * side).reshape(-1, 2)
        side /= 2.0
    mean = np.bincount(cell, np.where(agree, diff, 0.0), minlength=m) / count
    score = _cell_score(nodes, count, cell, agree, diff, window)
    order = np.flatnonzero(nodes >= tdoa.MIN_NODES - 1)
    order = order[np.argsort(-score[order], kind="stable")][:ANCHOR_SEEDS * 8]
    if judge is not None:               # places whose nearer nodes stayed silent (hearing.py)
        silent = judge.silent_nearer((anchor.x, anchor.y), centres[order], emitted[order], side / math.sqrt(2.0), window)
        order = order[silent < np.maximum(SILENT_MIN, nodes[order] + 1)]
    seeds = []
    while len(order) and len(seeds) < ANCHOR_SEEDS:
        best = order[0]
        x, y = float(centres[best, 0]), float(centres[best, 1])
        seeds.append((x, y, float(emitted[best] + mean[best]), window))
        order = order[np.hypot(centres[order, 0] - x, centres[order, 1] - y) > apart]
    return seeds


def _ranked_seeds(arrivals, seeds, c, config, by_fit=False):
    """The seeds in the order worth fitting, and how many of them are plausible: a few
    Gauss-Newton steps over each seed's agreeing arrivals (one per node, as
    _source_from_seed picks them), all seeds at once with numpy, cost a fraction of one
    Levenberg-Marquardt fit. Plausible: four or more arrivals whose fit (or best four, as the
    outlier test would leave them) passes chi-square. Plausible seeds are tried first, in the
    cells' order, then the others while the budget lasts (ANCHOR_FITS). Three arrivals always
    fit exactly, so they prove nothing here and keep their cell's rank; a plausible 3-node
    class put phantom crossings ahead of real sources (e2e p90 95 -> 295 m)."""
    if len(seeds) <= 1:
        return seeds, len(seeds)
    xy = np.array([(a.x, a.y) for a in arrivals])
    t = np.array([a.t_s for a in arrivals])
    sigma = np.array([a.sigma_s for a in arrivals])
    groups = []
    for gx, gy, t0, window in seeds:
        implied = t - np.hypot(xy[:, 0] - gx, xy[:, 1] - gy) / c
        groups.append(_one_per_node(arrivals, range(len(arrivals)), implied, t0, np.full(len(arrivals), window)))
    width = max(len(g) for g in groups)
    if width < tdoa.MIN_NODES:
        return seeds, len(seeds)
    member = np.zeros((len(seeds), width), dtype=bool)
    pick = np.zeros((len(seeds), width), dtype=int)
    for k, g in enumerate(groups):
        member[k, :len(g)] = True
        pick[k, :len(g)] = g
    nx, ny, nt, ns = xy[pick, 0], xy[pick, 1], t[pick] * c, sigma[pick] * c
    params = np.array([(gx, gy, t0 * c) for gx, gy, t0, _ in seeds])
    ridge = 1e-9 * np.eye(3)
    with np.errstate(all="ignore"):
        for _ in range(PREFIT_STEPS):
            r, jac = _prefit_residuals(params, nx, ny, nt, ns, member)
            normal = np.einsum("ski,skj->sij", jac, jac) + ridge
            try:
                step = np.linalg.solve(normal, -np.einsum("ski,sk->si", jac, r)[..., None])[..., 0]
            except np.linalg.LinAlgError:
                return seeds, len(seeds)        # a degenerate layout: fit them all, as before
            params = params + np.where(np.isfinite(step), step, 0.0)
        r, _ = _prefit_residuals(params, nx, ny, nt, ns, member)
        chi2 = (r * r).sum(axis=1)
        nodes = member.sum(axis=1)
    dof = nodes - 3
    limit = np.array([tdoa.chi2_quantile(int(k), config.outlier_p) if k > 0 else 1.0 for k in dof])
    ratio = np.where(np.isfinite(chi2), chi2 / limit, np.inf)
    # The fit rejects outliers down to four arrivals: a seed whose best four agree is worth it.
    best_four = np.sort(np.where(member, r * r, np.inf), axis=1)[:, :tdoa.MIN_TESTABLE].sum(axis=1)
    ratio = np.minimum(ratio, np.where(nodes > tdoa.MIN_TESTABLE, best_four / tdoa.chi2_quantile(1, config.outlier_p), np.inf))
    plausible = (dof > 0) & (ratio <= 1.0)
    # by_fit (the near search): plausible seeds best fit first. A place mixing a blast's
    # arrivals with the last blast's there can pass too, by a hair; the blast's own place
    # fits to its timing errors.
    order = np.lexsort((ratio, ~plausible)) if by_fit else np.argsort(~plausible, kind="stable")
    return [seeds[k] for k in order], int(plausible.sum())


def _prefit_residuals(params, nx, ny, nt, ns, member):
    dx = params[:, 0, None] - nx
    dy = params[:, 1, None] - ny
    d = np.maximum(np.hypot(dx, dy), 1e-6)
    r = np.where(member, (nt - params[:, 2, None] - d) / ns, 0.0)
    jac = np.stack([-dx / d / ns, -dy / d / ns, -1.0 / ns], axis=-1) * member[..., None]
    return r, jac


def _cell_score(nodes, count, cell, agree, diff, window):
    """Most nodes agreeing first, then the tightest agreement (the new arrival's diff is 0)."""
    spread = np.bincount(cell, np.where(agree, diff * diff, 0.0), minlength=len(nodes))
    return nodes - 0.5 * spread / count / window ** 2


def _fit(arrivals, chosen, c, config, start, mirror=False, judge=None) -> tdoa.TdoaFix | None:
    xy = [(arrivals[i].x, arrivals[i].y) for i in chosen]
    t = [arrivals[i].t_s for i in chosen]
    sigma = [arrivals[i].sigma_s for i in chosen]
    # The mirror solution (a second fit) only for a fix that passes every test below.
    air = judge.air if judge is not None and judge.air is not None else config.air
    fix = tdoa.locate(xy, t, sigma, c, start=start, outlier_p=config.outlier_p, mirror=False, wind=config.wind,
                      air=air)
    if fix is None or not (math.isfinite(fix.x) and math.isfinite(fix.y)):
        return None
    if fix.dof == 0 and fix.chi2 > 1.0:
        return None        # three arrivals whose hyperbolas do not meet: not one source
    xs = [arrivals[i].x for i in chosen]
    ys = [arrivals[i].y for i in chosen]
    reach = config.search_margin_m * 1.5
    if not (min(xs) - reach <= fix.x <= max(xs) + reach and min(ys) - reach <= fix.y <= max(ys) + reach):
        return None        # diverged far outside where anything audible could be
    if fix.t0_s > min(arrivals[i].t_s for i in chosen) + 3 * max(arrivals[i].sigma_s for i in chosen):
        return None        # emitted after it was heard
    used = [arrivals[chosen[k]] for k in fix.used]
    if not mirror:
        # heard too far away, or nearer nodes stayed silent (hearing.py)
        return None if judge is not None and judge.refutes(fix, used) else fix
    fix = tdoa.with_mirror(fix, xy, t, sigma, c, air, row_m=ROW_SURVEY_SIGMAS * config.position_sd_m)
    return _unrefuted(fix, used, judge) if judge is not None else fix


def _unrefuted(fix: tdoa.TdoaFix, used, judge) -> tdoa.TdoaFix | None:
    """The fix, or its places the hearing tests leave standing: a row's fix and its mirror
    image are heard at the same times by the row, but nodes off the row (another row, a bend)
    are nearer one image than the other, and their silence when it should have been heard
    refutes that image. Both refuted: None."""
    images = [fix] + ([fix.mirror] if fix.mirror is not None else [])
    standing = [f for f in images if not judge.refutes(f, used)]
    if len(standing) == len(images):
        return fix
    if not standing:
        return None
    return replace(standing[0], mirror=None, rejected=fix.rejected, prior=fix.prior)


def fit_checked(arrivals, chosen, c, config, start, judge=None) -> tdoa.TdoaFix | None:
    """A fix of the chosen arrivals that also passes the chi-square test (after rejecting
    outliers), or None: what an incident's refit with one more arrival must satisfy."""
    fix = _fit(arrivals, chosen, c, config, start, mirror=True, judge=judge)
    if fix is None or fix.dof < 1:
        return None
    if fix.chi2 > tdoa.chi2_quantile(fix.dof, config.outlier_p):
        return None
    return fix


def _closest_fix(arrivals, i, sources, c, config) -> int | None:
    """A stray arrival (an echo, a bad clock) that fits no fix but could have come from one of
    them: the fix whose predicted arrival at its node is nearest. It is kept as rejected there,
    so it does not stand as an incident of its own."""
    a = arrivals[i]
    best = None
    for k, source in enumerate(sources):
        nodes = {arrivals[j].report.node_id for j in source.members + source.rejected}
        if a.report.node_id in nodes:
            continue
        agree = sum(1 for j in source.members if pair_consistent(a, arrivals[j], c, config))
        if 2 * agree < len(source.members):
            continue
        predicted = float(tdoa.predicted_arrival_s(source.fix, a.x, a.y, c))
        spread_m = math.sqrt(max(0.0, source.fix.cov_xy[0][0] + source.fix.cov_xy[1][1]))
        if heard_before(a.t_s, predicted, a.sigma_s, spread_m, c, config):
            continue
        miss = abs(a.t_s - predicted)
        if best is None or miss < best[0]:
            best = (miss, k)
    return None if best is None else best[1]


def heard_before(onset_s: float, predicted_s: float, sigma_s: float, spread_m: float, c: float,
                 config: FusionConfig) -> bool:
    """An onset earlier than the source's sound can reach its node (beyond the gate: timing
    errors, the fix's spread, the margin) is no echo of it: an echo comes after the direct
    sound. The pairwise test alone lets a node's report pass as a stray of a fix 9 km away,
    and test_cluster_failover's incidents held another blast's report, arrived 13 s before
    their own sound could have, as rejected ("incident mixes blasts {0, 5}")."""
    gate_s = config.gate_sigmas * sigma_s + spread_m / c + config.window_margin_us / 1e6
    return onset_s < predicted_s - gate_s


def _one_per_node(arrivals, indices, implied_t0, t0, gates) -> list[int]:
    """For each node, the arrival whose implied emission time is nearest t0, within its gate."""
    best: dict[int, tuple[float, int]] = {}
    for k, i in enumerate(indices):
        miss = abs(float(implied_t0[k]) - t0)
        if miss > gates[k]:
            continue
        node = arrivals[i].report.node_id
        if node not in best or miss < best[node][0]:
            best[node] = (miss, i)
    return sorted(i for _, i in best.values())


def _stack(grid, step, distance, t, sigma, c, config):
    """Grid point and emission time on which the most arrivals agree (ties: the tightest)."""
    implied = t[None, :] - distance / c
    # A true source's implied times spread by at most the grid's own error plus timing noise.
    window = math.sqrt(2.0) * step / c + 3.0 * float(np.median(sigma)) + config.window_margin_us / 1e6
    order = np.sort(implied, axis=1)
    rows, n = order.shape
    span = float(order.max() - order.min()) + 10.0 * window + 1.0
    flat = (order + (np.arange(rows) * span)[:, None]).ravel()
    ends = np.searchsorted(flat, flat + window, side="right").reshape(rows, n)
    starts = np.arange(rows * n).reshape(rows, n)
    counts = ends - starts
    csum = np.concatenate([np.zeros((rows, 1)), np.cumsum(order, axis=1)], axis=1)
    csq = np.concatenate([np.zeros((rows, 1)), np.cumsum(order * order, axis=1)], axis=1)
    local_end = ends - np.arange(rows)[:, None] * n
    cols = np.arange(n)[None, :]
    row_idx = np.arange(rows)[:, None]
    total = csum[row_idx, local_end] - csum[row_idx, cols]
    total2 = csq[row_idx, local_end] - csq[row_idx, cols]
    mean = total / counts
    var = np.maximum(total2 / counts - mean * mean, 0.0)
    score = counts - 0.5 * var / window ** 2
    best = int(np.argmax(score))
    g, k = divmod(best, n)
    if counts[g, k] < tdoa.MIN_NODES:
        return None
    return float(grid[g, 0]), float(grid[g, 1]), float(mean[g, k]), window


def regroup_loose(arrivals, c, config) -> list[Source]:
    """Arrivals that fit no fix, as hyperbola pairs and single detections."""
    return _pairs_and_singles(arrivals, set(range(len(arrivals))), c, config)


def _pairs_and_singles(arrivals, remaining, c, config) -> list[Source]:
    sources = []
    left = sorted(remaining, key=lambda i: (arrivals[i].t_s, arrivals[i].report.node_id))
    while left:
        first = left.pop(0)
        partner = None
        best_slack = math.inf
        for j in left:
            if pair_consistent(arrivals[first], arrivals[j], c, config) and \
                    is_timed(arrivals[j].report, config.max_clock_error_us) and \
                    is_timed(arrivals[first].report, config.max_clock_error_us):
                slack = abs(arrivals[j].t_s - arrivals[first].t_s)
                if slack < best_slack:
                    partner, best_slack = j, slack
        if partner is None:
            sources.append(Source("detection", [first]))
        else:
            left.remove(partner)
            sources.append(Source("hyperbola", sorted([first, partner])))
    return sources
