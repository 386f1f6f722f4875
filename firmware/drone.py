# Drones: tonal energy at the blade-pass fundamental and its harmonics, sustained.
#
# Audio is box-decimated to ~4 kHz and cut into windows of _GRID_HZ resolution (40 ms at 25 Hz).
# A Goertzel bank computes the DFT bins h*k0 (h = 1..HARMONICS) for every candidate
# fundamental k0 from _F0_MIN_HZ to _F0_MAX_HZ. Each bin is compared with its own slowly learned
# noise floor (that whitens pink/wind noise); a candidate's score is the mean of its harmonics'
# bin SNRs, each capped, with at least two harmonics standing out so that one stray tone is no
# drone. A detection needs the best candidate over threshold, at a steady fundamental (+-1 bin),
# for _SUSTAIN_MS with at most _MAX_MISSES windows missing in a row.
import math

from . import dsp
from .detection import Detection, clamp01

# module constants as _NAME = const(n): inlined, so no global and no interned name in RAM
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_GRID_HZ = const(25)             # dronesetup.py repeats these three (a test holds them equal)
_HARMONICS = const(3)
_F0_MIN_HZ = const(100)          # candidate c: fundamental _F0_MIN_HZ + c * _step Hz
_MAX_MISSES = const(3)
_WARMUP_WINDOWS = const(25)      # learn the per-bin noise floor first (1 s, a plain mean)
_FLOOR_TAU = const(64)           # windows (~2.5 s) for the floor of a quiet bin
_FLOOR_TAU_BUSY = const(1024)    # windows (~40 s) per 4.3 dB while a bin stands out (tone, new noise)
_STANDS_OUT = const(4.0)         # bin power over its floor (6 dB): the floor does not learn it
_STRONG = const(2.0)             # a harmonic counts when its smoothed power is 3 dB over its floor
_SMOOTH = const(0.25)            # the tracker reads bin power averaged over ~4 windows (160 ms)
_CAP = const(10000.0)            # one bin adds at most 40 dB to a candidate's score
_DEFAULT_THRESHOLD_DB = const(5.0)
_WINDOW_SHIFT = const(17)        # Hann (Q15) and 1/4: keeps the Goertzel states in 32 bits (dsp.goertzel)


