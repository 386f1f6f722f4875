"""Detector quality on synthesized events in noise: detection rate, right class, onset error,
false alarms per hour.  `python -m lwtools.bench.detector_quality [--quick] [--cpython]`

The chain runs where it runs on a board: the MicroPython unix port with the viper loops
(`--cpython` runs the same code under CPython instead; the detections are identical).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lwtools.bench import detector_signals as S

RUNNER = Path(__file__).with_name("detector_run.py")
IMPULSE_MATCH_MS = 20      # an impulse detection within this of the true onset counts
# refractory per class for the test streams (ms): the defaults, but drones 2 s (passes 5 s apart)
REFRACTORY_MS = (500, 500, 100, 2000, 5000, 10000)


@dataclass(frozen=True)
class Found:
    cls: int
    onset_index: int
    duration_ms: int
    frequency_hz: int
    confidence: float
    peak_db: float
    snr_db: float


@dataclass(frozen=True)
class Score:
    label: str
    noise: str
    snr_db: float
    events: int
    detected: int
    right_class: int
    onset_err_ms: tuple[float, ...]
    freq_err_hz: tuple[float, ...]
    false: int
    audio_s: float

    def row(self) -> str:
        err = np.array(self.onset_err_ms) if self.onset_err_ms else np.array([np.nan])
        ferr = (f"{np.median(self.freq_err_hz):.0f} / {np.max(self.freq_err_hz):.0f}"
                if self.freq_err_hz else "-")
        onset = (f"{np.median(err):.2f} / {np.percentile(err, 95):.2f} / {np.max(err):.2f}"
                 if self.label != "drone" else f"{np.median(err):.0f} / {np.max(err):.0f}")
        return (f"| {self.label} | {self.noise} | {self.snr_db:g} | {self.events} | "
                f"{100.0 * self.detected / self.events:.0f} | "
                f"{100.0 * self.right_class / self.events:.0f} | {onset} | {ferr} | "
                f"{self.false} |")


def micropython_command() -> list[str]:
    from linewatch.testing import micropython as mp
    return mp.command(RUNNER)


def run_chain(samples: np.ndarray, interpreter: str = "micropython", rate: int = S.RATE,
              block: int = 256, mode: str = "viper",
              refractory_ms: tuple[int, ...] = REFRACTORY_MS,
              accel: np.ndarray | None = None) -> tuple[list[Found], int]:
    """Run detector_run.py over samples (and accelerometer samples, one (x, y, z) per block,
    milli-g); (detections, microseconds spent in the chain)."""
    with tempfile.TemporaryDirectory(prefix="lw-detect-") as tmp:
        audio = Path(tmp) / "audio.raw"
        samples.astype("<i2").tofile(audio)
        if accel is not None:
            np.asarray(accel).astype("<i2").tofile(str(audio) + ".accel")
        args = [str(audio), str(rate), str(block), mode, *map(str, refractory_ms)]
        if interpreter == "micropython":
            from linewatch.testing import micropython as mp
            lib = mp.board_lib()
            try:
                proc = subprocess.run(mp.command(RUNNER, *args), capture_output=True, text=True,
                                      timeout=600, env=mp.environment(lib))
            finally:
                import shutil
                shutil.rmtree(lib, ignore_errors=True)
        else:
            env = dict(os.environ)
            proc = subprocess.run([sys.executable, str(RUNNER), *args], capture_output=True,
                                  text=True, timeout=600, env=env)
    return parse(proc.stdout, proc.stderr)


def parse(stdout: str, stderr: str = "") -> tuple[list[Found], int]:
    found = []
    spent = None
    for line in stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == "D":
            c, o, d, f = (int(v) for v in parts[1:5])
            found.append(Found(c, o, d, f, *(float(v) for v in parts[5:8])))
        elif parts and parts[0] == "T":
            spent = int(parts[1])
    if spent is None:
        raise RuntimeError(f"detector run failed:\n{stdout}\n{stderr}")
    return found, spent


def score_impulses(label: str, noise: str, snr_db: float, truths: list[S.Truth],
                   found: list[Found], audio_s: float, rate: int = S.RATE) -> Score:
    window = IMPULSE_MATCH_MS * rate // 1000
    used: set[int] = set()
    detected = right = 0
    errors = []
    for t in truths:
        match = [i for i, f in enumerate(found) if f.cls in (0, 1, 2) and i not in used
                 and abs(f.onset_index - t.onset_index) <= window]
        if not match:
            continue
        i = min(match, key=lambda k: abs(found[k].onset_index - t.onset_index))
        used.add(i)
        detected += 1
        right += found[i].cls == t.cls
        errors.append(abs(found[i].onset_index - t.onset_index) * 1000.0 / rate)
    false = len(found) - len(used)
    return Score(label, noise, snr_db, len(truths), detected, right, tuple(errors), (), false,
                 audio_s)


def score_drones(noise: str, snr_db: float, truths: list[S.Truth], found: list[Found],
                 audio_s: float, rate: int = S.RATE) -> Score:
    used: set[int] = set()
    detected = 0
    errors, ferrors = [], []
    for t in truths:
        end = t.onset_index + t.duration_ms * rate // 1000
        match = [i for i, f in enumerate(found) if f.cls == 3 and i not in used
                 and t.onset_index - rate // 2 <= f.onset_index < end]
        if not match:
            continue
        i = match[0]
        used.update(match)
        detected += 1
        errors.append(abs(found[i].onset_index - t.onset_index) * 1000.0 / rate)
        ferrors.append(abs(found[i].frequency_hz - t.frequency_hz))
    false = len(found) - len(used)
    return Score("drone", noise, snr_db, len(truths), detected, detected, tuple(errors),
                 tuple(ferrors), false, audio_s)


def score_vehicles(kind: str, noise: str, closest_m: float, truths: list[S.Pass],
                   found: list[Found], audio_s: float, rate: int = S.RATE) -> Score:
    """A pass is detected by a vehicle detection (class 4) that starts within it; `onset_err_ms`
    carries the detections' lengths (s), `freq_err_hz` their band centroids."""
    used: set[int] = set()
    detected = 0
    lengths, freqs = [], []
    for t in truths:
        match = [i for i, f in enumerate(found) if f.cls == 4 and i not in used
                 and t.onset_index - 5 * rate <= f.onset_index < t.end_index]
        if not match:
            continue
        used.update(match)
        detected += 1
        lengths.append(sum(found[i].duration_ms for i in match) / 1000.0)
        freqs.append(float(found[match[0]].frequency_hz))
    false = sum(1 for i, f in enumerate(found) if f.cls == 4 and i not in used)
    return Score("%s %gm" % (kind, closest_m), noise, truths[0].level_db if truths else 0.0,
                 len(truths), detected, detected, tuple(lengths), tuple(freqs), false, audio_s)


