"""Localization accuracy of fusion next to the Cramer-Rao bound, on synthetic geometry.

For each node layout, source region and timing error: place sources (fixed seeds), compute
each node's arrival (distance / c + clock error + onset-picking jitter), keep the nodes within
hearing range, run the same association and fix code the engine runs (cluster.partition), and
compare the error with the bound for the same geometry and timing. Side of the line is
scored for sources more than 200 m from it.

    python -m lwtools.bench.fusion_accuracy [--trials N]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from linewatch.fusion import FusionConfig, Report, speed_of_sound
from linewatch.fusion import cluster, crlb
from linewatch.fusion.side import side_of_fix
from linewatch.geo import ContactLine, LocalFrame

C = speed_of_sound(15.0)
FRAME = LocalFrame(48.0, 37.0)
LINE = ContactLine([FRAME.to_latlon(-20000.0, 0.0), FRAME.to_latlon(32000.0, 0.0)])  # y > 0 is "L"
PICK_JITTER_S = 0.3e-3      # onset-picking error on top of the clock
HEARING_RANGE_M = 10000.0   # an explosion is heard this far


def row(y, spacing, start=0.0, length=12000.0):
    return [(start + k * spacing, y) for k in range(int(length / spacing) + 1)]


LAYOUTS = {
    "one row, 1 km, 300 m R": row(-300.0, 1000.0),
    "two rows, 1 km, 300/1300 m R": row(-300.0, 1000.0) + row(-1300.0, 1000.0, 500.0),
    "two rows, 1 km, +-500 m": row(500.0, 1000.0) + row(-500.0, 1000.0, 500.0),
    "two rows, 500 m, +-250 m": row(250.0, 500.0) + row(-250.0, 500.0, 250.0),
}


def sources(layout, region, rng, n):
    ys = [y for _, y in layout]
    x = rng.uniform(3000.0, 9000.0, n)
    if region == "inside":
        lo, hi = (min(ys), max(ys)) if max(ys) - min(ys) > 1.0 else (ys[0] - 500.0, ys[0] + 500.0)
        y = rng.uniform(lo, hi, n)
    else:
        y = np.full(n, float(region.split()[0]) * 1000.0)
    return np.column_stack([x, y])


def one_trial(nodes, source, sigma_s, rng, config):
    d = np.hypot(nodes[:, 0] - source[0], nodes[:, 1] - source[1])
    heard = np.flatnonzero(d <= HEARING_RANGE_M)
    noise = rng.normal(0.0, sigma_s, len(heard)) + rng.normal(0.0, PICK_JITTER_S, len(heard))
    t = d[heard] / C + noise
    arrivals = []
    for k, i in enumerate(heard):
        lat, lon = FRAME.to_latlon(*nodes[i])
        report = Report(int(i), lat, lon, 0.0, "explosion", int(t[k] * 1e6), int(sigma_s * 1e6), 0.9,
                        120.0, 100, 0, 20.0, int(i), 0)
        arrivals.append(cluster.Arrival(report, float(nodes[i, 0]), float(nodes[i, 1]), float(t[k]),
                                        cluster.timing_sigma_s(report, config)))
    fixes = [s for s in cluster.partition(arrivals, C, config) if s.kind == "tdoa"]
    bound = crlb.position_bound(nodes[heard], source, math.hypot(sigma_s, PICK_JITTER_S), C)
    if not fixes:
        return None, bound, None
    fix = max(fixes, key=lambda s: len(s.members)).fix
    alternatives = []
    if fix.mirror is not None:
        alternatives.append((fix.mirror.x, fix.mirror.y, fix.mirror.covariance,
                             math.exp(-max(0.0, fix.mirror.chi2 - fix.chi2) / 2.0)))
    side = side_of_fix(LINE, FRAME, fix.x, fix.y, fix.covariance, alternatives).side
    return math.dist((fix.x, fix.y), source), bound, side


def run(layout_name, region, sigma_s, trials, seed, config):
    rng = np.random.default_rng(seed)
    nodes = np.array(LAYOUTS[layout_name], dtype=float)
    errors, bound_draws, sides, missed = [], [], [], 0
    for source in sources(nodes, region, rng, trials):
        error, bound, side = one_trial(nodes, source, sigma_s, rng, config)
        if np.isfinite(bound).all():
            values, vectors = np.linalg.eigh(bound)
            draws = rng.standard_normal((20, 2)) * np.sqrt(np.clip(values, 0, None))
            bound_draws.extend(np.linalg.norm(draws @ vectors.T, axis=1))
        if error is None:
            missed += 1
            continue
        errors.append(error)
        if abs(source[1]) > 200.0:
            sides.append(side == ("L" if source[1] > 0 else "R"))
    return errors, bound_draws, sides, missed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="sources per cell (default 100)")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(argv)
    config = FusionConfig()
    started = time.perf_counter()
    print("c = %.1f m/s, onset-picking jitter %.1f ms, hearing range %.0f km, %d sources per cell"
          % (C, PICK_JITTER_S * 1e3, HEARING_RANGE_M / 1e3, args.trials))
    print("| layout | sources | clock sigma | median m | p90 m | CRLB median m | CRLB p90 m |"
          " median/CRLB | p90/CRLB | side correct | no fix |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cell = 0
    for layout in LAYOUTS:
        for region in ("inside", "1 km behind", "3 km behind", "5 km behind"):
            for sigma_s in (1e-3, 10e-3):
                cell += 1
                errors, bound, sides, missed = run(layout, region, sigma_s, args.trials, args.seed + cell, config)
                med, p90 = (np.quantile(errors, [0.5, 0.9]) if errors else (math.nan, math.nan))
                bmed, bp90 = (np.quantile(bound, [0.5, 0.9]) if bound else (math.inf, math.inf))
                side = "%.1f%% (%d)" % (100.0 * sum(sides) / len(sides), len(sides)) if sides else "-"
                print("| %s | %s | %g ms | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %s | %d |"
                      % (layout, region, sigma_s * 1e3, med, p90, bmed, bp90, med / bmed, p90 / bp90,
                         side, missed))
    print("(%.0f s)" % (time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
