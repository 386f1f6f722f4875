"""Localization accuracy of fusion next to the Cramer-Rao bound, on synthetic geometry, in a
world of a realism profile (`--profile field`, the default, or `ideal`).

For each node layout, source region and kind of clock: place sources (fixed seeds), draw each
node's report with `linewatch.emulator.observe` (the world's propagation through air that
varies in space and time, the board's clock and block stamps, the detector's onset error:
docs/scenarios.md "Realism profiles"), keep the nodes that hear it, give the commission only
what a field commission has (the met station's reading or, under `ideal`, the world's wind;
the surveyed node positions; each frame's stated clock error), run the same association and
fix code the engine runs (cluster.partition), and compare the error with the bound for the
same geometry at the arrivals' real timing error (the spread of reported minus true arrival
times in the cell, with the profile's path jitter at each node's range and its survey error
along each ray). Side of the line is
scored for sources more than 200 m from it.

    python -m lwtools.bench.fusion_accuracy [--trials N] [--profile field|ideal]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
from linewatch.emulator.met import read_met
from linewatch.emulator.observe import bench_world, observe
from linewatch.emulator.sources import Impulse
from linewatch.fusion import FusionConfig, Report, cluster, crlb, speed_of_sound
from linewatch.fusion.side import side_of_fix
from linewatch.geo import ContactLine, LocalFrame
from lwproto.const import CLOCK_ERROR_MAX_US

FRAME = LocalFrame(48.0, 37.0)
LINE = ContactLine([FRAME.to_latlon(-20000.0, 0.0), FRAME.to_latlon(32000.0, 0.0)])  # y > 0 is "L"
WIND = (3.0, 240.0)            # the world's mean wind, m/s and the bearing it blows from
TEMPERATURE_C = 15.0
SOURCE_LEVEL_DB = 150.0        # a shell's blast at 1 m; heard ~10 km and more
SOURCE_HZ = 80.0
SPACING_S = 37.0               # sources follow each other (the clocks and the air move on)
CLOCKS = ("gps_pps", "ntp")


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


def commission(world) -> tuple[FusionConfig, float]:
    """The fusion config and speed of sound a commission has: the met station's reading
    (the world's wind under `ideal`) and, without a station temperature, the air's."""
    met = read_met(world)
    temperature = TEMPERATURE_C if met.temperature_c is None else met.temperature_c
    config = FusionConfig(temperature_c=temperature, wind_speed_mps=met.wind_speed_mps or 0.0,
                          wind_from_deg=met.wind_from_deg or 0.0)
    return config, speed_of_sound(temperature)


def one_trial(world, source_xy, k, rng, config, c):
    """(error m or None, side or None, the heard nodes' true xy, their timing errors s (nan
    where the frame states the wire's saturated error), their distances m)."""
    lat, lon = FRAME.to_latlon(*source_xy)
    impulse = Impulse("s%d" % k, "explosion", "explosion", k * SPACING_S, lat, lon,
                      SOURCE_LEVEL_DB, SOURCE_HZ)
    heard = [o for o in observe(impulse, world, rng) if o.heard]
    nodes = {n.id: n for n in world.nodes}
    true_xy = np.array([FRAME.to_xy(nodes[o.node_id].lat, nodes[o.node_id].lon) for o in heard])
    timing = np.array([(o.reported_utc_us - o.true_arrival_utc_us) / 1e6
                       if o.error_us < CLOCK_ERROR_MAX_US else math.nan for o in heard])
    distance = np.array([o.distance_m for o in heard])
    if len(heard) < 3:
        return None, None, true_xy, timing, distance
    t_ref = min(o.reported_utc_us for o in heard)
    arrivals = []
    for o in heard:
        node = nodes[o.node_id]
        report = Report(o.node_id, node.reported_lat, node.reported_lon, 0.0, "explosion",
                        o.reported_utc_us, o.error_us, 0.9, 120.0, 100, 0, o.snr_db, o.node_id, 0,
                        clock_source=o.clock_source)
        x, y = FRAME.to_xy(node.reported_lat, node.reported_lon)
        arrivals.append(cluster.Arrival(report, x, y, (o.reported_utc_us - t_ref) / 1e6,
                                        cluster.timing_sigma_s(report, config)))
    fixes = [s for s in cluster.partition(arrivals, c, config) if s.kind == "tdoa"]
    if not fixes:
        return None, None, true_xy, timing, distance
    fix = max(fixes, key=lambda s: len(s.members)).fix
    alternatives = []
    if fix.mirror is not None:
        alternatives.append((fix.mirror.x, fix.mirror.y, fix.mirror.covariance,
                             math.exp(-max(0.0, fix.mirror.chi2 - fix.chi2) / 2.0)))
    side = side_of_fix(LINE, FRAME, fix.x, fix.y, fix.covariance, alternatives).side
    return math.dist((fix.x, fix.y), source_xy), side, true_xy, timing, distance


def run(layout_name, region, clock, trials, seed, profile):
    rng = np.random.default_rng(seed)
    layout = LAYOUTS[layout_name]
    world = bench_world([FRAME.to_latlon(x, y) for x, y in layout], profile, seed,
                        TEMPERATURE_C, WIND, ((clock, 1.0),), line=LINE)
    config, c = commission(world)
    jitter_s = world.profile.air.jitter_ms_per_sqrt_km / 1e3
    survey_s = world.profile.board.survey_error_m / c      # per axis; along the ray, per node
    errors, sides, missed, heard = [], [], 0, []
    for k, source in enumerate(sources(layout, region, rng, trials)):
        error, side, true_xy, timing, distance = one_trial(world, source, k, rng, config, c)
        heard.append((source, true_xy, timing, distance))
        if error is None:
            missed += 1
            continue
        errors.append(error)
        if abs(source[1]) > 200.0:
            sides.append(side == ("L" if source[1] > 0 else "R"))
    # The bound at the cell's real timing error: every arrival's reported minus true time
    # (clock, block stamp, onset pick; a common offset is the emission time's), the air's
    # per-path jitter at each node's range, and the profile's survey error along the ray
    # (its rare blunders left out).
    # Frames stating the wire's saturated error (a clock never set) are left out: fusion
    # does not time them.
    timed = np.concatenate([h[2][np.isfinite(h[2])] for h in heard]) if heard else []
    spread = float(np.std(timed)) if len(timed) else 0.0
    bound_draws = []
    for source, true_xy, _, distance in heard:
        if len(true_xy) < 3:
            continue
        sigma = np.sqrt(spread ** 2 + jitter_s ** 2 * distance / 1000.0 + survey_s ** 2)
        bound = crlb.position_bound(true_xy, source, sigma, c, config.wind)
        if np.isfinite(bound).all():
            values, vectors = np.linalg.eigh(bound)
            draws = rng.standard_normal((20, 2)) * np.sqrt(np.clip(values, 0, None))
            bound_draws.extend(np.linalg.norm(draws @ vectors.T, axis=1))
    return errors, bound_draws, sides, missed, spread


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="sources per cell (default 100)")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--profile", choices=("field", "ideal"), default="field",
                        help="realism profile of the world (default field)")
    parser.add_argument("--layouts", default=None,
                        help="comma-separated layout numbers 1-%d (default all)" % len(LAYOUTS))
    args = parser.parse_args(argv)
    names = list(LAYOUTS)
    if args.layouts:
        names = [names[int(k) - 1] for k in args.layouts.split(",")]
    started = time.perf_counter()
    print("profile %s, mean wind %.0f m/s from %.0f deg, %.0f C, blasts of %.0f dB at 1 m, "
          "%d sources per cell" % (args.profile, WIND[0], WIND[1], TEMPERATURE_C, SOURCE_LEVEL_DB,
                                   args.trials))
    print("| layout | sources | clocks | timing sd ms | median m | p90 m | within 25 m | CRLB median m |"
          " CRLB p90 m | median/CRLB | p90/CRLB | side correct | no fix |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    cell = 0
    for layout in names:
        for region in ("inside", "1 km behind", "3 km behind", "5 km behind"):
            for clock in CLOCKS:
                cell += 1
                errors, bound, sides, missed, spread = run(layout, region, clock, args.trials,
                                                           args.seed + cell, args.profile)
                med, p90 = (np.quantile(errors, [0.5, 0.9]) if errors else (math.nan, math.nan))
                within = 100.0 * np.mean(np.array(errors) <= 25.0) if errors else math.nan
                bmed, bp90 = (np.quantile(bound, [0.5, 0.9]) if bound else (math.inf, math.inf))
                side = "%.1f%% (%d)" % (100.0 * sum(sides) / len(sides), len(sides)) if sides else "-"
                print("| %s | %s | %s | %.2f | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.2f | %.2f | %s | %d |"
                      % (layout, region, clock, spread * 1e3, med, p90, within, bmed, bp90,
                         med / bmed, p90 / bp90, side, missed))
    print("(%.0f s)" % (time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