def vehicle_score(kind: str, closest_m: float, passes: int, seed: int, noise: str = "pink",
                  interpreter: str = "micropython", level_db: float = 105.0) -> Score:
    x, accel, truths = S.vehicle_stream(kind, closest_m, passes, seed, noise, level_db=level_db)
    found, _ = run_chain(x, interpreter, block=512, accel=accel)
    return score_vehicles(kind, noise, closest_m, truths, found, len(x) / S.RATE)


VEHICLE_HEADER = ("| vehicle, closest | noise | level dB SPL at 1 m | passes | detected % | "
                  "heard s (median / max) | false |\n|---|---|---|---|---|---|---|")


def vehicle_row(score: Score) -> str:
    heard = (f"{np.median(score.onset_err_ms):.0f} / {np.max(score.onset_err_ms):.0f}"
             if score.onset_err_ms else "-")
    return (f"| {score.label} | {score.noise} | {score.snr_db:g} | {score.events} | "
            f"{100.0 * score.detected / score.events:.0f} | {heard} | {score.false} |")


def impulse_score(kind: str, snr_db: float, events: int, seed: int, noise: str = "white",
                  interpreter: str = "micropython") -> Score:
    x, truths = S.impulse_stream(kind, snr_db, events, seed, noise)
    found, _ = run_chain(x, interpreter)
    return score_impulses(kind, noise, snr_db, truths, found, len(x) / S.RATE)


