# The node's detection chain: audio blocks and accelerometer samples in, detections out.
#
# Thresholds are per class, in the unit of that class's detection statistic (Detection.snr_db):
#   0 unknown, 1 explosion, 2 small arms  dB of short-term over long-term average |x|
#   3 drone                               dB of mean harmonic-bin power over its noise floor
#   4 vehicle                             dB of 100-500 Hz band power over its noise floor
#   5 tamper                              milli-g of jolt between two accelerometer samples
# The refractory time per class (ms) silences repeats of a class after a report; both are
# changed at runtime by downlink commands.
from .detection import Detection
from .drone import DroneDetector
from .impulse import ImpulseDetector
from .tamper import TamperDetector
from .vehicle import VehicleDetector

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_CLASSES = const((0, 1, 2, 3, 4, 5))
_DEFAULT_REFRACTORY_MS = const((500, 500, 100, 10000, 5000, 10000))
_NONE = const(())
_CAPABILITIES = const(40)         # lwproto.const CAP_DRONE | CAP_VEHICLE: the birth frame's detector bits


class DetectorChain:
    def __init__(self, rate_hz=16000, block=256, accel_rate_hz=50):
        self.rate = rate_hz
        self.impulse = ImpulseDetector(rate_hz, max_block=block)
        self.drone = DroneDetector(rate_hz)
        self.tamper = TamperDetector(accel_rate_hz)
        # the vehicle detector reads the drone's spectrum windows (no attribute of its own here:
        # each name is interned in the node's RAM for good)
        self.drone.vehicle = VehicleDetector(self.drone)
        self._by_class = (self.impulse, self.impulse, self.impulse, self.drone, self.drone.vehicle,
                          self.tamper)
        self._refractory = [0] * len(_CLASSES)     # in samples
        self._last = [None] * len(_CLASSES)        # onset index of the last report per class
        for cls in _CLASSES:
            self.set_refractory(cls, _DEFAULT_REFRACTORY_MS[cls])
        self._found = []
        self.capabilities = _CAPABILITIES

    def pause(self):
        """Stop hearing sound and free the audio detectors with their arrays (~5.1 KB at
        16 kHz) for an update's download (firmware/README.md "Updates over the air"); the node
        reboots afterwards, into the new build or the one it runs. The tamper detector runs
        on; a command's threshold for a sound class is refused meanwhile ("no detector")."""
        self.impulse = self.drone = None  # type: ignore[assignment]  # until the reboot
        self._by_class = (None, None, None, None, None, self.tamper)  # type: ignore[assignment]

    # ------------------------------------------------------------ settings (downlink)
    def set_threshold(self, cls, value):
        det = self._detector(cls)
        if not isinstance(value, (int, float)) or value != value or value <= 0 or value > 10000:
            raise ValueError("threshold for class %d: %r is not a positive number" % (cls, value))
        det.set_threshold(cls, value)

    def threshold(self, cls):
        det = self._detector(cls)
        if det is self.impulse:
            return det.threshold_db[cls]
        if det is self.tamper:
            return det.threshold_mg
        return det.threshold_db

    def set_refractory(self, cls, ms):
        self._check_class(cls)
        if not isinstance(ms, int) or ms < 0 or ms > 86400000:
            raise ValueError("refractory for class %d: %r is not 0..86400000 ms" % (cls, ms))
        self._refractory[cls] = ms * self.rate // 1000

    def refractory_ms(self, cls):
        self._check_class(cls)
        return self._refractory[cls] * 1000 // self.rate

    def _check_class(self, cls):
        if not isinstance(cls, int) or not 0 <= cls < len(_CLASSES):
            raise ValueError("no event class %r (0..%d)" % (cls, len(_CLASSES) - 1))

    def _detector(self, cls):
        self._check_class(cls)
        det = self._by_class[cls]
        if det is None:
            raise ValueError("no detector for event class %d on this node" % cls)
        return det

    # ------------------------------------------------------------ data
    def feed_audio(self, block, first_sample_index, n=-1):
        """Feed int16 samples block[0:n] (all of it by default) whose first sample has the
        absolute index `first_sample_index`; returns a list of Detection (often empty)."""
        if self.impulse is None:
            return _NONE          # paused
        if n < 0:
            n = len(block)
        found = self._found
        self.impulse.feed(block, n, first_sample_index, found)
        self.drone.feed(block, n, first_sample_index, found)
        return self._report(found)

    def feed_accel(self, x, y, z, sample_index):
        """One accelerometer sample in milli-g, stamped with the audio sample index of the
        moment it was read; returns a list of Detection (often empty)."""
        if self.drone is not None:      # paused: the tamper detector only
            self.drone.vehicle.feed(x, y, z, sample_index)  # type: ignore[union-attr]  # set in __init__
        det = self.tamper.feed(x, y, z, sample_index)
        if det is None:
            return _NONE
        found = self._found
        found.append(det)
        return self._report(found)

    def _report(self, found):
        if not found:
            return _NONE
        out = []
        for det in found:
            last = self._last[det.cls]
            if last is not None and 0 <= det.onset_index - last < self._refractory[det.cls]:
                continue
            self._last[det.cls] = det.onset_index
            out.append(det)
        del found[:]
        return out


__all__ = ("DetectorChain", "Detection")
