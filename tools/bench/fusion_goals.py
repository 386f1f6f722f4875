"""Fusion against its goals on whole scenarios, without audio: the world's own propagation,
clocks and block stamps give each node's reports, the fusion engine turns those into
incidents, and the strict scorer (linewatch.emulator.score) counts.

Everything a report carries comes from the emulator's world through
`linewatch.emulator.observe` (the call benchmarks draw arrivals with): the scenario (generated,
or a storm) and its realism profile (`--profile field`, the default, or `ideal`), the air
between source and node (air.py: varying temperature and wind, per-path jitter), each node's
clock as its board keeps it and the clock error its frame states, the block stamps of its
sampling loop and the detector's onset error (`profiles.TimingProfile.pick_sd_ms`). Who hears
what uses the same per-source paths truth.json is built from. The commission is given only
what a field commission has (`commission_config`): the met station's reading when its config
is written (met.py; under `ideal` the world's true wind), the nodes' own thermometers when the
station gives no temperature, and every node's surveyed position. What this bench still
models itself, in place of the audio chain (stated, so a figure can be read): a weak sound is
named "unknown" (SNR under 16 dB: half the time); each report reaches the commission 0.5-1.5 s
after its onset, a node's in the order it made them; a node's false alarms are lone reports,
by default at the rates the real detectors give on the profile's background
(`false_alarms.per_node_hour` at the scenario's wind, no rain: under `field` ~10 impulsive
reports per node-hour in calm air, ~21 at 4 m/s; under `ideal` none), or at
`--false-per-hour` (a random impulsive class each); a repeat of a class within the detector's
refractory time (firmware/detector.py) is not reported. Drones,
vehicles and tampering are left out (no audio here; their figures come from `linewatch
emulate`).

    python -m lwtools.bench.fusion_goals [--seeds 7,11,23] [--hours 0.5] [--line-km 50] [--rows 1|2] [--profile field|ideal]
    python -m lwtools.bench.fusion_goals --storm 50 [--minutes 10] [--line-km 50]
    python -m lwtools.bench.fusion_goals --quiet-line [--false-per-hour 2] [--hours 24]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace

import numpy as np
from linewatch.emulator import false_alarms
from linewatch.emulator.generator import generate_scenario
from linewatch.emulator.met import read_met
from linewatch.emulator.observe import observe
from linewatch.emulator.randomness import stream
from linewatch.emulator.score import format_text, score
from linewatch.emulator.sources import Impulse, node_down
from linewatch.emulator.truth import build_truth
from linewatch.fusion import FusionConfig, FusionEngine, Report
from linewatch.geo import ContactLine
from lwproto.const import CLOCK_ERROR_MAX_US

WEAK_SNR_DB = 16.0                   # below this a sound is named "unknown" half the time
# The node's detector stays silent this long after a report of a class (firmware/detector.py).
REFRACTORY_US = {"unknown": 500_000, "explosion": 500_000, "small_arms": 100_000}
IMPULSIVE_FALSE = ("unknown", "explosion", "small_arms")     # drones' go to tracks, left out here
QUIET = {"drone": 0.0, "vehicle": 0.0, "tamper": 0.0, "node_reboot": 0.0, "node_failure": 0.0,
         "network_outage": 0.0, "broker_outage": 0.0}


def false_rates(world, false_per_hour: float | None) -> dict[str, float] | None:
    """Lone false reports per node-hour by class: the real detectors' measured rates on the
    profile's background at the scenario's wind (None), else --false-per-hour (None here:
    a random impulsive class each, as the bench always drew them)."""
    if false_per_hour is not None:
        return None
    rates = false_alarms.per_node_hour(world.profile, world.environment.wind_speed_mps, False)
    return {cls: rates.get(cls, 0.0) for cls in IMPULSIVE_FALSE}


def reports_of(scenario, world, rng: np.random.Generator, false_per_hour: float | None):
    """(delivered_us, Report) for every arrival the world gives, plus false alarms."""
    nodes = {n.id: n for n in world.nodes}
    out = []
    t0 = world.start_utc_us
    for source in scenario.sources:
        if not isinstance(source, Impulse):
            continue
        for shot in range(len(source.shot_times_s())):
            paths_rng = stream(world.seed, "path", source.id)     # truth.json's paths
            heard = [o for o in observe(source, world, rng, shot, paths_rng=paths_rng) if o.heard
                     and not node_down(scenario.faults, o.node_id, (o.true_arrival_utc_us - t0) / 1e6)]
            weak = rng.random(len(heard)) < 0.5
            for o, coin in zip(heard, weak):
                cls = "unknown" if (o.snr_db < WEAK_SNR_DB and coin) else source.event_class
                out.append(_report(nodes[o.node_id], cls, o.true_arrival_utc_us, o.reported_utc_us,
                                   o.error_us, o.clock_source, o.snr_db, rng))
    hours = scenario.duration_s / 3600.0
    by_class = false_rates(world, false_per_hour)
    for node in world.nodes:
        for cls, t in _false_times(rng, scenario.duration_s, hours, false_per_hour, by_class):
            true_us = t0 + t * 1e6
            source_name, error = node.clock.reported(true_us)
            out.append(_report(node, cls, true_us, node.clock.node_time_us(true_us, rng),
                               min(error, CLOCK_ERROR_MAX_US), source_name,
                               float(rng.uniform(10.0, 20.0)), rng))
    out = _in_order(_refractory(out))
    out.sort(key=lambda x: x[0])
    # evidence ids, as the commission's log numbers the frames it stores
    return [(d, replace(r, evidence_id=k)) for k, (d, r) in enumerate(out, 1)]


def _false_times(rng, duration_s: float, hours: float, false_per_hour, by_class):
    """(class, second) of one node's false alarms."""
    if by_class is None:
        return [(("unknown", "small_arms", "explosion")[int(rng.integers(0, 3))], t)
                for t in rng.uniform(0.0, duration_s, rng.poisson(false_per_hour * hours))]
    return [(cls, t) for cls, rate in by_class.items()
            for t in rng.uniform(0.0, duration_s, rng.poisson(rate * hours))]