def drone_score(snr_db: float, passes: int, seed: int, noise: str = "white",
                interpreter: str = "micropython") -> Score:
    x, truths = S.drone_stream(snr_db, passes, seed, noise)
    found, _ = run_chain(x, interpreter)
    return score_drones(noise, snr_db, truths, found, len(x) / S.RATE)


def false_alarms(minutes: float, seed: int, noise: str = "white",
                 interpreter: str = "micropython") -> tuple[list[Found], float]:
    """Detections on pure noise, and the hours of audio they came from."""
    rng = np.random.default_rng(seed)
    x = S.to_int16(S.noise(rng, int(minutes * 60 * S.RATE), noise))
    found, _ = run_chain(x, interpreter)
    return found, minutes / 60.0


HEADER = ("| event | noise | SNR dB | events | detected % | right class % | "
          "onset error ms (median / p95 / max) | frequency error Hz (median / max) | "
          "false |\n|---|---|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer events, 2 minutes of noise")
    ap.add_argument("--cpython", action="store_true", help="run the chain under CPython")
    ap.add_argument("--vehicles", action="store_true", help="only the vehicle rows")
    args = ap.parse_args(argv)
    if args.vehicles:
        return vehicle_table("cpython" if args.cpython else "micropython", 2 if args.quick else 4)
    interp = "cpython" if args.cpython else "micropython"
    events = 10 if args.quick else 40
    passes = 4 if args.quick else 12
    minutes = 2.0 if args.quick else 10.0
    print(f"chain under {interp}; SNR = event power over its duration vs noise power")
    print(HEADER)
    for noise in ("white", "pink"):
        for kind in ("explosion", "small_arms"):
            for snr in (20, 10, 6, 3):
                print(impulse_score(kind, snr, events, seed=100 + snr, noise=noise,
                                    interpreter=interp).row(), flush=True)
        for snr in (10, 0, -3, -6, -10):
            print(drone_score(snr, passes, seed=200 + snr, noise=noise,
                              interpreter=interp).row(), flush=True)
    print()
    print("| noise | minutes | detections | false alarms per hour | classes |\n|---|---|---|---|---|")
    for noise in ("white", "pink"):
        found, hours = false_alarms(minutes, seed=7, noise=noise, interpreter=interp)
        classes = ",".join(str(f.cls) for f in found) or "-"
        print(f"| {noise} | {minutes:g} | {len(found)} | {len(found) / hours:.1f} | {classes} |",
              flush=True)
    return 0


def vehicle_table(interp: str, passes: int) -> int:
    """Detection rate against distance: vehicles on a straight road past the node at 10 m/s,
    105 dB (wheeled) and 113 dB (tracked) at 1 m, in the field's 42 dB SPL floor."""
    print(f"chain under {interp}; passes 800 m long at 10 m/s, 20 s apart, accelerometer fed")
    print(VEHICLE_HEADER)
    for noise in ("pink", "white"):
        for kind in S.VEHICLE_KINDS:
            level = 105.0 if kind == "wheeled" else 113.0
            for closest in (25, 100, 200, 400, 600, 800, 1200):
                print(vehicle_row(vehicle_score(kind, closest, passes, 300 + closest, noise, interp,
                                                level)), flush=True)
    print()
    print("slow approach: 5 m/s, 1,000 m either side of the closest point (400 s a pass), pink")
    print(VEHICLE_HEADER)
    for kind in S.VEHICLE_KINDS:
        level = 105.0 if kind == "wheeled" else 113.0
        for closest in (200, 400):
            x, accel, truths = S.vehicle_stream(kind, closest, passes // 2 or 1, 500 + closest, "pink",
                                                level_db=level, speed_mps=5.0, half_length_m=1000.0)
            found, _ = run_chain(x, interp, block=512, accel=accel)
            print(vehicle_row(score_vehicles(kind, "pink", closest, truths, found, len(x) / S.RATE)),
                  flush=True)
    print()
    print("| noise | minutes | vehicle detections | per hour | all classes |\n|---|---|---|---|---|")
    for noise in ("white", "pink"):
        found, hours = false_alarms(10.0, seed=7, noise=noise, interpreter=interp)
        vehicles = sum(1 for f in found if f.cls == 4)
        print(f"| {noise} | 10 | {vehicles} | {vehicles / hours:.1f} | "
              f"{','.join(str(f.cls) for f in found) or '-'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
