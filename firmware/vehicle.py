# Vehicles: sustained low-frequency broadband sound, and ground vibration on the accelerometer.
#
# Sound: the drone detector's spectrum windows (40 ms, 25 Hz bins, averaged over ~160 ms) are
# shared: each window, the power of its bins from 100 to 500 Hz is summed and compared with a
# floor of its own, learned slowly upward (~5 min: a vehicle approaching over minutes must
# not be learned as noise) and quickly downward. A window is "loud" when the band stands
# the threshold over that floor and is broadband (no one bin carries _TONAL of it: a drone's
# or a generator's tone is not a vehicle). Vibration: the mean per-sample change of the
# accelerometer (|dx|+|dy|+|dz|, milli-g) over its own floor; it makes a window loud at half
# the threshold (a tracked vehicle near the node in wind). An event is loud windows for
# _SUSTAIN windows (8 s: the emulator's wind gusts at 8 m/s lift the band 7-9 dB for ~5 s)
# with gaps under _GAP windows; it is reported when it ends (onset and
# duration: the end time) or, for a vehicle that stays, every _MAX_WINDOWS.
#
# Lean on purpose (firmware/README.md "Memory"): the state lives in two arrays with const
# slot numbers and the methods reuse names the node already interns.
import math
from array import array

from .detection import Detection, clamp01

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_DEFAULT_THRESHOLD_DB = const(6.0)
_BAND_LO_HZ = const(100)         # the band: the drone's bins from 100 to 500 Hz
_BAND_HI_HZ = const(500)
_TONAL = const(0.3)              # one bin with this share of the band's power: a tone
_WARMUP = const(25)              # windows (1 s): the floor is the plain mean first
_FALL_TAU = const(64)            # windows (~2.5 s): the floor follows a quieter band
_RISE_TAU = const(7500)          # windows (~5 min): and a louder one, slowly (at ~60 s, a
                                 # wheeled vehicle nearing at 5 m/s was learned, unheard at 200 m)
_RISE_TAU_EVENT = const(30000)   # windows (~20 min): during an event
_SUSTAIN = const(200)            # loud windows (8 s) make an event: wind gusts last ~5 s
_GAP = const(50)                 # quiet windows (2 s) end it
_MAX_WINDOWS = const(1500)       # an event is reported at least every 60 s
_VIB_TAU = const(8)              # accelerometer samples (~0.25 s at 31 Hz)
_VIB_FALL_TAU = const(16)
_VIB_RISE_TAU = const(1024)      # ~30 s
_VIB_MIN_MG = const(3.0)         # vibration must also stand this far over its floor

# integer state (_ev, int64: sample indices stay exact on a single-precision board)
_ONSET = const(0)                # sample index of the event's first loud window
_END = const(1)                  # sample index after its last loud window
_LOUD = const(2)                 # loud windows in the event
_QUIET = const(3)                # windows since the last loud one
_SEEN = const(4)                 # windows since the start or a gap in the samples
_SHAKEN = const(5)               # loud windows with vibration over its floor
_PREV_X = const(6)               # the last accelerometer sample (milli-g)
_PREV_Y = const(7)
_PREV_Z = const(8)
_SAMPLES = const(9)              # accelerometer samples seen
_FREQ = const(10)                # band centroid (Hz) at the loudest window
_BINS = const(11)                # the band: the drone's bins 0 .. _BINS - 1
_INTS = const(12)
# float state (_floor, doubles)
_BAND = const(0)                 # the band's floor
_VIB = const(1)                  # mean |change| of the accelerometer, milli-g
_VIB_FLOOR = const(2)
_PEAK = const(3)                 # loudest band power in the event
_SUM_DB = const(4)               # sum of the loud windows' dB over the floor
_FLOATS = const(5)


