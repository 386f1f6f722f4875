# Tampering with the node: a sudden jolt, or the node tilted away from how it was mounted.
#
# Jolt: the largest per-axis change between two accelerometer samples (milli-g) over the
# threshold. Tilt: the angle between a lightly smoothed acceleration and the rest vector
# (learned slowly while the node is still) over TILT_DEG for _TILT_HOLD_MS; the new attitude
# then becomes the rest vector, so one knock-over is reported once.
import math

from .detection import Detection, clamp01

# module constants as _NAME = const(n): inlined, so no global and no interned name in RAM
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_DEFAULT_JOLT_MG = const(400)
_TILT_DEG = const(20.0)
_TILT_HOLD_MS = const(1000)
_REST_WARMUP = const(8)          # samples averaged fast before the rest vector is trusted
_REST_TAU = const(256)           # samples (~5 s at 50 Hz) to learn the rest vector while still
_SMOOTH_TAU = const(4)


class TamperDetector:
    def __init__(self, rate_hz=50):
        self.rate = rate_hz
        self.threshold_mg = _DEFAULT_JOLT_MG
        self._hold = max(1, _TILT_HOLD_MS * rate_hz // 1000)
        self._cos_tilt = math.cos(math.radians(_TILT_DEG))
        self.reset()

    def reset(self):
        self._last = None
        self._rest = None
        self._smooth = None
        self._seen = 0
        self._tilted = 0
        self._tilt_start = 0

    def set_threshold(self, cls, mg):
        self.threshold_mg = int(mg)

    def feed(self, x, y, z, index):
        """One accelerometer sample (milli-g ints) at audio sample `index`: Detection or None."""
        last = self._last
        self._last = (x, y, z)
        self._seen += 1
        if last is None:
            self._rest = [float(x), float(y), float(z)]
            self._smooth = [float(x), float(y), float(z)]
            return None
        jolt = max(abs(x - last[0]), abs(y - last[1]), abs(z - last[2]))
        # follow the attitude: a smoothed vector, and the rest vector learned while still
        s = self._smooth
        r = self._rest
        warm = self._seen <= _REST_WARMUP
        still = jolt < self.threshold_mg // 4
        for i, v in enumerate(self._last):
            s[i] += (v - s[i]) / _SMOOTH_TAU
            if warm:
                r[i] += (v - r[i]) / 2.0
            elif still and not self._tilted:
                r[i] += (v - r[i]) / _REST_TAU
        if jolt >= self.threshold_mg:
            ratio = jolt / float(self.threshold_mg)
            return Detection(5, clamp01(0.5 + 0.25 * ratio), index,
                             20.0 * math.log10(jolt / 1000.0), 0, 0, 20.0 * math.log10(ratio))
        # a tilt: the smoothed vector away from the rest vector for _TILT_HOLD_MS
        if warm:
            return None
        dot = s[0] * r[0] + s[1] * r[1] + s[2] * r[2]
        norms = math.sqrt((s[0] * s[0] + s[1] * s[1] + s[2] * s[2])
                          * (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]))
        if norms <= 0.0 or dot >= self._cos_tilt * norms:
            self._tilted = 0
            return None
        if self._tilted == 0:
            self._tilt_start = index
        self._tilted += 1
        if self._tilted < self._hold:
            return None
        angle = math.degrees(math.acos(max(-1.0, min(1.0, dot / norms))))
        for i in range(3):
            r[i] = s[i]          # the new attitude is the new rest
        self._tilted = 0
        duration_ms = self._hold * 1000 // self.rate
        ratio = angle / _TILT_DEG
        return Detection(5, clamp01(0.5 + 0.25 * ratio), self._tilt_start, 0.0, duration_ms, 0,
                         20.0 * math.log10(ratio))
