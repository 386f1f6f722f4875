"""The node detectors' false alarms on the emulator's background, with the real firmware code.

    python -m lwtools.bench.false_alarms [--minutes 6] [--events 20] [--seed 1]

Steady background (background.py, `field` model: pink floor at 42 dB SPL, wind on the
microphone at the station's 0, 4 and 8 m/s with gusts, with and without rain) for --minutes
each, then --events transients of each kind at random levels of their range over the steady
background at 4 m/s, each in a window of its own. Every sample goes through the firmware's
DetectorChain (lwnode.detector, under CPython as in the emulator's direct tier: its DSP loops as
their numpy twins, the same integers). Prints detections per hour
of steady background and reports per transient, per class, and the tables for
linewatch/emulator/false_alarms.py.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import numpy as np

from linewatch.emulator import background as bg
from linewatch.emulator import false_alarms as fa
from linewatch.emulator import profiles as pr
from linewatch.emulator.observe import bench_world

FLOOR_DB = 42.0
TRANSIENT_WIND_MPS = 4.0


def world(wind_mps: float, rain: bool, seed: int):
    base = pr.FIELD
    profile = replace(base, background=replace(base.background, rain_share=1.0 if rain else 0.0))
    return bench_world([(48.0, 37.8)], profile, seed=seed, wind=(wind_mps, 270.0),
                       noise_floor_db=FLOOR_DB)


def steady(minutes: float, wind_mps: float, rain: bool, seed: int) -> dict[str, int]:
    w = world(wind_mps, rain, seed)
    back = bg.Background(w, seed)
    node = w.nodes[0]
    total = {c: 0 for c in fa.CLASSES}
    chunk = 60 * fa.SAMPLE_RATE
    for k in range(int(round(minutes))):
        first = k * chunk
        samples = np.clip(np.round(back.steady(node, first, chunk)), -32768, 32767)
        for c, n in fa.counts(fa.detect(samples, first)).items():
            total[c] = total.get(c, 0) + n
    return total


def transients(events: int, seed: int) -> dict[str, dict[str, float]]:
    w = world(TRANSIENT_WIND_MPS, False, seed)
    back = bg.Background(w, seed)
    node = w.nodes[0]
    rng = np.random.default_rng(seed)
    out = {}
    for name, kind in bg.KINDS.items():
        total = {c: 0 for c in fa.CLASSES}
        for e in range(events):
            tr = bg.Transient(node.id, name, bg._variant(name, rng), 0.0, float(rng.uniform(*kind.length_s)),
                              float(rng.uniform(*kind.level_db)), int(rng.integers(1 << 31)))
            pre = 3.0
            first = (e + 1) * 600 * fa.SAMPLE_RATE
            n = int((pre + tr.length_s + 1.0) * fa.SAMPLE_RATE) // fa.BLOCK * fa.BLOCK
            samples = back.steady(node, first, n)
            wave = bg.waveform(tr)
            at = int(pre * fa.SAMPLE_RATE)
            samples[at:at + len(wave)] += wave[:n - at]
            found = fa.detect(np.clip(np.round(samples), -32768, 32767), first)
            for c, k in fa.counts(found).items():
                total[c] = total.get(c, 0) + k
        out[name] = {c: round(k / events, 3) for c, k in total.items() if k}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=6.0, help="of steady background per condition")
    ap.add_argument("--events", type=int, default=20, help="transients of each kind")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    from linewatch.emulator.dsp_numpy import numpy_loops
    with numpy_loops():
        return measure(args)


def measure(args) -> int:
    t0 = time.monotonic()
    rates = {}
    print("| wind m/s | rain | minutes | " + " | ".join(fa.CLASSES) + " (per hour) |")
    print("|---|---|---|" + "---|" * len(fa.CLASSES))
    for wind in fa.WIND_MPS:
        for rain in (False, True):
            found = steady(args.minutes, wind, rain, args.seed)
            hours = args.minutes / 60.0
            rates[(wind, rain)] = {c: round(found.get(c, 0) / hours, 2) for c in fa.CLASSES}
            print("| %g | %s | %g | %s |" % (wind, "yes" if rain else "no", args.minutes,
                                              " | ".join("%d (%.1f)" % (found.get(c, 0), found.get(c, 0) / hours)
                                                         for c in fa.CLASSES)), flush=True)
    per_event = transients(args.events, args.seed)
    print()
    print("| transient | events | reports per event by class |\n|---|---|---|")
    for name, shares in per_event.items():
        print("| %s | %d | %s |" % (name, args.events, ", ".join("%s %.2f" % kv for kv in shares.items()) or "none"))
    print()
    print("STEADY field = %r" % rates)
    print("TRANSIENT_PER_EVENT = %r" % per_event)
    print("(%.0f s)" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
