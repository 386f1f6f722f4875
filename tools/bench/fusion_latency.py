"""Fusion latency: time from add() of the report that completes a fix to the incident coming
back, and from the target's third arrival (the first report that makes a fix possible) to its
first fix, with background reports mixed in at a given rate (virtual time, fixed seed).

Background: sources of every class scattered along a 300 km stretch of line with two rows of
nodes (1 km spacing), each heard by 3-6 of the nearest nodes, at `--rate` reports per second.
Targets: one blast every `--every` seconds heard by all nodes within 6 km.
The engine runs on one thread; a report's latency includes the wait behind earlier reports
when the engine falls behind (queueing), so the figures hold at the stated rate. Each call
lasts its own CPU time (process_time): the figures are those of an engine with a core of its
own, whatever else the machine runs.

Two latencies per target blast: "completing" counts from the arrival of the report whose add()
returned the blast's first tdoa incident (the figure this bench always printed); "from 3rd
arrival" counts from the arrival of the blast's third report, the first that makes a fix
possible, to the end of the add(), settle() or tick() that returned a tdoa incident with three or
more of the blast's reports. `--defer-wide` runs the engine as the service does (wide searches
parked by add(), one settle() whenever the engine is idle before the next arrival).

    python -m lwtools.bench.fusion_latency [--rate 1000] [--seconds 20] [--defer-wide]
"""
from __future__ import annotations

import argparse
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
    parser.add_argument("--defer-wide", action="store_true",
                        help="park wide searches and settle them when idle, as the service does")
    args = parser.parse_args(argv)
    events = schedule(args.rate, args.seconds, args.every, np.random.default_rng(args.seed))
    engine = FusionEngine(LINE, FusionConfig())
    engine.defer_wide = args.defer_wide
    timing = Timing(events)
    next_tick = 1.0
    wall_start = time.perf_counter()
    for k, (arrival, report, target) in enumerate(events):
        while arrival >= next_tick:
            timing.run(engine.tick, next_tick, next_tick)
            next_tick += 1.0
        start = max(arrival, timing.busy_until)
        if target is not None:
            timing.heard[target] = timing.heard.get(target, 0) + 1
        incidents = timing.run(engine.add, start, start, report)
        timing.service.append(timing.last)
        if target is not None and target not in timing.fixed and any(
                i.fix == "tdoa" and i.event_class == "explosion" and report.evidence_id in i.reports for i in incidents):
            timing.fixed.add(target)
            timing.fixed_latency.append(timing.busy_until - arrival)
        following = events[k + 1][0] if k + 1 < len(events) else math.inf
        while engine.parked() and timing.busy_until < following:      # idle: one parked search
            timing.run(engine.settle, timing.busy_until, timing.busy_until)
    wall = time.perf_counter() - wall_start
    n = len(events)
    s = np.array(timing.service) * 1e3
    f = np.array(timing.fixed_latency) * 1e3
    third = np.array(timing.third_latency) * 1e3
    print("%d reports in %.0f virtual s (%.0f/s incl. targets), %d target blasts, %d fixed, %d fixed from 3 arrivals on"
          % (n, args.seconds, n / args.seconds, int(args.seconds / args.every), len(timing.fixed), len(third)))
    print("engine throughput: %.0f reports/s of CPU time in add() (%s; wall %.1f s, settle() %.1f s of CPU)"
          % (n / s.sum() * 1e3, "wide searches deferred" if args.defer_wide else "every search in add()",
             wall, timing.settle_s))
    print("add() service time ms:      p50 %.2f  p99 %.2f  max %.2f" % tuple(np.quantile(s, [0.5, 0.99, 1.0])))
    if len(f):
        print("fix latency ms (w/ queue):  p50 %.2f  p99 %.2f  max %.2f  (from the completing report)"
              % tuple(np.quantile(f, [0.5, 0.99, 1.0])))
    if len(third):
        print("fix latency ms (w/ queue):  p50 %.2f  p99 %.2f  max %.2f  (from the 3rd arrival)"
              % tuple(np.quantile(third, [0.5, 0.99, 1.0])))
        counts = np.bincount(np.minimum(timing.fixed_at_arrival, 6), minlength=7)
        print("first fix made once the blast's reports in were: 3: %d, 4: %d, 5: %d, 6 or more: %d"
              % (counts[3], counts[4], counts[5], counts[6]))
    return 0


class Timing:
    """The engine's virtual clock: each call starts when the engine is free and lasts its own
    CPU time; a target's first fix of three or more of its reports is timed from its 3rd arrival."""

    def __init__(self, events) -> None:
        self.busy_until = 0.0            # virtual seconds: when the engine is free again
        self.last = 0.0
        self.settle_s = 0.0
        self.service: list[float] = []
        self.fixed: set = set()
        self.fixed_latency: list[float] = []
        self.third_latency: list[float] = []
        self.target_of: dict[int, int] = {}
        self.third_at: dict[int, float] = {}
        arrivals: dict[int, list[float]] = {}
        for arrival, report, target in events:
            if target is not None:
                self.target_of[report.evidence_id] = target
                arrivals.setdefault(target, []).append(arrival)
        self.third_at = {t: sorted(a)[2] for t, a in arrivals.items() if len(a) >= 3}
        self.first_fixed: set = set()
        self.heard: dict[int, int] = {}          # target -> its reports added so far
        self.fixed_at_arrival: list[int] = []    # per target: reports added when first fixed

    def run(self, call, start_s: float, now_s: float, *args):
        t = time.process_time()
        incidents = call(*args, T0 + int(now_s * 1e6))
        self.last = time.process_time() - t
        if call.__name__ == "settle":
            self.settle_s += self.last
        self.busy_until = max(start_s, self.busy_until) + self.last
        for i in incidents:
            if i.fix != "tdoa":
                continue
            counts: dict[int, int] = {}
            for e in i.reports:
                t_ = self.target_of.get(e)
                if t_ is not None:
                    counts[t_] = counts.get(t_, 0) + 1
            for t_, c in counts.items():
                if c >= 3 and t_ not in self.first_fixed and t_ in self.third_at:
                    self.first_fixed.add(t_)
                    self.third_latency.append(self.busy_until - self.third_at[t_])
                    self.fixed_at_arrival.append(self.heard.get(t_, 0))
        return incidents


if __name__ == "__main__":
    raise SystemExit(main())
