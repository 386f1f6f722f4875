"""What a node's microphone hears besides the scenario's sources: steady noise and transients.

Under the `ideal` profile the background is the node's floor as white Gaussian noise (the
first model, kept sample for sample in synth.py). Under `field` (profiles.BackgroundProfile):

- steady noise: the node's floor as pink noise (1/f from 20 Hz: distant traffic, wind in
  vegetation, the rural ambient falls 3-5 dB per octave); wind on the microphone, a 1/f^2
  rumble below ~100 Hz whose level follows the wind at the node with its gusts (air.py) at
  0.7 of its speed (1.5 m above ground against the 10 m of a station), rising 40 dB per decade
  of speed (the turbulent pressure goes as v^2); rain in episodes per segment (mean 2 h), drops
  on the ground and leaves around the node as a dense patter of clicks ringing at 2-5 kHz.
  Drops on the node's own box are left out (a rain hood is assumed): without one each is a
  click the impulse detector reports (20 drops a second at 30 dB SPL made 3,700 reports an
  hour in lwtools.bench.false_alarms).
- transients at each node alone, Poisson in time at the profile's rates per hour: a vehicle
  passing on a track nearby, thunder, a door or gate slammed, animals (a dog, birds, cattle),
  distant work (hammering, a chainsaw or generator). Each kind's levels and lengths are in
  `KINDS` with their reasons.

Steady noise is rendered in overlapping tiles (1 s, hop 0.5 s, sine windows whose squares sum
to one), each drawn from a stream keyed by (node, tile): any stretch of samples renders the
same, continuous, whatever window asks for it. Transients are drawn per (node, kind) over the
scenario and rendered wherever a window overlaps them; `spans()` tells the emulator's feed
plan where they are, so the node's real detectors hear them (runner.py, direct.py).
What is left out: a transient heard by several nodes (thunder, a vehicle on a road along the
line is heard by one node here), wind noise's dependence on the box, rain's on the wind.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from linewatch.emulator.randomness import stream

RATE = 16_000
TILE = RATE                     # samples per steady-noise tile
HOP = TILE // 2
FULL_SCALE_DB_SPL = 120.0
FULL_SCALE_RMS = 32767.0 / math.sqrt(2.0)
MIC_WIND_SHARE = 0.7            # wind at the microphone (1.5 m) against the station's (10 m)
RAIN_EPISODE_S = 7200.0         # mean length of a rain episode
RAIN_DROPS_PER_S = 3000.0      # drops heard on the ground and leaves around the node: a dense patter
PRE_S, POST_S = 1.0, 1.0        # audio fed around a transient (as around an arrival)


def amplitude_rms(level_db):
    return FULL_SCALE_RMS * 10.0 ** ((np.asarray(level_db, dtype=float) - FULL_SCALE_DB_SPL) / 20.0)


@dataclass(frozen=True)
class Kind:
    """A kind of transient: RMS level at the node over its loud part, and its length."""
    name: str
    level_db: tuple[float, float]
    length_s: tuple[float, float]
    why: str


KINDS = {
    "vehicle": Kind("vehicle", (50.0, 72.0), (20.0, 40.0),
                    "a car or tractor passing 20-300 m away (~100 dB at 1 m); engine tone 25-60 Hz "
                    "with harmonics and tyre noise, rising and falling over the pass"),
    "thunder": Kind("thunder", (55.0, 85.0), (2.0, 8.0),
                    "a storm 1-10 km away: a rumble below ~150 Hz, a sharp crack when near"),
    "door": Kind("door", (60.0, 80.0), (0.05, 0.1),
                 "a door, gate or vehicle door slammed 10-50 m from a node near a farm"),
    "animal": Kind("animal", (50.0, 75.0), (1.0, 5.0),
                   "a dog barking (3-8 barks, 400-900 Hz), birds (2-6 kHz chirps), cattle "
                   "(1-2 s, 100-250 Hz and harmonics)"),
    "work": Kind("work", (50.0, 72.0), (20.0, 90.0),
                 "hammering (an impact every 0.5-1.5 s) or a chainsaw or generator (80-200 Hz "
                 "with harmonics) a few hundred metres away"),
}


@dataclass(frozen=True)
class Transient:
    node_id: int
    kind: str
    variant: str
    start_s: float
    length_s: float
    level_db: float
    seed: int                        # of its waveform

    @property
    def end_s(self) -> float:
        return self.start_s + self.length_s


class Background:
    """The background of every node of a world. Transients are drawn per (node, kind, hour)
    and rain per (segment, day), so any stretch of any run renders the same."""

    def __init__(self, world, seed: int | None = None) -> None:
        self.world = world
        self.profile = world.profile.background
        self.field = self.profile.model == "field"
        self.seed = world.seed if seed is None else seed
        self._hours: dict[tuple[int, int], list[Transient]] = {}
        self._rain: dict[tuple[int, int], list[tuple[float, float]]] = {}

    # ---- what happens when ----------------------------------------------------------

    def transients(self, node_id: int, start_s: float, end_s: float) -> list[Transient]:
        """The node's transients that start in [start_s, end_s), or overlap it."""
        if not self.field:
            return []
        out = []
        for hour in range(max(0, int(start_s // 3600) - 1), int(end_s // 3600) + 1):
            out.extend(t for t in self._hour(node_id, hour) if t.start_s < end_s and t.end_s > start_s)
        return out

    def transients_of(self, name: str, node_id: int, start_s: float, end_s: float) -> list[Transient]:
        """The node's transients of one kind that overlap [start_s, end_s) (the truth's
        background: drawn alone, the same as among the others)."""
        if not self.field:
            return []
        out = []
        for hour in range(max(0, int(start_s // 3600) - 1), int(end_s // 3600) + 1):
            out.extend(t for t in self._draw(node_id, name, hour) if t.start_s < end_s and t.end_s > start_s)
        return out

    def _hour(self, node_id: int, hour: int) -> list[Transient]:
        key = (node_id, hour)
        if key not in self._hours:
            out = []
            for name in KINDS:
                out.extend(self._draw(node_id, name, hour))
            self._hours[key] = sorted(out, key=lambda t: t.start_s)
        return self._hours[key]

    def _draw(self, node_id: int, name: str, hour: int) -> list[Transient]:
        kind = KINDS[name]
        rate = getattr(self.profile, "%s_per_h" % name)
        if rate <= 0:
            return []
        rng = stream(self.seed, "background", node_id, name, hour)
        return [Transient(node_id, name, _variant(name, rng), hour * 3600.0 + float(start),
                          float(rng.uniform(*kind.length_s)), float(rng.uniform(*kind.level_db)),
                          int(rng.integers(1 << 31)))
                for start in np.sort(rng.uniform(0.0, 3600.0, rng.poisson(rate)))]

    def spans(self, node_id: int, duration_s: float) -> list[tuple[float, float]]:
        """(start_s, end_s) stretches the node must hear for its transients in a run."""
        return [(max(0.0, t.start_s - PRE_S), min(duration_s, t.end_s + POST_S))
                for t in self.transients(node_id, 0.0, duration_s) if t.start_s < duration_s]

    def raining(self, segment: int, t_s: float) -> bool:
        """Rain over a segment: episodes (mean 2 h) drawn per day, rain_share of the time."""
        share = self.profile.rain_share if self.field else 0.0
        if share <= 0:
            return False
        day = int(t_s // 86400)
        return any(a <= t_s < b for d in (day - 1, day) for a, b in self._rain_day(segment, d, share))

    def _rain_day(self, segment: int, day: int, share: float) -> list[tuple[float, float]]:
        key = (segment, day)
        if key not in self._rain:
            rng = stream(self.seed, "rain", segment, day)
            dry_mean = RAIN_EPISODE_S * (1.0 - share) / share
            episodes, t = [], day * 86400.0 + rng.exponential(dry_mean) * rng.uniform()
            while t < (day + 1) * 86400.0:
                length = rng.exponential(RAIN_EPISODE_S)
                episodes.append((t, t + length))
                t += length + rng.exponential(dry_mean)
            self._rain[key] = episodes
        return self._rain[key]

    # ---- samples ---------------------------------------------------------------------

    def render(self, node, first_sample: int, n: int) -> np.ndarray:
        """Float samples (counts) of the node's background, true samples first .. first + n."""
        out = self.steady(node, first_sample, n)
        for tr in self.transients(node.id, first_sample / RATE, (first_sample + n) / RATE):
            _add(out, first_sample, tr)
        return out

    def steady(self, node, first_sample: int, n: int) -> np.ndarray:
        out = np.zeros(n)
        first_tile = max(0, (first_sample - TILE) // HOP + 1)
        last_tile = (first_sample + n - 1) // HOP
        for j in range(first_tile, last_tile + 1):
            tile = self._tile(node, j)
            lo, hi = max(first_sample, j * HOP), min(first_sample + n, j * HOP + TILE)
            if hi > lo:
                out[lo - first_sample:hi - first_sample] += tile[lo - j * HOP:hi - j * HOP]
        return out

    def _tile(self, node, j: int) -> np.ndarray:
        rng = stream(self.seed, "steady", node.id, j)
        p = self.profile
        centre_s = (j * HOP + TILE / 2) / RATE
        spec = np.fft.rfft(rng.standard_normal(TILE)) * _shape("pink") * float(amplitude_rms(node.noise_floor_db))
        if p.wind_noise_db_at_5mps > 0:
            east, north = self.world.air.wind_at(node.lat, node.lon, centre_s)
            v = MIC_WIND_SHARE * math.hypot(float(east), float(north))
            if v > 0.2:
                level = p.wind_noise_db_at_5mps + 40.0 * math.log10(v / 5.0)
                spec = spec + (np.fft.rfft(rng.standard_normal(TILE)) * _shape("wind")
                               * float(amplitude_rms(level)))
        if p.rain_noise_db > 0 and self.raining(node.segment, centre_s):
            drops = np.zeros(TILE)
            count = rng.poisson(RAIN_DROPS_PER_S * TILE / RATE)
            np.add.at(drops, rng.integers(0, TILE, count), rng.lognormal(0.0, 0.5, count))
            spec = spec + (np.fft.rfft(drops) * _shape("drop") * float(amplitude_rms(p.rain_noise_db))
                           / math.sqrt(RAIN_DROPS_PER_S / RATE * math.exp(2 * 0.5 ** 2)))
        return np.fft.irfft(spec, TILE) * _window()


@lru_cache(maxsize=None)
def _window() -> np.ndarray:
    return np.sin(np.pi * (np.arange(TILE) + 0.5) / TILE)


@lru_cache(maxsize=None)
def _shape(kind: str) -> np.ndarray:
    """A tile's spectral shape, scaled so that unit white noise through it has unit RMS."""
    f = np.fft.rfftfreq(TILE, 1.0 / RATE)
    if kind == "pink":
        amp = 1.0 / np.sqrt(np.maximum(f, 20.0))
    elif kind == "wind":
        amp = 1.0 / np.maximum(f, 10.0)
    else:                           # a drop on the box: a ring at 2-5 kHz, decaying in ~0.3 ms
        amp = np.exp(-0.5 * ((f - 3500.0) / 1200.0) ** 2)
    amp = amp.copy()
    amp[0] = 0.0
    # rfft of unit white noise: |X|^2 ~ TILE per bin; mean square = sum |X H|^2 * 2 / TILE^2
    power = 2.0 * np.sum(amp ** 2) / TILE
    return amp / math.sqrt(power)


def _variant(name: str, rng: np.random.Generator) -> str:
    choices = {"animal": ("dog", "birds", "cattle"), "work": ("hammering", "engine"),
               "thunder": ("thunder",), "vehicle": ("vehicle",), "door": ("door",)}[name]
    return choices[int(rng.integers(len(choices)))]


# ---- transient waveforms --------------------------------------------------------------

def waveform(tr: Transient) -> np.ndarray:
    """The transient's samples at the node (float counts), its loud part at tr.level_db."""
    rng = np.random.default_rng(tr.seed)
    n = max(1, int(tr.length_s * RATE))
    t = np.arange(n) / RATE
    make = _MAKERS[tr.variant]
    x = make(rng, t)
    loud = x[np.abs(x) >= 0.1 * np.max(np.abs(x))] if np.any(x) else x
    rms = math.sqrt(float(np.mean(loud ** 2))) if loud.size else 1.0
    x = x / max(rms, 1e-12) * float(amplitude_rms(tr.level_db))
    fade = min(n // 2, int(0.005 * RATE))
    if fade:
        ramp = 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, fade)))
        x[-fade:] *= ramp[::-1]
    return x


def _add(out: np.ndarray, first_sample: int, tr: Transient) -> None:
    x = _cached_waveform(tr)
    start = int(round(tr.start_s * RATE)) - first_sample
    lo, hi = max(0, start), min(len(out), start + len(x))
    if hi > lo:
        out[lo:hi] += x[lo - start:hi - start]


@lru_cache(maxsize=256)
def _cached_waveform(tr: Transient) -> np.ndarray:
    return waveform(tr)


def _lowpassed(rng, n: int, cutoff_hz: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / RATE)
    spec /= np.sqrt(1.0 + (f / cutoff_hz) ** 4)
    return np.fft.irfft(spec, n)


def _harmonics(t, f0, amps, wobble=0.0, rng=None):
    phase = 2 * np.pi * f0 * t
    if wobble:
        phase = phase + wobble * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t)
    return sum(a * np.sin(h * phase) for h, a in enumerate(amps, start=1))


def _vehicle(rng, t):
    d, v = rng.uniform(20.0, 300.0), rng.uniform(5.0, 20.0)
    centre = t[-1] / 2
    envelope = d / np.sqrt(d ** 2 + (v * (t - centre)) ** 2)
    f0 = rng.uniform(25.0, 60.0)
    engine = _harmonics(t, f0 * (1 + 0.05 * np.sin(2 * np.pi * t / t[-1])), (1.0, 0.6, 0.4, 0.2))
    tyres = _lowpassed(rng, len(t), 800.0)
    return envelope * (engine + 2.0 * tyres / max(1e-12, np.std(tyres)))


def _thunder(rng, t):
    near = rng.uniform() < 0.3
    rumble = _lowpassed(rng, len(t), 120.0)
    rumble /= max(1e-12, np.std(rumble))
    rise = rng.uniform(0.01, 0.05) if near else rng.uniform(0.3, 1.0)
    env = np.minimum(1.0, t / rise) * np.exp(-t / max(0.5, t[-1] / 2.5))
    flicker = _lowpassed(rng, len(t), 3.0)
    env *= np.maximum(0.0, 1.0 + 0.5 * flicker / max(1e-12, np.std(flicker)))
    x = env * rumble
    if near:
        crack = rng.standard_normal(len(t)) * np.exp(-t / 0.05) * 2.0
        x = x + crack
    return x


def _door(rng, t):
    bang = rng.standard_normal(len(t)) * np.exp(-t / 0.008)
    ring = np.sin(2 * np.pi * rng.uniform(100.0, 300.0) * t) * np.exp(-t / 0.04)
    return bang + 0.8 * ring


def _dog(rng, t):
    x = np.zeros_like(t)
    barks = int(rng.integers(3, 9))
    for k in range(barks):
        at = k * t[-1] / barks + rng.uniform(0.0, 0.1)
        tb = t - at
        on = (tb >= 0) & (tb < 0.15)
        f0 = rng.uniform(400.0, 900.0)
        x[on] += (np.sin(np.pi * tb[on] / 0.15) * _harmonics(tb[on], f0, (1.0, 0.5, 0.3)))
    return x


def _birds(rng, t):
    x = np.zeros_like(t)
    for _ in range(int(rng.integers(5, 20))):
        at, length = rng.uniform(0.0, t[-1]), rng.uniform(0.03, 0.15)
        tb = t - at
        on = (tb >= 0) & (tb < length)
        f = rng.uniform(2000.0, 6000.0) * (1 + rng.uniform(-0.3, 0.3) * tb[on] / length)
        x[on] += np.sin(np.pi * tb[on] / length) * np.sin(2 * np.pi * f * tb[on])
    return x


def _cattle(rng, t):
    f0 = rng.uniform(100.0, 250.0)
    env = np.sin(np.pi * np.clip(t / t[-1], 0, 1)) ** 0.5
    return env * _harmonics(t, f0 * (1 - 0.1 * t / t[-1]), (1.0, 0.7, 0.5, 0.3, 0.2), 0.5, rng)


def _hammering(rng, t):
    x = np.zeros_like(t)
    at = rng.uniform(0.0, 0.5)
    while at < t[-1]:
        tb = t - at
        on = (tb >= 0) & (tb < 0.05)
        x[on] += rng.standard_normal(int(on.sum())) * np.exp(-tb[on] / 0.006) \
            + np.sin(2 * np.pi * 1200.0 * tb[on]) * np.exp(-tb[on] / 0.01)
        at += rng.uniform(0.5, 1.5)
    return x


def _engine(rng, t):
    f0 = rng.uniform(80.0, 200.0)
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 1.0)
    buzz = _harmonics(t, f0, (1.0, 0.8, 0.6, 0.4, 0.3, 0.2), 0.3, rng)
    return env * (buzz + 0.5 * rng.standard_normal(len(t)))


_MAKERS = {"vehicle": _vehicle, "thunder": _thunder, "door": _door, "dog": _dog,
           "birds": _birds, "cattle": _cattle, "hammering": _hammering, "engine": _engine}


def tone_masking_db(profile, floor_db: float, frequency_hz: float, wind_mps: float = 0.0) -> float:
    """How much more noise a narrow-band detector meets at a frequency in this background than
    in white noise of the same broadband level (dB; 0 under `ideal`): the pink floor's share
    per Hz at f against white's, plus wind on the microphone (1/f^2 from 10 Hz) at the wind."""
    bg = profile.background
    if bg.model != "field":
        return 0.0
    f = max(20.0, float(frequency_hz))
    white = 1.0 / 8000.0
    field = 1.0 / (f * math.log(8000.0 / 20.0))
    v = MIC_WIND_SHARE * wind_mps
    if bg.wind_noise_db_at_5mps > 0 and v > 0.2:
        wind_db = bg.wind_noise_db_at_5mps + 40.0 * math.log10(v / 5.0)
        field += 10.0 ** ((wind_db - floor_db) / 10.0) * 10.0 / f ** 2
    return 10.0 * math.log10(field / white)


def band_share_db(profile, floor_db: float, lo_hz: float, hi_hz: float, wind_mps: float = 0.0) -> float:
    """The background's power between lo_hz and hi_hz against its broadband level (dB, <= 0):
    white noise's share of the 0-8 kHz band under `ideal`; under `field` the pink floor's
    share (1/f from 20 Hz) plus wind on the microphone's (1/f^2 from 10 Hz) at the wind."""
    bg = profile.background
    if bg.model != "field":
        return 10.0 * math.log10((hi_hz - lo_hz) / 8000.0)
    share = math.log(hi_hz / lo_hz) / math.log(8000.0 / 20.0)
    v = MIC_WIND_SHARE * wind_mps
    if bg.wind_noise_db_at_5mps > 0 and v > 0.2:
        wind_db = bg.wind_noise_db_at_5mps + 40.0 * math.log10(v / 5.0)
        share += 10.0 ** ((wind_db - floor_db) / 10.0) * 10.0 * (1.0 / lo_hz - 1.0 / hi_hz)
    return 10.0 * math.log10(share)