class DroneDetector:
    def __init__(self, rate_hz=16000):
        # the window, bins and candidate tables: set up once, by boot-only code
        # (lwnode.dronesetup, which lwnode.boot unloads like config: ~1 KB of the node's heap)
        from . import dronesetup
        dronesetup.setup(self, rate_hz)
        self.threshold_db = _DEFAULT_THRESHOLD_DB
        self.vehicle = None     # a VehicleDetector reading these spectrum windows too
        self.reset()

    def reset(self):
        self._windows = 0
        self._pos = 0
        self._next_index = -1
        self._window_index = 0
        self._run = 0
        self._misses = 0
        self._floor_windows = 0
        # the run's state, made here at boot: set first when a run starts, these names grew
        # the instance's attribute table then (a 592-byte block, in a heap the running node
        # has fragmented: MemoryError in hil-tests at 128K)
        self._run_f = 0.0
        self._run_start = 0
        self._run_score = 0.0
        self._run_peak = 0.0

    def set_threshold(self, cls, db):
        self.threshold_db = float(db)

    def feed(self, block, n, first_index, found):
        f = self.factor
        if n % f:
            raise ValueError("drone: block of %d samples is not a multiple of %d" % (n, f))
        if first_index != self._next_index:
            self._pos = 0     # lost samples: restart the window, the run and the floor (the
            self._run = 0     # noise may have changed meanwhile: a stale low floor hears drones)
            self._floor_windows = 0
        self._next_index = first_index + n
        wlen = self.window_len
        src = 0
        left = n // f
        while left:
            if self._pos == 0:
                self._window_index = first_index + src
            take = min(left, wlen - self._pos)
            dsp.decimate(block, src, take, f, self._window, self._pos)
            self._pos += take
            src += take * f
            left -= take
            if self._pos == wlen:
                self._pos = 0
                self._evaluate(found)

    def _evaluate(self, found):
        ks = self._ks
        coef = self._coef
        state = self._state
        dsp.apply_window(self._window, self.window_len, self._hann, _WINDOW_SHIFT)
        dsp.goertzel(self._window, self.window_len, coef, len(ks), state)
        # each bin's power: into its average here, and computed again from the same states
        # where the floor learns it below (an array of it cost the node ~400 bytes for good)
        avg = self._avg
        first = self._floor_windows == 0
        for b in range(len(ks)):
            p = dsp.goertzel_power(state[2 * b], state[2 * b + 1], coef[2 * b], coef[2 * b + 1])
            avg[b] = p if first else avg[b] + (p - avg[b]) * _SMOOTH
        floor = self._floor
        if self._floor_windows >= _WARMUP_WINDOWS:
            # Each bin's averaged power over its floor (ratio), then over its neighbourhood's:
            # the geometric mean of the lower ratio of the bins 2 and 3 below it and the lower
            # of those 2 and 3 above (one side at the band's ends). A tone stands over its
            # neighbours (Hann leaks it into the next bin only; a tone between bins or another
            # harmonic lifts one of each pair at most); broadband sound (a gust on the
            # microphone, thunder, hammering) lifts its neighbours as much and stands out of no
            # bin. Neighbours under their floors leave the ratio as it is. Inline: a method
            # would cost the node heap for good (firmware/README.md "Memory").
            ratio = self._ratio
            nb = len(ratio)
            for b in range(nb):
                fl = floor[b]
                if fl > 0.0:
                    p = avg[b] / fl
                else:   # digital silence learned (a dead microphone): only sound stands out
                    p = _CAP if avg[b] > 0.0 else 0.0
                ratio[b] = p if p < _CAP else _CAP
            r1 = -1.0   # the raw ratios 1, 2 and 3 bins below (overwritten in ratio by now)
            r2 = -1.0
            r3 = -1.0
            for b in range(nb):
                p = ratio[b]
                lo = r2 if r3 < 0.0 or r2 < r3 else r3
                hi = -1.0
                if b + 3 < nb:
                    hi = min(ratio[b + 2], ratio[b + 3])
                elif b + 2 < nb:
                    hi = ratio[b + 2]
                if lo >= 0.0 and hi >= 0.0:
                    lo = math.sqrt(lo * hi)
                elif lo < 0.0:
                    lo = hi
                ratio[b] = p / lo if lo > 1.0 else p
                r3 = r2
                r2 = r1
                r1 = p
            self._track(found)
        # learn the per-bin noise floor
        warm = self._floor_windows < _WARMUP_WINDOWS
        self._floor_windows += 1
        nb = len(ks)
        for b in range(nb):
            p = dsp.goertzel_power(state[2 * b], state[2 * b + 1], coef[2 * b], coef[2 * b + 1])
            fl = floor[b]
            if warm:
                floor[b] = p if self._floor_windows == 1 else fl + (p - fl) / self._floor_windows
            elif p < _STANDS_OUT * fl:
                # learn at most 3 dB over the bins 2 and 3 away (6 dB at the band's ends, one
                # side only): a tone leaks into the next bin only, so an approaching drone's
                # slowly rising tone is not learned as noise (it was: a drone passing 80 m
                # over a node at 12 dB over the bin's noise stood out of no window)
                ref = 0.0
                m = 0
                for j in (b - 3, b - 2, b + 2, b + 3):
                    if 0 <= j < nb:
                        ref += floor[j]
                        m += 1
                cap = (2.0 if m == 4 else 4.0) * ref / m
                if p > cap:
                    p = cap
                floor[b] = fl + (p - fl) / _FLOOR_TAU
            else:  # creep up only (4.3 dB per _FLOOR_TAU_BUSY): a drone must not lift its floor
                floor[b] = fl + fl / _FLOOR_TAU_BUSY
        if self.vehicle is not None:
            self.vehicle._evaluate(self, found)

    def _track(self, found):
        # the best candidate: its fundamental (Hz), score and first bin, or 0, 0.0, -1
        ratio = self._ratio     # each bin over its floor and its neighbours' (_evaluate)
        power = self._avg
        cand_bins = self._cand_bins
        cand_n = self._cand_n
        f = 0
        score = 0.0
        first_bin = -1
        for c in range(len(cand_n)):
            n = cand_n[c]
            first = c * _HARMONICS
            total = 0.0
            strong = 0
            for j in range(first, first + n):
                r = ratio[cand_bins[j]]
                if r >= _STRONG:
                    strong += 1
                total += r
            if strong >= 2 and total / n > score:
                score = total / n
                f = _F0_MIN_HZ + c * self._step    # as dronesetup made the candidates
                first_bin = cand_bins[first]
        score_db = 10.0 * math.log10(score) if score > 0.0 else -120.0
        if score_db < self.threshold_db:
            self._misses += 1
            if self._misses > _MAX_MISSES:
                self._run = 0
            return
        self._misses = 0
        if self._run and abs(f - self._run_f) <= 2.5 * self._step:
            self._run += 1
            self._run_score += score_db
        else:
            self._run = 1
            self._run_start = self._window_index
            self._run_score = score_db
            self._run_peak = 0.0
        self._run_f = f
        p = power[first_bin]
        if p > self._run_peak:
            self._run_peak = p
        if self._run >= self._sustain:
            snr_db = self._run_score / self._run
            # Hann: a tone of amplitude A on a bin gives |X| = A*N/4; the window also divided by 4
            amplitude = 16.0 * math.sqrt(self._run_peak) / self.window_len
            peak_db = 20.0 * math.log10(amplitude / 32768.0) if amplitude > 0 else -120.0
            confidence = clamp01(0.5 + (snr_db - self.threshold_db) / 20.0)
            found.append(Detection(3, confidence, self._run_start, peak_db,
                                   self._run * 1000 // _GRID_HZ, int(f + 0.5), snr_db))
            self._run = 0
