"""numpy twins of the firmware detector's DSP loops (lwnode.dsp), for the emulator's direct tier.

The boards run dsp.py's viper loops; CPython runs their plain-Python twins (firmware/dsp_py.py),
which cost ~94 % of the direct tier's time. The loops here return the SAME integers as dsp_py
(host/tests/test_dsp_numpy.py compares them on random and edge inputs): every sum is taken in
int64, where dsp_py's are unbounded Python ints, so each fast path first checks that its
inputs keep every intermediate value far below 2**63, and that its results fit the output
arrays (dsp_py raises OverflowError when a result does not fit an array('h') or array('i')).
Whatever is outside those bounds, or is not an array.array or memoryview of the expected
item size, goes to dsp_py itself: the twins are exact by construction, fast where the
detector's own inputs are.

Only the host chooses them (`numpy_loops()`, used by linewatch.emulator.direct): the firmware
and the boards keep their own loops and never import numpy.

The Goertzel bank is the one loop with no vector form over time (each step floors), so its
twin works across windows instead: `prefetch` computes, before a stretch of audio is fed, every
window the drone detector will evaluate in it (decimate, Hann, the bank; the windows in one
numpy pass per step), and `goertzel` looks each window up by its exact samples. The hop levels
and box means of every block are computed ahead the same way (numpy's cost per call is
larger than a block's work). Anything not found is computed on its own (still exact, slower).
"""
from __future__ import annotations

import contextlib
from array import array

import numpy as np

from lwnode import dsp, dsp_py

_SAFE = 2 ** 54          # |state| bound kept by the Goertzel fast path: |hi * s| < 2**63
_RANGE = {1: (-2 ** 7, 2 ** 7 - 1), 2: (-2 ** 15, 2 ** 15 - 1), 4: (-2 ** 31, 2 ** 31 - 1),
          8: (-2 ** 63, 2 ** 63 - 1)}
_INT_CODES = "bhilq"


def _view(obj, writable: bool = False) -> np.ndarray | None:
    """A numpy view of a signed-integer array.array or memoryview, or None (dsp_py takes it)."""
    if isinstance(obj, array):
        code = obj.typecode
    elif isinstance(obj, memoryview):
        code = obj.format
        if writable and obj.readonly or not obj.c_contiguous:
            return None
    else:
        return None
    if code not in _INT_CODES:
        return None
    return np.frombuffer(obj, dtype=np.dtype(code))


def _fits(values: np.ndarray, out: np.ndarray) -> bool:
    if not len(values):
        return True
    low, high = _RANGE[out.itemsize]
    return low <= int(values.min()) and int(values.max()) <= high


def hop_levels(buf, start, hops, hop, prev, abs_out, diff_out, peak_out):
    known = _ahead.hops.get(_key(buf, start, hops * hop)) if _ahead.hops else None
    if known is not None and known[0] == prev and known[1] == hop and len(known[2]) == hops \
            and all(type(o) is array and o.typecode == "i" and len(o) >= hops for o in (abs_out, diff_out, peak_out)):
        abs_out[:hops], diff_out[:hops], peak_out[:hops] = known[2], known[3], known[4]
        return known[5]
    x = _view(buf)
    outs = [_view(o, True) for o in (abs_out, diff_out, peak_out)]
    n = hops * hop
    if (x is None or any(o is None for o in outs) or not isinstance(prev, int) or hops <= 0 or hop <= 0 or start < 0
            or start + n > len(x) or any(len(o) < hops for o in outs)):
        return dsp_py.hop_levels(buf, start, hops, hop, prev, abs_out, diff_out, peak_out)
    if not -2 ** 40 < prev < 2 ** 40:
        return dsp_py.hop_levels(buf, start, hops, hop, prev, abs_out, diff_out, peak_out)
    seg = x[start:start + n].astype(np.int64)
    mag = np.abs(seg).reshape(hops, hop)
    diff = np.abs(np.diff(seg, prepend=np.int64(prev))).reshape(hops, hop)
    results = (mag.sum(axis=1), diff.sum(axis=1), mag.max(axis=1))
    if not all(_fits(r, o) for r, o in zip(results, outs)):
        return dsp_py.hop_levels(buf, start, hops, hop, prev, abs_out, diff_out, peak_out)
    for r, o in zip(results, outs):
        o[:hops] = r
    return int(seg[-1])


def decimate(buf, start, count, factor, out, pos):
    known = _ahead.means.get(_key(buf, start, count * factor)) if _ahead.means else None
    if known is not None and known[0] == factor and type(out) is array and out.typecode == "h" \
            and 0 <= pos and pos + count <= len(out):
        out[pos:pos + count] = known[1]
        return
    x = _view(buf)
    o = _view(out, True)
    if (x is None or o is None or count <= 0 or factor <= 0 or start < 0 or pos < 0
            or start + count * factor > len(x) or pos + count > len(o)):
        return dsp_py.decimate(buf, start, count, factor, out, pos)
    means = x[start:start + count * factor].astype(np.int64).reshape(count, factor).sum(axis=1) // factor
    if not _fits(means, o):
        return dsp_py.decimate(buf, start, count, factor, out, pos)
    o[pos:pos + count] = means


