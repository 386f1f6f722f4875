"""The emulator's direct tier on the issue's two loads, timed (projected when shortened).

    python -m lwtools.bench.emulator_tiers [--day-minutes 10] [--storm-minutes 10] [--seed 7] [--compare]

- day: the generated whole line (1,200 km, 1 km spacing: ~1,200 nodes, 10 s heartbeats, the
  generator's realistic mix of events) for `--day-minutes` of scenario; the 24 h figure is
  projected linearly from it (goal: a 24 h day in <= 10 min).
- storm: 500 sources over 50 km in 10 minutes (the generator's classes, rates scaled up);
  `--storm-minutes` plays that much of it (goal: the 10 minutes in <= 2 min).

Each prints the wall time, frames, seconds of audio through the firmware's detectors and where
the CPU went (audio through the detectors, the commission, the rest: heartbeats and the event
loop); the projection scales the run and adds booting the nodes' firmware objects once. On a
shared machine read the CPU-time projection: it is what the tier takes with a core of its own. The full tier's speed is `emulator_scale`'s.
The direct tier runs the detectors' DSP loops as numpy twins (linewatch.emulator.dsp_numpy, the
same integers); `--compare` first runs each load with the firmware's plain-Python loops
(lwnode.dsp_py), so both are measured side by side under the same load.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

STORM_SOURCES = 500
STORM_KM = 50.0
STORM_MINUTES = 10.0
# the generator's mix, as rates per hour for its reference line (1,200 km): scaled to 50 km and
# 10 minutes these give ~500 sources
STORM_MIX = {"artillery": 10000.0, "explosion": 20000.0, "small_arms": 30000.0, "drone": 4000.0,
             "vehicle": 8000.0, "tamper": 0.0, "node_reboot": 0.0, "node_failure": 0.0,
             "network_outage": 0.0, "broker_outage": 0.0}


def run_direct(scenario, label: str, numpy_dsp: bool = True) -> dict:
    from linewatch.emulator.commission import Commission
    from linewatch.emulator.direct import DirectRun, in_process_commission
    from linewatch.emulator.runner import prepare
    folder = Path(tempfile.mkdtemp(prefix="lw-bench-tiers-"))
    try:
        started = time.monotonic()
        world, _truth = prepare(scenario, real_time=False)
        desk = Commission.prepare(folder / "commission", world, ("127.0.0.1", 1))
        setup_s = time.monotonic() - started
        agg = in_process_commission(desk.config_path, desk.master_key)
        try:
            cpu, wall = time.process_time(), time.monotonic()
            run = DirectRun(scenario, world, desk.master_key, agg, folder / "nodes", numpy_dsp=numpy_dsp)
            boot_cpu, boot_s = time.process_time() - cpu, time.monotonic() - wall
            cpu = time.process_time()
            summary = run.run()
            cpu = time.process_time() - cpu
        finally:
            agg.alerter.close()
            agg.store.close()
        incidents = len(desk.incidents())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    label += " [%s DSP loops]" % ("numpy" if numpy_dsp else "plain-Python")
    print("%s: %d nodes, %d sources, %.0f s of scenario: %.1f s wall, %.1f s CPU (audio %.1f, commission %.1f, "
          "the rest: heartbeats and the loop %.1f; +%.1f s CPU to boot the nodes, +%.1f s setup), %d frames, "
          "%d detections, %.0f s of audio (%.1f us CPU per sample), %d incidents"
          % (label, summary.nodes, len(scenario.sources), summary.duration_s, summary.wall_s, cpu,
             summary.audio_cpu_s, summary.commission_cpu_s, cpu - summary.audio_cpu_s - summary.commission_cpu_s,
             boot_cpu, setup_s, summary.frames, summary.detections, summary.audio_s,
             summary.audio_cpu_s / max(1.0, summary.audio_s * 16000) * 1e6, incidents), flush=True)
    return {"nodes": summary.nodes, "sources": len(scenario.sources), "scenario_s": summary.duration_s,
            "wall_s": summary.wall_s, "cpu_s": cpu, "boot_cpu_s": boot_cpu, "boot_s": boot_s, "setup_s": setup_s,
            "frames": summary.frames, "audio_s": summary.audio_s, "audio_cpu_s": summary.audio_cpu_s,
            "commission_s": summary.commission_s, "commission_cpu_s": summary.commission_cpu_s,
            "incidents": incidents}


def main(argv: list[str] | None = None) -> int:
    from linewatch.emulator.generator import generate_scenario
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--day-minutes", type=float, default=10.0, help="minutes of the whole-line day to play (0: skip)")
    ap.add_argument("--storm-minutes", type=float, default=STORM_MINUTES, help="minutes of the storm to play (0: skip)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--compare", action="store_true",
                    help="run each load with the plain-Python DSP loops first (before/after, side by side)")
    args = ap.parse_args(argv)
    loops = (False, True) if args.compare else (True,)
    if args.day_minutes > 0:
        day = generate_scenario(args.seed, hours=args.day_minutes / 60, line_km=1200.0)
        for numpy_dsp in loops:
            r = run_direct(day, "day slice (1,200 km)", numpy_dsp)
            project_day(r, args.day_minutes)
    if args.storm_minutes > 0:
        storm = generate_scenario(args.seed, hours=args.storm_minutes / 60, line_km=STORM_KM,
                                  rates_per_hour=STORM_MIX, name="storm-%d" % args.seed)
        for numpy_dsp in loops:
            r = run_direct(storm, "storm (%.0f km, %.1f min)" % (STORM_KM, args.storm_minutes), numpy_dsp)
            project_storm(r, args.storm_minutes)
    return 0


def project_day(r: dict, day_minutes: float) -> None:
    project(r, 1440 / day_minutes, "24 h of the whole line", 600)


def project_storm(r: dict, storm_minutes: float) -> None:
    project(r, STORM_MINUTES / storm_minutes, "10 min of a %d-source storm over %.0f km" % (STORM_SOURCES, STORM_KM), 120)


def project(r: dict, factor: float, what: str, goal_s: float) -> None:
    """The run scaled to the whole load, plus booting the nodes once (not scaled)."""
    wall = r["boot_s"] + r["wall_s"] * factor
    cpu = r["boot_cpu_s"] + r["cpu_s"] * factor
    print("%s, projected: %.0f s = %.1f min wall (goal <= %.0f min): %s; by CPU time (a core of its own) "
          "%.1f min: %s" % (what, wall, wall / 60, goal_s / 60, "met" if wall <= goal_s else "NOT met", cpu / 60,
                            "met" if cpu <= goal_s else "NOT met"), flush=True)


if __name__ == "__main__":
    sys.exit(main())
