"""Synthetic test signals for the node's detectors (numpy, seeded, CPython only).

SNR is stated as the event's mean power over its own nominal duration against the noise
power, in dB (for a drone: the power of all its harmonics against the noise power over the
whole band). Noise is white or pink (1/f from 20 Hz) at NOISE_RMS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = 16000
NOISE_RMS = 300.0          # about -41 dBFS: a quiet field
CLASS_IDS = {"explosion": 1, "small_arms": 2, "drone": 3}


@dataclass(frozen=True)
class Truth:
    cls: int
    onset_index: int
    duration_ms: int
    frequency_hz: int = 0


def noise(rng: np.random.Generator, n: int, kind: str = "white", rms: float = NOISE_RMS,
          rate: int = RATE) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        out = white
    elif kind == "pink":
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1.0 / rate)
        spec /= np.sqrt(np.maximum(f, 20.0))
        out = np.fft.irfft(spec, n)
    else:
        raise ValueError(f"unknown noise kind {kind!r}")
    return out * (rms / np.sqrt(np.mean(out ** 2)))


def _one_pole_lowpass(x: np.ndarray, cutoff_hz: float, rate: int) -> np.ndarray:
    a = np.exp(-2.0 * np.pi * cutoff_hz / rate)
    y = np.empty_like(x)
    acc = 0.0
    for i, v in enumerate(x):
        acc = (1.0 - a) * v + a * acc
        y[i] = acc
    return y


def explosion(rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Blast wave as heard from afar: ~1 ms rise, Friedlander positive phase of 5-20 ms and a
    negative phase, then 30-150 Hz rumble decaying over 50-200 ms; high frequencies rolled off."""
    total = rng.uniform(0.05, 0.2)
    t = np.arange(int(total * rate)) / rate
    tp = rng.uniform(0.005, 0.02)
    blast = (1.0 - t / tp) * np.exp(-1.5 * t / tp)
    rumble = np.zeros_like(t)
    for _ in range(3):
        rumble += rng.uniform(0.2, 0.5) * np.sin(2 * np.pi * rng.uniform(30, 150) * t
                                                  + rng.uniform(0, 2 * np.pi))
    rumble *= np.exp(-t / (total / 3.0)) * np.minimum(1.0, t / tp)
    rise = np.minimum(1.0, t / rng.uniform(0.0005, 0.0015))
    x = rise * (blast + rumble)
    return _one_pole_lowpass(x, rng.uniform(800, 2000), rate)


def small_arms(rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Supersonic crack: an N-wave of 0.5-2 ms with sharp edges plus 2-5 kHz ringing decaying
    over 1-3 ms (2-10 ms in all)."""
    total = rng.uniform(0.002, 0.01)
    t = np.arange(max(8, int(total * rate))) / rate
    tn = rng.uniform(0.0005, 0.002)
    nwave = np.where(t < tn, 1.0 - 2.0 * t / tn, 0.0)
    ring = 0.6 * np.sin(2 * np.pi * rng.uniform(2000, 5000) * t) * np.exp(
        -t / rng.uniform(0.001, 0.003))
    return nwave + ring


def drone(rng: np.random.Generator, seconds: float, rate: int = RATE) -> tuple[np.ndarray, float]:
    """Blade-pass tone: fundamental 100-400 Hz with 2nd and 3rd harmonics, slow wobble."""
    f0 = rng.uniform(105, 395)
    t = np.arange(int(seconds * rate)) / rate
    wobble = 1.0 + 0.01 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * f0 * np.cumsum(wobble) / rate
    x = np.zeros_like(t)
    for h, amp in ((1, 1.0), (2, rng.uniform(0.4, 0.9)), (3, rng.uniform(0.2, 0.6))):
        x += amp * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.1)
    return x * ramp, f0


def scale_to_snr(event: np.ndarray, snr_db: float, noise_rms: float = NOISE_RMS) -> np.ndarray:
    power = np.mean(event ** 2)
    return event * (noise_rms * 10 ** (snr_db / 20.0) / np.sqrt(power))


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def impulse_stream(kind: str, snr_db: float, events: int, seed: int, noise_kind: str = "white",
                   spacing_s: float = 0.8, rate: int = RATE) -> tuple[np.ndarray, list[Truth]]:
    """`events` impulses of one kind, one every ~spacing_s, after 0.5 s of noise only."""
    rng = np.random.default_rng(seed)
    n = int((0.5 + events * spacing_s) * rate)
    x = noise(rng, n, noise_kind, rate=rate)
    truths = []
    make = explosion if kind == "explosion" else small_arms
    for e in range(events):
        onset = int((0.5 + e * spacing_s + rng.uniform(0.0, 0.2)) * rate)
        ev = scale_to_snr(make(rng, rate), snr_db)
        x[onset:onset + len(ev)] += ev
        truths.append(Truth(CLASS_IDS[kind], onset, len(ev) * 1000 // rate))
    return to_int16(x), truths


def drone_stream(snr_db: float, passes: int, seed: int, noise_kind: str = "white",
                 seconds: float = 3.0, gap_s: float = 2.0,
                 rate: int = RATE) -> tuple[np.ndarray, list[Truth]]:
    """`passes` drone overflights of `seconds` each, separated by `gap_s` of noise."""
    rng = np.random.default_rng(seed)
    n = int((1.0 + passes * (seconds + gap_s)) * rate)
    x = noise(rng, n, noise_kind, rate=rate)
    truths = []
    for p in range(passes):
        onset = int((1.0 + p * (seconds + gap_s)) * rate)
        tone, f0 = drone(rng, seconds, rate)
        tone = scale_to_snr(tone, snr_db)
        x[onset:onset + len(tone)] += tone
        truths.append(Truth(3, onset, int(seconds * 1000), int(round(f0))))
    return to_int16(x), truths