def _in_order(reports):
    """A node sends its reports in the order it made them (one uplink, frames in sequence):
    a report is delivered no earlier than the node's previous one."""
    out, last = [], {}
    for delivered, r in sorted(reports, key=lambda x: (x[1].node_id, x[1].onset_utc_us)):
        delivered = max(delivered, last.get(r.node_id, delivered))
        last[r.node_id] = delivered
        out.append((delivered, r))
    return out


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


def _report(node, cls: str, true_us: float, onset_us: int, error_us: int, clock_source: str,
            snr_db: float, rng) -> tuple[int, Report]:
    """The event frame as the commission reads it: the node's surveyed position, its dating
    of the onset and the clock error it states."""
    delivered = int(true_us + rng.uniform(0.5e6, 1.5e6))
    report = Report(node.id, node.reported_lat, node.reported_lon, 0.0, cls, int(onset_us),
                    int(error_us), 0.8, float(snr_db) + 40.0, 100, 0, float(snr_db), None, delivered,
                    clock_source=clock_source)
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
    """What the commission is told of the air, as the emulator's commission is (commission.py):
    the met station's reading when its config is written (met.py: under `field` a cheap
    station behind the line, with its error; under `ideal` the world's true wind), and when
    the station gives no temperature the median of the nodes' own thermometers (the
    aggregator's fusion hook takes the median of the heartbeats' readings)."""
    met = read_met(world)
    temperature = met.temperature_c
    if temperature is None:
        temperature = statistics.median(thermometer_c(world, n, 0.0) for n in world.nodes)
    return FusionConfig(temperature_c=float(temperature), wind_speed_mps=float(met.wind_speed_mps or 0.0),
                        wind_from_deg=float(met.wind_from_deg or 0.0))


def thermometer_c(world, node, t_s: float) -> float:
    """What the node's board thermometer reads at t_s (boardview.WorldBoard.temperature_c)."""
    air = world.air
    return node.board.thermometer.reading_c(float(air.temperature_at(node.lat, node.lon, t_s)),
                                            float(air.sun(t_s, node.lon)), 0)


def storm_scenario(seed: int, per_minute: float, minutes: float, line_km: float,
                   profile: str = "field", rows: int = 1):
    """Artillery (launch and impact), explosions and bursts at `per_minute` sources a minute
    along `line_km` (the generator's rates, scaled to this line and rate)."""
    share = {"artillery": 0.25, "explosion": 0.25, "small_arms": 0.25}    # artillery gives 2 sources
    per_hour_line = per_minute * 60.0 * 1200.0 / line_km
    rates = dict(QUIET, **{k: v * per_hour_line for k, v in share.items()})
    return generate_scenario(seed, hours=minutes / 60.0, line_km=line_km, rates_per_hour=rates,
                             name="storm-%d" % seed, profile=profile, rows=rows)


def measure(scenario, false_per_hour: float | None, seed: int) -> dict:
    world = scenario.build_world()
    rng = np.random.default_rng(seed)
    reports = reports_of(scenario, world, rng, false_per_hour)
    incidents, cpu = run_fusion(scenario, world, reports, commission_config(world))
    result = score(build_truth(scenario, world), incidents)
    result["fusion_cpu_s"] = cpu
    result["reports"] = len(reports)
    rates = false_rates(world, false_per_hour)
    result["false_per_node_hour"] = sum(rates.values()) if rates is not None else false_per_hour
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,11,23", help="generated scenarios (comma-separated seeds)")
    parser.add_argument("--hours", type=float, default=0.5)
    parser.add_argument("--line-km", type=float, default=50.0)
    parser.add_argument("--rows", type=int, choices=(1, 2), default=1,
                        help="rows of nodes (1: 300 m behind the line, the generator's default; "
                             "2: also 900 m behind)")
    parser.add_argument("--profile", choices=("field", "ideal"), default="field",
                        help="realism profile of the world (default field)")
    parser.add_argument("--storm", type=float, metavar="PER_MINUTE",
                        help="a storm of this many impulsive sources a minute instead")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of a storm")
    parser.add_argument("--false-per-hour", type=float, default=None,
                        help="lone false reports per node and hour, a random impulsive class each "
                             "(default: the real detectors' measured rates on the profile's "
                             "background, by class: ~10 per hour under field in calm air, 0 under ideal)")
    parser.add_argument("--quiet-line", action="store_true",
                        help="no sources at all: only the false reports")
    parser.add_argument("--quiet", action="store_true", help="print only the summary line per run")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    for seed in seeds:
        if args.storm:
            scenario = storm_scenario(seed, args.storm, args.minutes, args.line_km, args.profile,
                                      args.rows)
        else:
            rates = dict(QUIET, artillery=0.0, explosion=0.0, small_arms=0.0) if args.quiet_line else QUIET
            scenario = generate_scenario(seed, hours=args.hours, line_km=args.line_km,
                                         rates_per_hour=rates, profile=args.profile, rows=args.rows)
        started = time.monotonic()
        result = measure(scenario, args.false_per_hour, seed)
        print("== %s (%s): %d reports (%.1f lone false per node-hour), fusion CPU %.1f s, %.0f s in all"
              % (scenario.name, args.profile, result["reports"], result["false_per_node_hour"],
                 result["fusion_cpu_s"], time.monotonic() - started))
        if not args.quiet:
            sys.stdout.write(format_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
