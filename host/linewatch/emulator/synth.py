"""The int16 16 kHz samples a node's microphone gets, in windows around what it can hear.

Calibration: 0 dBFS = 120 dB SPL, i.e. a sine of 120 dB SPL (RMS) peaks at full scale
(32767); a 94 dB SPL tone then sits at -26 dBFS, the sensitivity of an INMP441-class MEMS
microphone. Louder sound clips, as on the board.

Fidelity plan: rendering every sample of 1,200 nodes is too slow, so only windows around
arrivals (impulses), audible stretches (tracks) and the background's transients are rendered,
over the node's steady background (background.py: white noise at its floor under `ideal`;
pink noise, wind on the microphone and rain under `field`). Between windows the node hears
only the steady background; the detector's false alarms there are a Poisson process
(feedplan.false_alarms) at the rate measured from the real detector on that background
(false_alarms.py, `python -m lwtools.bench.false_alarms`).

Time: samples are placed by true time; each window carries the node's own clock stamp of
its first sample (offset, drift and jitter of its clock source), which is what the node
stamps events with. Within a window the sample clock is taken as exact.
"""
from __future__ import annotations

import bisect
import math
from array import array
from dataclasses import dataclass

import numpy as np

from linewatch.emulator import propagation as p
from linewatch.emulator.background import Background
from linewatch.emulator.ground import Ground
from linewatch.emulator.hearing import impulse_arrivals, track_exposures, track_propagation
from linewatch.emulator.randomness import stream
from linewatch.emulator.sources import Impulse, Track
from linewatch.emulator.world import World

SAMPLE_RATE = 16_000
FULL_SCALE_DB_SPL = 120.0
FULL_SCALE_RMS = 32767.0 / math.sqrt(2.0)
# Arrivals weaker than this above the floor are not rendered (they vanish in the noise).
SYNTH_MIN_SNR_DB = -6.0
WINDOW_PRE_S = 1.0                  # noise before an arrival, for the detector to settle
WINDOW_POST_S = 1.0
# before a vehicle is audible: the node's vehicle detector learns its band's floor from what
# it hears first (a vehicle that appears at full level, at the start of its path, would
# otherwise be learned as the background and never reported)
VEHICLE_PRE_S = 10.0
MAX_CHUNK_S = 10.0                  # long windows come in contiguous chunks of at most this
TEMPLATE_S = {"explosion": 0.8, "small_arms": 0.03}
# The part of an impulse template whose RMS is the source level.
MAIN_BURST_S = {"explosion": 0.1, "small_arms": 0.01}
# Templates fade out over their last part instead of stopping dead: the step of a cut-off
# rumble is a click, loud enough near the source for the detector to report it.
TEMPLATE_FADE_S = 0.1
# Samples kept after a propagated template: the absorption filter's decay.
PROPAGATED_TAIL = 256


def amplitude_rms(level_db_spl):
    """RMS in counts of a sound at a level in dB SPL."""
    return FULL_SCALE_RMS * 10.0 ** ((np.asarray(level_db_spl, dtype=float) - FULL_SCALE_DB_SPL) / 20.0)


def to_int16(signal: np.ndarray) -> np.ndarray:
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


def noise_block(noise_floor_db: float, n_samples: int, seed: int = 0) -> np.ndarray:
    """Background noise alone at a level (to measure the detector's false alarm rate)."""
    rng = stream(seed, "noise-block")
    return to_int16(rng.normal(0.0, float(amplitude_rms(noise_floor_db)), n_samples))


# ---------------------------------------------------------------- source waveforms (1 m)

