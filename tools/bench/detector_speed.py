"""How many times faster than real time the node's detector chain runs on 16 kHz audio.
`python -m lwtools.bench.detector_speed [--seconds 30]`

Side by side in one run: the MicroPython unix port (-X heapsize=128K) with the viper loops and
with the plain loops, and CPython (plain loops) for reference. Only the time inside the chain
is counted (file reads are not). Goal on the unix port: >= 50x real time.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from lwtools.bench import detector_quality as Q
from lwtools.bench import detector_signals as S


def audio(seconds: float, seed: int = 11) -> np.ndarray:
    """Pink noise with a drone overhead and an impulse every second: every path works."""
    rng = np.random.default_rng(seed)
    n = int(seconds * S.RATE)
    x = S.noise(rng, n, "pink")
    tone, _ = S.drone(rng, seconds)
    x += S.scale_to_snr(tone, 0.0)[:n]
    for k in range(int(seconds)):
        make = S.explosion if k % 2 else S.small_arms
        ev = S.scale_to_snr(make(rng), 10.0)
        at = int((k + 0.5) * S.RATE)
        x[at:at + len(ev)] += ev[:max(0, n - at)]
    return S.to_int16(x)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--block", type=int, default=256)
    args = ap.parse_args(argv)
    x = audio(args.seconds)
    print(f"{args.seconds:g} s of 16 kHz audio, blocks of {args.block} samples")
    print("| interpreter | loops | chain time s | x real time |\n|---|---|---|---|")
    for interp, mode in (("micropython", "viper"), ("micropython", "plain"), ("cpython", "plain")):
        _, spent_us = Q.run_chain(x, interp, block=args.block, mode=mode)
        spent = spent_us / 1e6
        print(f"| {interp} | {mode} | {spent:.3f} | {args.seconds / spent:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
