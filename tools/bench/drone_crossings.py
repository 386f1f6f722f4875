"""Small drones crossing the line: detected by the nodes' own detector, tracked by fusion.

    python -m lwtools.bench.drone_crossings [--seeds 1 2 3] [--crossings 4] [--profile field]

Per seed: a straight 12 km line with a row of nodes 200 m either side of it, each every
600 m, staggered (docs/fusion.md "Recommended layouts": a track is placed where the nodes
hearing it stand, so only nodes on both sides can see it change side; a node hears a small
drone a few hundred metres away, so the generated days' row 300 m behind the line every
1,000 m neither hears one on both sides nor tells the sides apart) and --crossings drones drawn as they are (5-30 m/s, 30-150 m up,
75-95 dB at 1 m, blade pass 100-400 Hz, the scenario's wind 0-6 m/s), each flying from
300-600 m on one side to 300-600 m on the other, one every 240 s. The direct tier plays it:
every node's firmware detector on the synthesized audio (background included) and the
commission's fusion in-process; the strict scorer counts crossings within hearing range
(truth: a node hears the track on each side) reported with the right direction. Also per
(node, drone): whether the node's detector reported a drone, by closest slant distance and by
truth's peak SNR (its hearing model), which is the detector's hearing range.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from lwtools.bench.track_passes import LINE_KM, print_snr_table, scenario_head

GAP_S = 240.0
DISTANCE_BINS_M = (0, 200, 400, 600, 800, 1200, 10_000)


def scenario_text(seed: int, crossings: int, profile: str) -> str:
    rng = np.random.default_rng(seed)
    lines = scenario_head(rng, "drones-%d" % seed, seed, int(crossings * GAP_S + 60), profile)
    for k in range(crossings):
        along = rng.uniform(2000.0, LINE_KM * 1000.0 - 2000.0)
        side = 1.0 if rng.random() < 0.5 else -1.0
        a = (along + rng.uniform(-300, 300), side * rng.uniform(300.0, 600.0))
        b = (along + rng.uniform(-300, 300), -side * rng.uniform(300.0, 600.0))
        lines += ["[[event]]", 'id = "drone-%d"' % (k + 1), 'type = "drone"', "time_s = %.0f" % (10 + k * GAP_S),
                  "path = [{ along_m = %.0f, offset_m = %.0f }, { along_m = %.0f, offset_m = %.0f }]" % (a + b),
                  "speed_mps = %.1f" % rng.uniform(5.0, 30.0), "altitude_m = %.0f" % rng.uniform(30.0, 150.0),
                  "level_db = %.1f" % rng.uniform(75.0, 95.0), "fundamental_hz = %.0f" % rng.uniform(100.0, 400.0)]
    return "\n".join(lines) + "\n"


def run_seed(seed: int, crossings: int, profile: str) -> dict:
    from linewatch.emulator import scenario as sc
    from linewatch.emulator.runner import prepare
    from lwtools.bench.track_passes import node_passes, play

    scenario = sc.loads(scenario_text(seed, crossings, profile), "drones-%d" % seed)
    world, truth = prepare(scenario, real_time=False)
    reports, summary, result = play(scenario, world, truth, "lw-bench-drones-")
    passes = [(dist, snr, found) for _track, dist, snr, found in
              node_passes(scenario, world, reports, 3, lambda track: track.altitude_m, after_s=10)]
    return {"seed": seed, "crossings": result["crossings"].get("drone", {}), "passes": passes,
            "summary": summary, "tracks": result.get("tracks", {}),
            "false": result["false"]["count"], "incidents": result["false"].get("of", None)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--crossings", type=int, default=4, help="drones per seed")
    ap.add_argument("--profile", default="field")
    args = ap.parse_args(argv)
    started = time.monotonic()
    total = {"in_hearing_range": 0, "reported": 0, "direction_right": 0, "crossings": 0}
    passes = []
    print("| seed | crossings | within hearing range | reported | direction right | audio s | wall s |")
    print("|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        r = run_seed(seed, args.crossings, args.profile)
        c = r["crossings"]
        for k in total:
            total[k] += c.get(k, 0)
        passes += r["passes"]
        print("| %d | %d | %d | %d | %d | %.0f | %.0f |" % (seed, c.get("crossings", 0), c.get("in_hearing_range", 0),
                                                         c.get("reported", 0), c.get("direction_right", 0),
                                                         r["summary"].audio_s, r["summary"].wall_s), flush=True)
    rate = total["direction_right"] / total["in_hearing_range"] if total["in_hearing_range"] else float("nan")
    print("all: %d crossings, %d within hearing range, %d reported, %d with the right direction (%.0f %%; goal >= 90 %%)"
          % (total["crossings"], total["in_hearing_range"], total["reported"], total["direction_right"], 100 * rate))
    print()
    print("| closest slant distance m | node passes | detected by the node |\n|---|---|---|")
    for lo, hi in zip(DISTANCE_BINS_M, DISTANCE_BINS_M[1:]):
        sel = [f for d, _s, f in passes if lo <= d < hi]
        if sel:
            print("| %d-%d | %d | %d (%.0f %%) |" % (lo, hi, len(sel), sum(sel), 100.0 * sum(sel) / len(sel)))
    print()
    print_snr_table([(s, f) for _d, s, f in passes])
    print("(%.0f s)" % (time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
