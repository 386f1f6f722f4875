# The drone detector's window, bins and candidate tables (drone.py), computed once when the
# detector is made. A module of its own so that this code leaves RAM once the node has booted
# (lwnode.boot unloads it, like config and storeload: firmware/README.md "Memory").
from array import array

from . import dsp

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_DECIMATED_HZ = const(4000)
_GRID_HZ = const(25)             # as in drone.py (const there, so not importable on a board)
_HARMONICS = const(3)            # as in drone.py
_F0_MIN_HZ = const(100)          # as in drone.py
_F0_MAX_HZ = const(400)
_SUSTAIN_MS = const(1000)


def setup(det, rate_hz):
    """Set up DroneDetector `det` for `rate_hz`."""
    det.rate = rate_hz
    det.factor = (rate_hz + _DECIMATED_HZ - 1) // _DECIMATED_HZ
    fd = rate_hz / det.factor
    n = int(fd / _GRID_HZ + 0.5)
    if n > 160:  # with bins >= 100 Hz at <= 4 kHz: Goertzel states < 2**31 (dsp.goertzel)
        raise ValueError("drone: window of %d samples is too long" % n)
    det.window_len = n
    bin_hz = fd / n
    # candidate fundamentals a third of a bin apart, so that the 3rd harmonic of each still
    # lands within half a bin of one of its bins (Hann: at most 1.4 dB lost)
    step = _GRID_HZ / _HARMONICS
    count = int((_F0_MAX_HZ - _F0_MIN_HZ) / step) + 1
    f0s = [_F0_MIN_HZ + i * step for i in range(count)]
    ks = sorted(set(int(h * f / bin_hz + 0.5) for f in f0s
                    for h in range(1, _HARMONICS + 1) if 2 * h * f < fd))
    det._ks = bytes(ks)   # bin numbers, < 256 (1200 Hz at most, bins >= 24 Hz): not a list
    index = {k: b for b, k in enumerate(ks)}
    # candidate c: fundamental _F0_MIN_HZ + c * step Hz (drone.py computes it: an array of
    # them cost ~330 bytes), its harmonics' bin indices in
    # _cand_bins[c * _HARMONICS:][:_cand_n[c]] (flat arrays: no tuple per candidate in RAM)
    cand_bins = bytearray(_HARMONICS * len(f0s))
    cand_n = bytearray(len(f0s))
    for c, f in enumerate(f0s):
        j = c * _HARMONICS
        for h in range(1, _HARMONICS + 1):
            if 2 * h * f < fd:
                cand_bins[j + cand_n[c]] = index[int(h * f / bin_hz + 0.5)]
                cand_n[c] += 1
    det._cand_bins = bytes(cand_bins)
    det._cand_n = bytes(cand_n)
    det._step = step
    det._coef = dsp.goertzel_coefficients([k * bin_hz for k in ks], fd)
    det._hann = dsp.hann_q15(n)
    det._state = array("i", bytearray(8 * len(ks)))
    det._window = array("h", bytearray(2 * n))
    det._avg = array("d", bytearray(8 * len(ks)))     # bin powers over ~4 windows, unboxed
    det._floor = array("d", bytearray(8 * len(ks)))
    det._ratio = array("d", bytearray(8 * len(ks)))   # each bin over its floor and neighbours
    det._sustain = max(1, (_SUSTAIN_MS * _GRID_HZ + 999) // 1000)
