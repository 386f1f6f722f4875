"""Fusion latency: time from add() of the report that completes a fix to the incident coming
back, with background reports mixed in at a given rate (virtual time, fixed seed).

Background: sources of every class scattered along a 300 km stretch of line with two rows of
nodes (1 km spacing), each heard by 3-6 of the nearest nodes, at `--rate` reports per second.
Targets: one blast every `--every` seconds heard by all nodes within 6 km.
The engine runs on one thread; a report's latency includes the wait behind earlier reports
when the engine falls behind (queueing), so the figures hold at the stated rate.

    python -m lwtools.bench.fusion_latency [--rate 1000] [--seconds 20]
"""
from __future__ import annotations

import argparse
import heapq
import math
import time

import numpy as np

from linewatch.fusion import FusionConfig, FusionEngine, Report, speed_of_sound
from linewatch.geo import ContactLine, LocalFrame

C = speed_of_sound(15.0)
FRAME = LocalFrame(48.0, 37.0)
LENGTH_M = 300_000.0
LINE = ContactLine([FRAME.to_latlon(-1000.0, 0.0), FRAME.to_latlon(LENGTH_M + 1000.0, 0.0)])
NODES = np.array([(x, 500.0) for x in np.arange(0.0, LENGTH_M, 1000.0)] +
                 [(x + 500.0, -500.0) for x in np.arange(0.0, LENGTH_M, 1000.0)])
NODE_LATLON = [FRAME.to_latlon(x, y) for x, y in NODES]
CLASSES = ("explosion", "small_arms", "unknown", "vehicle", "drone", "tamper")
T0 = 1_800_000_000_000_000


def reports_of(source_xy, t_s, event_class, nodes, evidence, frequency_hz=0):
    out = []
    for i in nodes:
        arrival = t_s + math.dist(NODES[i], source_xy) / C
        lat, lon = NODE_LATLON[i]
        out.append((arrival, Report(int(i), lat, lon, 0.0, event_class, T0 + int(arrival * 1e6), 1000, 0.9,
                                    110.0, 100, frequency_hz, 20.0, next(evidence), T0 + int(arrival * 1e6))))
    return out


def schedule(rate, seconds, every, rng):
    evidence = iter(range(1, 10 ** 9))
    events = []
    n_background = int(rate * seconds / 4.5)
    for _ in range(n_background):
        xy = (rng.uniform(0, LENGTH_M), rng.uniform(-3000, 3000))
        cls = CLASSES[rng.integers(len(CLASSES))]
        nearest = np.argsort(np.hypot(NODES[:, 0] - xy[0], NODES[:, 1] - xy[1]))[: rng.integers(3, 7)]
        events += reports_of(xy, rng.uniform(0, seconds), cls, nearest, evidence, 150 if cls == "drone" else 0)
    for k in range(int(seconds / every)):
        xy = (rng.uniform(10_000, LENGTH_M - 10_000), rng.uniform(-2000, 2000))
        heard = np.flatnonzero(np.hypot(NODES[:, 0] - xy[0], NODES[:, 1] - xy[1]) <= 6000.0)
        batch = reports_of(xy, k * every + 0.25, "explosion", heard, evidence)
        events += [(t, r, k) for t, r in batch]
    return sorted(((e[0], e[1], e[2] if len(e) == 3 else None) for e in events), key=lambda e: e[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="background reports per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="virtual seconds to play")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between target blasts")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    events = schedule(args.rate, args.seconds, args.every, np.random.default_rng(args.seed))
    engine = FusionEngine(LINE, FusionConfig())
    busy_until = 0.0           # virtual seconds: when the engine is free again
    service, fixed_latency, fixed = [], [], set()
    next_tick = 1.0
    wall_start = time.perf_counter()
    for arrival, report, target in events:
        while arrival >= next_tick:
            engine.tick(T0 + int(next_tick * 1e6))
            next_tick += 1.0
        start = max(arrival, busy_until)
        t = time.perf_counter()
        incidents = engine.add(report, T0 + int(start * 1e6))
        spent = time.perf_counter() - t
        busy_until = start + spent
        service.append(spent)
        if target is not None and target not in fixed and any(
                i.fix == "tdoa" and i.event_class == "explosion" and report.evidence_id in i.reports for i in incidents):
            fixed.add(target)
            fixed_latency.append(busy_until - arrival)
    wall = time.perf_counter() - wall_start
    n = len(events)
    s = np.array(service) * 1e3
    f = np.array(fixed_latency) * 1e3
    print("%d reports in %.0f virtual s (%.0f/s incl. targets), %d target blasts, %d fixed"
          % (n, args.seconds, n / args.seconds, int(args.seconds / args.every), len(fixed)))
    print("engine throughput: %.0f reports/s of CPU time (wall %.1f s)" % (n / s.sum() * 1e3, wall))
    print("add() service time ms:      p50 %.2f  p99 %.2f  max %.2f" % tuple(np.quantile(s, [0.5, 0.99, 1.0])))
    if len(f):
        print("fix latency ms (w/ queue):  p50 %.2f  p99 %.2f  max %.2f" % tuple(np.quantile(f, [0.5, 0.99, 1.0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
