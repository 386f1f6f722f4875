"""The node detector's false-alarm rate on background noise, measured once with the real code.

Between the windows the synthesizer renders, a virtual node hears nothing, so the emulator
models what its detector would have reported there as a Poisson process per class at the rate
measured here (see docs/emulator.md, "Running the emulator"). Re-measure after a detector
change: `python -m linewatch.emulator.false_alarms --minutes 30`.
"""
from __future__ import annotations

import argparse
import time
from array import array

from lwproto.const import CLASS_NAMES

from linewatch.emulator.synth import SAMPLE_RATE, noise_block

BLOCK = 512
# Measured 2026-11-28 on this repository's detector (commit of this file), 3 x 10 minutes of
# white noise at 39, 42 and 48 dB SPL, 16 kHz, blocks of 512: no detection in 30 minutes.
# Zero events in 0.5 h bounds the rate below 6 per hour (95 %); the emulator uses the point
# estimate of 0 and says so, rather than inventing alarms.
MEASURED_PER_HOUR = {"explosion": 0.0, "small_arms": 0.0, "drone": 0.0, "vehicle": 0.0}
MEASURED_MINUTES = 30.0


def measure(minutes: float, floors_db=(39.0, 42.0, 48.0), seed: int = 1) -> dict[str, float]:
    """Detections per hour of noise, per class, from the firmware's DetectorChain."""
    from lwnode.detector import DetectorChain
    counts = {name: 0 for name in CLASS_NAMES}
    per_floor = minutes / len(floors_db)
    for k, floor in enumerate(floors_db):
        chain = DetectorChain(SAMPLE_RATE, BLOCK)
        left = int(per_floor * 60 * SAMPLE_RATE)
        start = 0
        while left > 0:
            n = min(left, 60 * SAMPLE_RATE)
            audio = noise_block(floor, n, seed=seed * 1000 + k * 100 + start // SAMPLE_RATE)
            for i in range(0, n - BLOCK + 1, BLOCK):
                block = array("h", audio[i:i + BLOCK].tobytes())
                for det in chain.feed_audio(block, start + i, BLOCK):
                    counts[CLASS_NAMES[det.cls]] += 1
            start += n
            left -= n
    hours = minutes / 60.0
    return {name: count / hours for name, count in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=MEASURED_MINUTES)
    args = parser.parse_args()
    t0 = time.monotonic()
    rates = measure(args.minutes)
    print("false alarms per hour over %.0f min of noise (%.0f s): %s"
          % (args.minutes, time.monotonic() - t0,
             ", ".join("%s %.2f" % kv for kv in sorted(rates.items()))))


if __name__ == "__main__":
    main()