def apply_window(buf, n, win, shift):
    x = _view(buf, True)
    w = _view(win)
    if x is None or w is None or n <= 0 or n > len(x) or n > len(w) or not 0 <= shift <= 62:
        return dsp_py.apply_window(buf, n, win, shift)
    product = x[:n].astype(np.int64) * w[:n]
    if int(np.abs(product).max()) >= 2 ** 62:
        return dsp_py.apply_window(buf, n, win, shift)
    scaled = product >> shift
    if not _fits(scaled, x):
        return dsp_py.apply_window(buf, n, win, shift)
    x[:n] = scaled


# ---------------------------------------------------------------- the Goertzel bank

def _bank(coef, bins: int):
    """(hi, lo) int64 rows of the bank, or None when a coefficient lets the states grow faster
    than the resonator of |2 cos w| <= 2 (the bound the fast path relies on)."""
    c = _view(coef)
    if c is None or bins <= 0 or 2 * bins > len(c):
        return None
    hi = c[0:2 * bins:2].astype(np.int64)
    lo = c[1:2 * bins:2].astype(np.int64)
    if (np.abs(hi) > 256).any() or (lo < 0).any() or (lo >= 128).any() or (np.abs(hi * 128 + lo) > 32768).any():
        return None
    return hi, lo


def goertzel_states(windows: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """dsp_py.goertzel over each row of `windows` (W x n ints) for every bin: (s1, s2), W x bins
    int64, or None when the rows are too long or loud for int64 to hold every state.

    With q = hi*128 + lo and |q| <= 32768 the floored step is s0 = x - e + (q/16384) s1 - s2,
    0 <= e < 2, so |s_k| <= (max|x| + 2) (k+1)(k+2)/2 (Chebyshev polynomials of the 2nd kind
    are bounded by their index + 1 on [-1, 1])."""
    rows, n = windows.shape
    loudest = int(np.abs(windows).max()) if windows.size else 0
    if (loudest + 2) * (n + 2) ** 2 >= _SAFE:
        return None
    shape = (rows, len(hi))
    s1 = np.zeros(shape, np.int64)
    s2 = np.zeros(shape, np.int64)
    s0 = np.empty(shape, np.int64)
    t = np.empty(shape, np.int64)
    columns = np.ascontiguousarray(windows.T.astype(np.int64))[:, :, None]
    for i in range(n):
        np.multiply(hi, s1, out=s0)
        np.right_shift(s0, 7, out=s0)
        np.multiply(lo, s1, out=t)
        np.right_shift(t, 14, out=t)
        s0 += t
        s0 += columns[i]
        s0 -= s2
        s2, s1, s0 = s1, s0, s2
    return s1, s2


class _Prefetched:
    """Results computed ahead, each by the exact samples it was computed from: the bank's
    states of each window, hop levels and box means of each block."""

    def __init__(self) -> None:
        self.coef = b""
        self.n = 0
        self.states: dict[bytes, np.ndarray] = {}
        self.hops: dict[bytes, tuple] = {}      # (prev, hop, abs, diff, peak, last sample)
        self.means: dict[bytes, tuple] = {}     # (factor, means as array('h'))

    def clear(self) -> None:
        self.states, self.hops, self.means = {}, {}, {}


def _key(buf, start: int, n: int) -> bytes | None:
    """The samples buf[start:start+n] as bytes (array('h') or a memoryview of one), or None."""
    if type(buf) is array and buf.typecode == "h" or type(buf) is memoryview and buf.format == "h":
        if 0 <= start and start + n <= len(buf):
            return memoryview(buf)[start:start + n].tobytes()
    return None


_ahead = _Prefetched()


def goertzel(window, n, coef, bins, out):
    x = _view(window)
    o = _view(out, True)
    if x is None or o is None or n <= 0 or n > len(x) or 2 * bins > len(o):
        return dsp_py.goertzel(window, n, coef, bins, out)
    key = x[:n].astype(np.int16).tobytes() if x.itemsize != 2 else x[:n].tobytes()
    pair = _ahead.states.get(key) if _ahead.n == n and _ahead.coef == _coef_key(coef, bins) else None
    if pair is None:
        bank = _bank(coef, bins)
        states = goertzel_states(x[:n].reshape(1, n), *bank) if bank is not None else None
        if states is None:
            return dsp_py.goertzel(window, n, coef, bins, out)
        pair = np.empty(2 * bins, np.int64)
        pair[0::2], pair[1::2] = states[0][0], states[1][0]
    if not _fits(pair, o):
        return dsp_py.goertzel(window, n, coef, bins, out)
    o[:2 * bins] = pair


def _coef_key(coef, bins: int) -> bytes:
    c = _view(coef)
    return b"" if c is None else c[:2 * bins].tobytes() + bins.to_bytes(4, "little")


def prefetch(chain, samples: np.ndarray, first_index: int, block: int) -> None:
    """Compute ahead what lwnode.detector.DetectorChain `chain` will ask of the DSP loops while it
    is fed `samples` (int16, from absolute sample `first_index`) in blocks of `block` samples
    with no gap: hop levels and box means of each block, and the bank's states of each window
    (prefetch_drone). Only a guess: each loop checks the exact samples (and the scalar inputs)
    of what it is asked, so a wrong guess costs time, never a wrong figure."""
    _ahead.clear()
    usable = len(samples) // block * block
    if usable == 0:
        return
    _prefetch_hops(chain.impulse, samples[:usable], first_index, block)
    _prefetch_means(chain.drone, samples[:usable], first_index, block)
    prefetch_drone(chain.drone, samples[:usable], first_index)


def _prefetch_hops(impulse, samples: np.ndarray, first_index: int, block: int) -> None:
    hop = impulse.hop
    if block % hop or block // hop > len(impulse._abs):
        return
    seg = samples.astype(np.int64)
    prev = impulse._prev_sample
    if not isinstance(prev, int) or not -2 ** 40 < prev < 2 ** 40:
        return
    mag = np.abs(seg).reshape(-1, hop)
    diff = np.abs(np.diff(seg, prepend=np.int64(prev))).reshape(-1, hop)
    sums, dsums, peaks = (mag.sum(axis=1).astype(np.int32), diff.sum(axis=1).astype(np.int32),
                          mag.max(axis=1).astype(np.int32))
    per = block // hop
    raw = samples.astype(np.int16)
    for b in range(len(samples) // block):
        rows = slice(b * per, (b + 1) * per)
        before = prev if b == 0 else int(seg[b * block - 1])
        _ahead.hops[raw[b * block:(b + 1) * block].tobytes()] = (
            before, hop, array("i", sums[rows].tobytes()), array("i", dsums[rows].tobytes()),
            array("i", peaks[rows].tobytes()), int(seg[(b + 1) * block - 1]))


def _prefetch_means(drone, samples: np.ndarray, first_index: int, block: int) -> None:
    """The box means of each piece the drone detector cuts a block into (drone.feed)."""
    f, wlen = drone.factor, drone.window_len
    if block % f:
        return
    raw = samples.astype(np.int16)
    means = samples.astype(np.int64).reshape(-1, f).sum(axis=1) // f
    means16 = means.astype(np.int16)
    pos = drone._pos if first_index == drone._next_index else 0
    for b in range(len(samples) // block):
        src, left = 0, block // f
        while left:
            take = min(left, wlen - pos)
            first = b * block + src
            _ahead.means[raw[first:first + take * f].tobytes()] = (
                f, array("h", means16[first // f:first // f + take].tobytes()))
            pos = (pos + take) % wlen
            src += take * f
            left -= take


def prefetch_drone(drone, samples: np.ndarray, first_index: int) -> None:
    """Compute ahead the bank states of every window lwnode.drone.DroneDetector `drone` will
    evaluate while it is fed `samples` (int16, from absolute sample `first_index`, in
    blocks with no gap). Only a guess of what it will ask: goertzel() checks each window's
    samples, so a wrong guess costs time, never a wrong figure."""
    from lwnode.drone import _WINDOW_SHIFT
    f, wlen = drone.factor, drone.window_len
    pos = drone._pos if first_index == drone._next_index else 0
    usable = len(samples) // f * f
    decimated = samples[:usable].astype(np.int64).reshape(-1, f).sum(axis=1) // f
    stream = np.concatenate([np.frombuffer(drone._window, np.int16)[:pos].astype(np.int64), decimated])
    rows = len(stream) // wlen
    bins = len(drone._ks)
    bank = _bank(drone._coef, bins)
    if rows == 0 or bank is None:
        return
    hann = np.frombuffer(drone._hann, np.int16).astype(np.int64)[:wlen]
    windows = (stream[:rows * wlen].reshape(rows, wlen) * hann) >> _WINDOW_SHIFT
    states = goertzel_states(windows, *bank)
    if states is None:
        return
    _ahead.coef, _ahead.n = _coef_key(drone._coef, bins), wlen
    pairs = np.empty((rows, 2 * bins), np.int64)
    pairs[:, 0::2], pairs[:, 1::2] = states
    windows16 = windows.astype(np.int16)
    _ahead.states = {windows16[r].tobytes(): pairs[r] for r in range(rows)}


_LOOPS = {"hop_levels": hop_levels, "decimate": decimate, "apply_window": apply_window, "goertzel": goertzel}


@contextlib.contextmanager
def numpy_loops():
    """lwnode.dsp's loops are these twins inside the block (in this process), its own after."""
    before = {name: getattr(dsp, name) for name in _LOOPS}
    try:
        for name, loop in _LOOPS.items():
            setattr(dsp, name, loop)
        yield
    finally:
        for name, loop in before.items():
            setattr(dsp, name, loop)
        _ahead.clear()