class VehicleDetector:
    """Fed by the drone detector's windows (`_evaluate`) and the accelerometer (`feed`)."""

    def __init__(self, drone):
        hz = drone.rate / drone.factor / drone.window_len
        ks = drone._ks
        self._ev = array("q", bytearray(8 * _INTS))
        self._floor = array("d", bytearray(8 * _FLOATS))
        self.threshold_db = _DEFAULT_THRESHOLD_DB
        self.reset()
        # the band: the drone's first bins (they are every k from 100 Hz on)
        n = sum(1 for k in ks if _BAND_LO_HZ <= k * hz <= _BAND_HI_HZ)
        if ks[0] * hz < _BAND_LO_HZ - hz / 2 or n < 4:
            raise ValueError("vehicle: drone bins do not cover %d-%d Hz" % (_BAND_LO_HZ, _BAND_HI_HZ))
        self._ev[_BINS] = n

    def reset(self):
        ev = self._ev
        for i in range(_BINS):      # (not the band's bins)
            ev[i] = 0
        f = self._floor
        for i in range(_FLOATS):
            f[i] = 0.0

    def set_threshold(self, cls, db):
        self.threshold_db = float(db)

    def feed(self, x, y, z, index):
        """One accelerometer sample (milli-g): follows the vibration level and its floor."""
        ev = self._ev
        f = self._floor
        ev[_SAMPLES] += 1
        n = ev[_SAMPLES]
        if n > 1:
            j = abs(x - ev[_PREV_X]) + abs(y - ev[_PREV_Y]) + abs(z - ev[_PREV_Z])
            v = f[_VIB] + (j - f[_VIB]) / _VIB_TAU
            f[_VIB] = v
            fl = f[_VIB_FLOOR]
            if n <= _WARMUP + 1:
                f[_VIB_FLOOR] = fl + (v - fl) / (n - 1)
            elif v < fl:
                f[_VIB_FLOOR] = fl + (v - fl) / _VIB_FALL_TAU
            elif not ev[_LOUD]:
                f[_VIB_FLOOR] = fl + (v - fl) / _VIB_RISE_TAU
        ev[_PREV_X] = x
        ev[_PREV_Y] = y
        ev[_PREV_Z] = z

    def _evaluate(self, det, found):
        """One spectrum window of DroneDetector `det` (its averaged bin powers are ready)."""
        ev = self._ev
        f = self._floor
        if det._floor_windows <= 1:      # the drone restarted: the start, or lost samples
            ev[_SEEN] = 0
            ev[_LOUD] = 0
        avg = det._avg
        band = 0.0
        top = 0.0
        moment = 0.0
        for b in range(ev[_BINS]):
            p = avg[b]
            band += p
            moment += p * det._ks[b]
            if p > top:
                top = p
        ev[_SEEN] += 1
        fl = f[_BAND]
        if ev[_SEEN] <= _WARMUP:
            f[_BAND] = fl + (band - fl) / ev[_SEEN]
            return
        db = 10.0 * math.log10(band / fl) if band > 0.0 and fl > 0.0 else 0.0
        shaken = ev[_SAMPLES] > _WARMUP and f[_VIB] >= 2.0 * f[_VIB_FLOOR] + _VIB_MIN_MG
        loud = top < _TONAL * band and (db >= self.threshold_db
                                         or (shaken and db >= self.threshold_db / 2))
        # the floor: down quickly, up slowly (more slowly still during an event)
        if band < fl:
            f[_BAND] = fl + (band - fl) / _FALL_TAU
        else:
            f[_BAND] = fl + (band - fl) / (_RISE_TAU_EVENT if ev[_LOUD] else _RISE_TAU)
        step = det.window_len * det.factor
        if loud:
            if not ev[_LOUD]:
                ev[_ONSET] = det._window_index
                ev[_SHAKEN] = 0
                f[_PEAK] = 0.0
                f[_SUM_DB] = 0.0
            ev[_LOUD] += 1
            ev[_QUIET] = 0
            ev[_END] = det._window_index + step
            f[_SUM_DB] += db
            if shaken:
                ev[_SHAKEN] += 1
            if band > f[_PEAK]:
                f[_PEAK] = band
                ev[_FREQ] = int(moment / band * det.rate / det.factor / det.window_len + 0.5)
        elif ev[_LOUD]:
            ev[_QUIET] += 1
        if not ev[_LOUD]:
            return
        if ev[_QUIET] >= _GAP or (ev[_END] - ev[_ONSET]) >= _MAX_WINDOWS * step:
            if ev[_LOUD] >= _SUSTAIN:
                found.append(self._detection(det))
            ev[_LOUD] = 0
            ev[_QUIET] = 0

    def _detection(self, det):
        ev = self._ev
        f = self._floor
        n = ev[_LOUD]
        snr_db = f[_SUM_DB] / n
        # the band's RMS from its Goertzel powers: a tone of amplitude A gives |X| = A*N/16
        # (Hann, and the window divided by 4), noise spreads over 1.5 bins (Hann's bandwidth)
        rms = 16.0 * math.sqrt(f[_PEAK] / 3.0) / det.window_len
        peak_db = 20.0 * math.log10(rms / 32768.0) if rms > 0 else -120.0
        confidence = clamp01(0.5 + (snr_db - self.threshold_db) / 20.0 + 0.2 * ev[_SHAKEN] / n)
        return Detection(4, confidence, ev[_ONSET], peak_db,
                         (ev[_END] - ev[_ONSET]) * 1000 // det.rate, ev[_FREQ], snr_db)
