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


# ---------------------------------------------------------------- vehicles
# Levels in dB SPL mapped to counts as the emulator does (background.amplitude_rms: full scale
# 120 dB SPL); the field's floor is ~42 dB SPL of pink noise (docs/scenarios.md "Background").
FULL_SCALE_DB_SPL = 120.0
VEHICLE_KINDS = ("wheeled", "tracked")
ACCEL_NOISE_MG = 4.0        # per axis per sample (MPU6050 at its 44 Hz filter: ~4 mg RMS)
AT_REST_MG = (0, 0, 1000)


def counts_rms(level_db_spl):
    return 32767.0 / np.sqrt(2.0) * 10.0 ** ((np.asarray(level_db_spl, dtype=float)
                                              - FULL_SCALE_DB_SPL) / 20.0)


def vehicle_sound(rng: np.random.Generator, kind: str, n: int, rate: int = RATE) -> np.ndarray:
    """Unit-RMS vehicle sound at the source. Wheeled: engine firing 25-60 Hz with 5 harmonics
    and tyre/road noise under ~500 Hz. Tracked: track-link slap 40-90 Hz with harmonics and a
    louder broadband rumble under ~1 kHz (tracks, running gear)."""
    t = np.arange(n) / rate
    if kind == "wheeled":
        f0, harmonics, noise_share, cutoff = rng.uniform(25, 60), 5, 0.6, rng.uniform(350, 600)
    elif kind == "tracked":
        f0, harmonics, noise_share, cutoff = rng.uniform(40, 90), 6, 0.75, rng.uniform(700, 1100)
    else:
        raise ValueError(f"unknown vehicle kind {kind!r}")
    tone = np.zeros(n)
    wobble = 2 * np.pi * f0 * np.cumsum(1.0 + 0.02 * np.sin(2 * np.pi * 0.2 * t)) / rate
    for h in range(1, harmonics + 1):
        tone += rng.uniform(0.3, 1.0) / h * np.sin(h * wobble + rng.uniform(0, 2 * np.pi))
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / rate)
    spec *= 1.0 / (1.0 + (f / cutoff) ** 4)
    rumble = np.fft.irfft(spec, n)
    tone /= np.sqrt(np.mean(tone ** 2))
    rumble /= np.sqrt(np.mean(rumble ** 2))
    return np.sqrt(1.0 - noise_share) * tone + np.sqrt(noise_share) * rumble


def vibration_mg(kind: str, distance_m):
    """RMS ground acceleration (milli-g, per axis) at the node: a heavy tracked vehicle ~40 mg
    at 10 m, a wheeled one ~4 mg (1-5 and ~0.3 mm/s peak particle velocity at ~20 Hz), falling
    as surface waves do (1/sqrt(r)) with the soil's damping (2 % per metre)."""
    r = np.maximum(np.asarray(distance_m, dtype=float), 5.0)
    a10 = 40.0 if kind == "tracked" else 4.0
    return a10 * np.sqrt(10.0 / r) * np.exp(-0.02 * (r - 10.0))


@dataclass(frozen=True)
class Pass:
    kind: str
    closest_m: float
    level_db: float           # dB SPL at 1 m
    onset_index: int          # the pass's start in the stream
    end_index: int


def vehicle_stream(kind: str, closest_m: float, passes: int, seed: int, noise_kind: str = "pink",
                   level_db: float = 105.0, floor_db: float = 42.0, speed_mps: float = 10.0,
                   half_length_m: float = 400.0, gap_s: float = 20.0, block: int = 512,
                   rate: int = RATE) -> tuple[np.ndarray, np.ndarray, list[Pass]]:
    """`passes` vehicles driving past a node on a straight road `closest_m` away, each from
    `half_length_m` before to after the closest point, `gap_s` of background between them.
    Returns (int16 audio, accelerometer samples (blocks, 3) in milli-g, one per block, the
    passes). Spreading 20 log r; the level ramps in over the pass's first and last 2 s."""
    rng = np.random.default_rng(seed)
    pass_s = 2 * half_length_m / speed_mps
    n = int((5.0 + passes * (pass_s + gap_s)) * rate)
    n -= n % block
    x = noise(rng, n, noise_kind, rms=float(counts_rms(floor_db)), rate=rate)
    blocks = n // block
    accel = np.tile(np.array(AT_REST_MG, dtype=float), (blocks, 1))
    accel += rng.normal(0.0, ACCEL_NOISE_MG, accel.shape)
    truths = []
    for p in range(passes):
        start = int((5.0 + p * (pass_s + gap_s)) * rate)
        m = int(pass_s * rate)
        t = np.arange(m) / rate
        dist = np.hypot(closest_m, speed_mps * t - half_length_m)
        ramp = np.clip(np.minimum(t, pass_s - t) / 2.0, 0.0, 1.0)
        level = counts_rms(level_db) / dist * ramp
        x[start:start + m] += level * vehicle_sound(rng, kind, m, rate)
        b0, b1 = -(-start // block), (start + m) // block
        tb = (np.arange(b0, b1) * block - start) / rate
        vib = vibration_mg(kind, np.hypot(closest_m, speed_mps * tb - half_length_m))
        vib *= np.clip(np.minimum(tb, pass_s - tb) / 2.0, 0.0, 1.0)
        accel[b0:b1] += rng.normal(0.0, 1.0, (b1 - b0, 3)) * vib[:, None]
        truths.append(Pass(kind, closest_m, level_db, start, start + m))
    return to_int16(x), np.round(accel).astype(np.int16), truths
