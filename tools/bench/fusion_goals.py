"""Fusion against its goals on whole scenarios, without audio: the world's own propagation
gives each node's arrivals, a detector model turns them into reports, the fusion engine turns
those into incidents, and the strict scorer (linewatch.emulator.score) counts.

What comes from the emulator's world, unchanged: the scenario (generated, or a storm), the
nodes (true and surveyed positions, clocks), who hears what and when (hearing.impulse_arrivals,
the same call truth.json is made from). What this bench models itself, in place of the audio
chain (stated, so a figure can be read): the onset is picked with a jitter that grows as the
SNR falls (0.3 ms at 40 dB, ~3 ms at 10 dB); a weak sound is named "unknown" (SNR under 16 dB:
half the time); each report reaches the commission 0.5-1.5 s after its onset; a node's false
alarms are lone reports at `--false-per-hour`; a repeat of a class within the detector's
refractory time (firmware/detector.py) is not reported. Drones, vehicles and tampering are left out
(no audio here; their figures come from `linewatch emulate`).

    python -m lwtools.bench.fusion_goals [--seeds 7,11,23] [--hours 0.5] [--line-km 50]
    python -m lwtools.bench.fusion_goals --storm 50 [--minutes 10] [--line-km 50]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace

import numpy as np

from linewatch.emulator import hearing, propagation
from linewatch.emulator.generator import generate_scenario
from linewatch.emulator.score import format_text, score
from linewatch.emulator.sources import Impulse
from linewatch.emulator.truth import build_truth
from linewatch.fusion import FusionConfig, FusionEngine, Report
from linewatch.geo import ContactLine

CLOCK_ERROR_MAX_US = 65_535          # the wire's clock error saturates here
WEAK_SNR_DB = 16.0                   # below this a sound is named "unknown" half the time
# The node's detector stays silent this long after a report of a class (firmware/detector.py).
REFRACTORY_US = {"unknown": 500_000, "explosion": 500_000, "small_arms": 100_000}
IMPULSES_PER_HOUR = ("artillery", "explosion", "small_arms")
QUIET = {"drone": 0.0, "vehicle": 0.0, "tamper": 0.0, "node_reboot": 0.0, "node_failure": 0.0,
         "network_outage": 0.0, "broker_outage": 0.0}


def pick_jitter_s(snr_db: np.ndarray) -> np.ndarray:
    """Onset-picking error (1 sigma): 0.3 ms at 40 dB SNR, ten times that at 10 dB."""
    return 0.3e-3 * 10.0 ** ((40.0 - np.clip(snr_db, 10.0, 40.0)) / 30.0)


def reports_of(scenario, world, rng: np.random.Generator, false_per_hour: float):
    """(delivered_us, Report) for every arrival the world gives, plus false alarms."""
    nodes = {n.id: n for n in world.nodes}
    out = []
    t0 = world.start_utc_us
    for source in scenario.sources:
        if not isinstance(source, Impulse):
            continue
        arrivals = hearing.impulse_arrivals(world, source, propagation.DETECTION_SNR_DB, scenario.faults)
        if not arrivals:
            continue
        snr = np.array([a.snr_db for a in arrivals])
        jitter = rng.normal(0.0, pick_jitter_s(snr))
        weak = (snr < WEAK_SNR_DB) & (rng.random(len(arrivals)) < 0.5)
        for a, dt, unnamed in zip(arrivals, jitter, weak):
            true_us = t0 + (a.arrival_s + dt) * 1e6
            cls = "unknown" if unnamed else source.event_class
            out.append(_report(nodes[a.node_id], cls, true_us, a.snr_db, rng))
    hours = scenario.duration_s / 3600.0
    for node in world.nodes:
        for t in rng.uniform(0.0, scenario.duration_s, rng.poisson(false_per_hour * hours)):
            cls = ("unknown", "small_arms", "explosion")[int(rng.integers(0, 3))]
            out.append(_report(node, cls, t0 + t * 1e6, float(rng.uniform(10.0, 20.0)), rng))
    out = _refractory(out)
    out.sort(key=lambda x: x[0])
    # evidence ids, as the commission's log numbers the frames it stores
    return [(d, replace(r, evidence_id=k)) for k, (d, r) in enumerate(out, 1)]


def _refractory(reports):
    """What each node's detector reports: a repeat of a class within its refractory time after
    a report of that class is not reported."""
    kept, last = [], {}
    for delivered, r in sorted(reports, key=lambda x: (x[1].node_id, x[1].onset_utc_us)):
        key = (r.node_id, r.event_class)
        if key in last and r.onset_utc_us - last[key] < REFRACTORY_US[r.event_class]:
            continue
        last[key] = r.onset_utc_us
        kept.append((delivered, r))
    return kept


def _report(node, cls: str, true_us: float, snr_db: float, rng) -> tuple[int, Report]:
    clock = node.clock
    onset_us = clock.node_time_us(true_us, rng)
    error_us = min(CLOCK_ERROR_MAX_US, int(clock.error_estimate_us))
    delivered = int(true_us + rng.uniform(0.5e6, 1.5e6))
    report = Report(node.id, node.reported_lat, node.reported_lon, 0.0, cls, onset_us, error_us,
                    0.8, float(snr_db) + 40.0, 100, 0, float(snr_db), None, delivered,
                    clock_source=clock.source)
    return delivered, report


def run_fusion(scenario, world, reports, config: FusionConfig) -> tuple[list[dict], float]:
    engine = FusionEngine(ContactLine(list(scenario.line_vertices)), config)
    published: dict[str, dict] = {}
    cpu = 0.0
    next_tick = None
    for delivered, report in reports:
        started = time.process_time()
        if next_tick is None:
            next_tick = delivered
        while delivered >= next_tick:
            for i in engine.tick(next_tick):
                published[i.id] = i.to_json()
            next_tick += 1_000_000
        for i in engine.add(report, delivered):
            published[i.id] = i.to_json()
        cpu += time.process_time() - started
    if next_tick is not None:
        for k in range(200):
            for i in engine.tick(next_tick + k * 1_000_000):
                published[i.id] = i.to_json()
    return list(published.values()), cpu


def commission_config(world) -> FusionConfig:
    """What the commission is told of the air: the scenario's temperature and wind (the
    emulator's commission config and the nodes' thermometers)."""
    env = world.environment
    return FusionConfig(temperature_c=env.temperature_c, wind_speed_mps=env.wind_speed_mps,
                        wind_from_deg=env.wind_from_deg)


def storm_scenario(seed: int, per_minute: float, minutes: float, line_km: float):
    """Artillery (launch and impact), explosions and bursts at `per_minute` sources a minute
    along `line_km` (the generator's rates, scaled to this line and rate)."""
    share = {"artillery": 0.25, "explosion": 0.25, "small_arms": 0.25}    # artillery gives 2 sources
    per_hour_line = per_minute * 60.0 * 1200.0 / line_km
    rates = dict(QUIET, **{k: v * per_hour_line for k, v in share.items()})
    return generate_scenario(seed, hours=minutes / 60.0, line_km=line_km, rates_per_hour=rates,
                             name="storm-%d" % seed)


def measure(scenario, false_per_hour: float, seed: int) -> dict:
    world = scenario.build_world()
    rng = np.random.default_rng(seed)
    reports = reports_of(scenario, world, rng, false_per_hour)
    incidents, cpu = run_fusion(scenario, world, reports, commission_config(world))
    result = score(build_truth(scenario, world), incidents)
    result["fusion_cpu_s"] = cpu
    result["reports"] = len(reports)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,11,23", help="generated scenarios (comma-separated seeds)")
    parser.add_argument("--hours", type=float, default=0.5)
    parser.add_argument("--line-km", type=float, default=50.0)
    parser.add_argument("--storm", type=float, metavar="PER_MINUTE",
                        help="a storm of this many impulsive sources a minute instead")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of a storm")
    parser.add_argument("--false-per-hour", type=float, default=0.0,
                        help="lone false reports per node and hour (default 0)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary line per run")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    for seed in seeds:
        if args.storm:
            scenario = storm_scenario(seed, args.storm, args.minutes, args.line_km)
        else:
            scenario = generate_scenario(seed, hours=args.hours, line_km=args.line_km,
                                         rates_per_hour=QUIET)
        started = time.monotonic()
        result = measure(scenario, args.false_per_hour, seed)
        print("== %s: %d reports, fusion CPU %.1f s, %.0f s in all"
              % (scenario.name, result["reports"], result["fusion_cpu_s"], time.monotonic() - started))
        if not args.quiet:
            sys.stdout.write(format_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