def explosion_template(rng: np.random.Generator, dominant_hz: float) -> np.ndarray:
    """Blast (Friedlander positive phase) followed by a low-frequency decaying rumble."""
    n = int(TEMPLATE_S["explosion"] * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    positive = 1.0 / (2.0 * dominant_hz)
    blast = np.where(t < 4 * positive, (1 - t / positive) * np.exp(-t / positive), 0.0)
    rumble = _lowpass(rng.normal(0.0, 1.0, n), 2.5 * dominant_hz) * np.exp(-t / 0.15)
    rumble *= 0.5 / max(1e-12, np.std(rumble[: int(0.1 * SAMPLE_RATE)]))
    return _faded(_normalise(blast * 3.0 + rumble, "explosion"))


def shot_template(rng: np.random.Generator, dominant_hz: float) -> np.ndarray:
    """Muzzle blast: a sharp onset ringing at the dominant frequency, gone in a few ms."""
    n = int(TEMPLATE_S["small_arms"] * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ring = np.sin(2 * np.pi * dominant_hz * t + rng.uniform(0, 0.3)) * np.exp(-t / 0.002)
    crack = rng.normal(0.0, 0.5, n) * np.exp(-t / 0.0008)
    return _normalise(ring + crack, "small_arms")


def _normalise(x: np.ndarray, cls: str) -> np.ndarray:
    main = x[: int(MAIN_BURST_S[cls] * SAMPLE_RATE)]
    return x / max(1e-12, float(np.sqrt(np.mean(main ** 2))))


def _faded(x: np.ndarray) -> np.ndarray:
    n = min(len(x), int(TEMPLATE_FADE_S * SAMPLE_RATE))
    out = x.copy()
    out[len(x) - n:] *= 0.5 * (1.0 + np.cos(np.linspace(0.0, np.pi, n)))
    return out


def _lowpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / SAMPLE_RATE)
    spec[freqs > cutoff_hz] = 0.0
    return np.fft.irfft(spec, len(x))


def propagated(template: np.ndarray, distance_m: float, fraction: float,
               absorption=p.absorption_db_per_km) -> np.ndarray:
    """A 1 m template after absorption over a distance, delayed by a fraction of a sample.

    Absorption is applied as a minimum-phase filter, as air does: nothing arrives before the
    wavefront. (A zero-phase filter rang *before* the onset, so the detector picked far
    arrivals up to ~3 ms early, and that ringing wrapped round the FFT to a click at the
    template's end, which the detector reported as a second, false event 0.8 s later.)
    The FFT is padded well beyond the template so the filter's tail does not wrap either.
    `absorption(frequencies)` gives dB/km (default: the octave table of the ideal air).
    """
    n_out = len(template) + PROPAGATED_TAIL
    n = 1 << int(math.ceil(math.log2(len(template) + 4 * PROPAGATED_TAIL)))
    spec = np.fft.rfft(template, n)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    absorption_db = absorption(freqs) * distance_m / 1000.0
    spec *= _minimum_phase(-absorption_db * (math.log(10.0) / 20.0), n)
    spec *= np.exp(-2j * np.pi * freqs * fraction / SAMPLE_RATE)
    return np.fft.irfft(spec, n)[:n_out]


def _minimum_phase(log_gain: np.ndarray, n: int) -> np.ndarray:
    """The causal (minimum-phase) response with |H| = exp(log_gain) on an rfft grid of size n
    (homomorphic method: fold the real cepstrum onto positive quefrencies)."""
    cepstrum = np.fft.irfft(log_gain, n)
    folded = np.zeros(n)
    folded[0] = cepstrum[0]
    folded[1:n // 2] = 2.0 * cepstrum[1:n // 2]
    folded[n // 2] = cepstrum[n // 2]
    return np.exp(np.fft.rfft(folded, n))


# ---------------------------------------------------------------- windows

@dataclass(frozen=True)
class Window:
    """Contiguous samples of one node; sample k is heard at true time start + k / rate."""
    node_id: int
    first_sample: int            # true-time sample index since the scenario start
    true_start_us: int
    node_start_us: int           # the node's clock stamp of samples[0]
    samples: np.ndarray          # int16

    def block(self) -> array:
        """The samples as the firmware's `array('h')`."""
        return array("h", self.samples.tobytes())

    def sample_of_true_us(self, true_us: float) -> int:
        return int(round((true_us - self.true_start_us) * SAMPLE_RATE / 1e6))


class Synthesizer:
    """Renders what each node hears; a pure function of the world, the sources and the seed."""

    def __init__(self, world: World, sources, faults=(), seed: int | None = None):
        self.world = world
        self.seed = world.seed if seed is None else seed
        self.impulses = {s.id: s for s in sources if isinstance(s, Impulse)}
        self.tracks = {s.id: s for s in sources if isinstance(s, Track)}
        self.arrivals: dict[int, list] = {}
        self.exposures: dict[int, list] = {}
        for s in self.impulses.values():
            for a in impulse_arrivals(world, s, SYNTH_MIN_SNR_DB, faults):
                self.arrivals.setdefault(a.node_id, []).append(a)
        for s in self.tracks.values():
            for e in track_exposures(world, s, SYNTH_MIN_SNR_DB):
                self.exposures.setdefault(e.node_id, []).append(e)
        for arrivals in self.arrivals.values():
            arrivals.sort(key=lambda a: a.arrival_s)
        self._arrival_times = {n: [a.arrival_s for a in v] for n, v in self.arrivals.items()}
        self._templates: dict[str, np.ndarray] = {}
        self._indices = {int(n): i for i, n in enumerate(world.node_ids)}
        self.background = Background(world, self.seed)
        self.ground = Ground(world, sources)          # what the accelerometers feel (ground.py)

    def spans(self, node_id: int) -> list[tuple[float, float]]:
        """Merged (start_s, end_s) true-time stretches worth rendering for a node."""
        raw = []
        for a in self.arrivals.get(node_id, ()):
            length = TEMPLATE_S[self.impulses[a.source_id].event_class]
            raw.append((a.arrival_s - WINDOW_PRE_S, a.arrival_s + length + WINDOW_POST_S))
        for e in self.exposures.get(node_id, ()):
            span = e.audible(SYNTH_MIN_SNR_DB)
            if span:
                pre = VEHICLE_PRE_S if self.tracks[e.source_id].event_class == "vehicle" else WINDOW_PRE_S
                raw.append((span[0] - pre, span[1] + WINDOW_POST_S))
        merged: list[list[float]] = []
        for start, end in sorted((max(0.0, a), b) for a, b in raw):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [(a, b) for a, b in merged]

    def windows(self, node_id: int):
        """Yield the node's windows in time order, long ones as contiguous chunks."""
        chunk = int(MAX_CHUNK_S * SAMPLE_RATE)
        for start_s, end_s in self.spans(node_id):
            first = int(math.floor(start_s * SAMPLE_RATE))
            last = int(math.ceil(end_s * SAMPLE_RATE))
            for k in range(first, last, chunk):
                yield self.window(node_id, k, min(chunk, last - k))

    def window(self, node_id: int, first_sample: int, n_samples: int) -> Window:
        node = self.world.node(node_id)
        true_start_us = self.world.start_utc_us + first_sample * 1_000_000 // SAMPLE_RATE
        stamp = node.clock.node_time_us(true_start_us, stream(self.seed, "stamp", node_id, first_sample))
        return Window(node_id, first_sample, true_start_us, stamp,
                      to_int16(self.render(node_id, first_sample, n_samples)))

    def render(self, node_id: int, first_sample: int, n_samples: int) -> np.ndarray:
        """Float samples (counts) for true sample indices first_sample .. + n_samples."""
        node = self.world.node(node_id)
        if self.background.field:
            out = self.background.render(node, first_sample, n_samples)
        else:       # the first model, sample for sample: white noise at the floor
            rng = stream(self.seed, "noise", node_id, first_sample)
            out = rng.normal(0.0, float(amplitude_rms(node.noise_floor_db)), n_samples)
        t0, t1 = first_sample / SAMPLE_RATE, (first_sample + n_samples) / SAMPLE_RATE
        times = self._arrival_times.get(node_id, [])
        lo = bisect.bisect_left(times, t0 - max(TEMPLATE_S.values()) - 0.01)
        hi = bisect.bisect_right(times, t1)
        for a in self.arrivals[node_id][lo:hi] if hi > lo else ():
            self._add_arrival(out, first_sample, a)
        for e in self.exposures.get(node_id, ()):
            if e.times_s[0] - 5.0 < t1 and e.times_s[-1] + 5.0 > t0:
                self._add_track(out, first_sample, node, self.tracks[e.source_id])
        return out

    def _node_index(self, node_id: int) -> int:
        return self._indices[node_id]

    def _extra_absorption_db(self, fundamental_hz: float, harmonic: int, distance_m) -> np.ndarray:
        """Absorption of a harmonic beyond the fundamental's, over the distances (dB)."""
        if harmonic == 1:
            return np.zeros_like(distance_m)
        air = self.world.air
        if air.field:
            alpha = air.absorption_db_per_km(harmonic * fundamental_hz) - air.absorption_db_per_km(fundamental_hz)
        else:
            alpha = p.absorption_db_per_km(harmonic * fundamental_hz) - p.absorption_db_per_km(fundamental_hz)
        return float(alpha) * np.asarray(distance_m) / 1000.0

    def _template(self, impulse: Impulse) -> np.ndarray:
        if impulse.id not in self._templates:
            rng = stream(self.seed, "template", impulse.id)
            make = explosion_template if impulse.event_class == "explosion" else shot_template
            self._templates[impulse.id] = make(rng, impulse.dominant_hz)
        return self._templates[impulse.id]

    def _add_arrival(self, out: np.ndarray, first_sample: int, a) -> None:
        impulse = self.impulses[a.source_id]
        position = a.arrival_s * SAMPLE_RATE - first_sample
        whole = int(math.floor(position))
        length = len(self._template(impulse)) + PROPAGATED_TAIL
        if whole >= len(out) or whole + length <= 0:
            return
        air = self.world.air
        absorption = p.absorption_db_per_km if not air.field else (
            lambda f: air.absorption_db_per_km(f, a.temperature_c))
        wave = propagated(self._template(impulse), a.distance_m, position - whole, absorption)
        wave *= float(amplitude_rms(impulse.level_db - p.spreading_loss_db(a.distance_m) - a.excess_db))
        lo, hi = max(0, whole), min(len(out), whole + length)
        out[lo:hi] += wave[lo - whole:hi - whole]

    def _add_track(self, out: np.ndarray, first_sample: int, node, track: Track) -> None:
        index = self._node_index(node.id)
        grid_step = 0.02
        t0 = first_sample / SAMPLE_RATE
        t1 = (first_sample + len(out)) / SAMPLE_RATE
        grid = np.arange(t0, t1 + grid_step, grid_step)
        emitted = grid.copy()
        for _ in range(3):      # emission time: heard at t, sent at t - travel(sent)
            lats, lons = track.positions_at(emitted)
            _dist, travel, level = track_propagation(self.world, track, index, lats, lons, emitted)
            emitted = grid - travel
        amp = amplitude_rms(level) * _ramp(emitted, track.time_s, track.end_s)
        if float(amp.max()) < 1e-3:
            return
        t = t0 + np.arange(len(out)) / SAMPLE_RATE
        te = np.interp(t, grid, emitted)
        a = np.interp(t, grid, amp)
        phase = 2 * np.pi * track.fundamental_hz * te
        if track.event_class == "drone":
            # each harmonic fades with the air's absorption at its own frequency (the level
            # above is at the fundamental's): a drone's tone and a blast fade differently
            dist = np.interp(t, grid, _dist)
            wave = np.zeros(len(out))
            for h, weight in ((1, 1.0), (2, 0.5), (3, 0.3)):
                extra = self._extra_absorption_db(track.fundamental_hz, h, dist)
                wave += weight * 10.0 ** (-extra / 20.0) * np.sin(h * phase)
            wave /= math.sqrt((1 + 0.25 + 0.09) / 2)
        elif track.kind == "tracked":
            # tracks and running gear: a broadband rumble to ~1 kHz carries most of the power
            rumble = _rumble(stream(self.seed, "rumble", track.id, node.id, first_sample), len(out), step=10)
            wave = 0.3 * math.sqrt(2) * np.sin(phase) + math.sqrt(0.91) * rumble
        else:       # wheeled: the engine's firing tone and tyre noise under ~300 Hz
            rumble = _rumble(stream(self.seed, "rumble", track.id, node.id, first_sample), len(out))
            wave = 0.5 * math.sqrt(2) * np.sin(phase) + math.sqrt(0.75) * rumble
        out += a * wave


def _rumble(rng: np.random.Generator, n: int, step: int = 24) -> np.ndarray:
    """Unit-RMS noise below ~300 Hz: white noise at 1/step of the rate, linearly upsampled
    (an FFT low-pass of every chunk cost more than the rest of the synthesis)."""
    coarse = rng.normal(0.0, 1.0, n // step + 2)
    x = np.interp(np.arange(n) / step, np.arange(len(coarse)), coarse)
    return x / max(1e-12, float(np.std(x)))


def _ramp(times: np.ndarray, start_s: float, end_s: float, ramp_s: float = 2.0) -> np.ndarray:
    """0 outside the track's time, rising and falling over ramp_s at its ends."""
    up = np.clip((times - start_s) / ramp_s, 0.0, 1.0)
    down = np.clip((end_s - times) / ramp_s, 0.0, 1.0)
    return np.minimum(up, down)
