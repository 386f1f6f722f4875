# Impulse events: explosion/artillery vs small-arms fire.
#
# Trigger: short-term average of |x| (2 hops, ~2 ms) against a long-term average (~1 s,
# frozen during an event). The onset is refined to the sample: the first sample within the
# last three hops whose |x| exceeds _ONSET_K times the mean noise |x|, walked back down its
# rising edge. The event lasts until the short-term average stays under the off ratio for
# _GAP_MS. Features: peak, duration, rise time, and the spectral balance sum|dx|/sum|x| (noise
# share removed) turned into a frequency: a tone at f has balance 2*sin(pi*f/rate).
# Levels are ints (Q4 fixed point) so nothing allocates per hop on the board.
import math
from array import array

from . import dsp
from .detection import Detection, clamp01

# module constants as _NAME = const(n): inlined, so no global and no interned name in RAM
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_ONSET_K = const(5)            # onset sample: |x| > _ONSET_K * mean noise |x| (~4 sigma of Gaussian noise)
_GAP_MS = const(10)            # an event ends after this long under the off ratio
_HOLDOFF_MS = const(150)       # after an event, its decaying tail (echo, rumble) starts no new one
_MAX_EVENT_MS = const(1500)    # longer is no impulse: end it, re-learn the noise, report nothing
_WARMUP_MS = const(250)        # learn the noise before the first trigger
_DEV_K = const(14)             # and by _DEV_K mean deviations of the short-term average (see _hop)
_LTA_SHIFT = const(9)          # long-term average over 2**9 hops (~0.5 s at 1 ms hops)
_EXPLOSION_MAX_HZ = const(400)     # balance frequency at or under this, and long enough: explosion
_EXPLOSION_MIN_MS = const(12)
_SMALL_ARMS_MIN_HZ = const(600)    # at or over this, and short: small arms
_SMALL_ARMS_MAX_MS = const(40)
_SMALL_ARMS_MAX_RISE_MS = const(5)
_DEFAULT_THRESHOLD_DB = const(8.0)

# The event in progress, one slot each in an int64 array: an attribute each would be 13 more
# names interned in the node's RAM for good (firmware/README.md "Memory").
_HOPS = const(0)          # hops so far
_ABS = const(1)           # sum of the hops' |x| levels
_DIFF = const(2)          # sum of their |dx| levels
_KEEP_HOPS = const(3)     # the three above at the last hop over the off ratio
_KEEP_ABS = const(4)
_KEEP_DIFF = const(5)
_QUIET = const(6)         # hops under the off ratio since
_MAX_STA = const(7)       # largest short-term |x| sum
_MAX_STA_D = const(8)     # and |dx| sum
_PEAK = const(9)          # largest |x| sample
_PEAK_AT = const(10)      # its sample index
_END_AT = const(11)       # sample index after the last hop over the off ratio
_ONSET_AT = const(12)     # sample index of the onset
_EVENT_SLOTS = const(13)


def _above(sta2, lta, dev, ratio_q):
    lta2 = 2 * lta
    return lta2 > 0 and sta2 * 256 >= ratio_q * lta2 and (sta2 << 4) >= lta2 + _DEV_K * dev


def _db20(ratio):
    return 20.0 * math.log10(ratio) if ratio > 0 else -120.0


class ImpulseDetector:
    """Feed int16 blocks (length a multiple of `hop`); appends Detection objects to a list."""

    def __init__(self, rate_hz=16000, hop=0, max_block=1024):
        if hop <= 0:
            hop = max(8, rate_hz // 1000)
        if max_block % hop:
            raise ValueError("impulse: max_block %d is not a multiple of hop %d" % (max_block, hop))
        self.rate = rate_hz
        self.hop = hop
        hops = max_block // hop
        self._abs = array("i", bytearray(4 * hops))
        self._diff = array("i", bytearray(4 * hops))
        self._peak = array("i", bytearray(4 * hops))
        self._tail = array("h", bytearray(4 * hop))    # last 2 hops of the previous block
        self._ev = array("q", bytearray(8 * _EVENT_SLOTS))
        self._gap_hops = max(1, _GAP_MS * rate_hz // (1000 * hop))
        self._max_hops = _MAX_EVENT_MS * rate_hz // (1000 * hop)
        self._warmup_hops = _WARMUP_MS * rate_hz // (1000 * hop)
        self._holdoff_hops = _HOLDOFF_MS * rate_hz // (1000 * hop)
        # thresholds (dB of short/long-term ratio) for classes 0 unknown, 1 explosion, 2 small arms
        self.threshold_db = [_DEFAULT_THRESHOLD_DB] * 3
        self._set_ratios()
        self.reset()

    def reset(self):
        self._hops_seen = 0
        self._prev_sample = 0
        self._prev_hop_abs = 0
        self._prev_hop_diff = 0
        # Q9 (Q4 and 5 bits more): in Q4 a 1/512 step of the average fell below one unit at
        # quiet levels (|x| of 2-3 counts: 42 dB SPL), so the averages stuck low and pink
        # noise triggered ~2,700 times an hour (lwtools.bench.false_alarms); Q9 of a hop's
        # sum stays under 2**29, a small int on the boards
        self._lta = 0          # mean |x| sum per hop, Q9
        self._lta_d = 0        # mean |dx| sum per hop, Q9
        self._dev = 0          # mean |sta2 - 2*lta|, Q9
        self._dev_d = 0        # the same for |dx|
        self._next_index = -1
        self._active = False
        self._holdoff = 0

    def set_threshold(self, cls, db):
        self.threshold_db[cls] = float(db)
        self._set_ratios()

    def _set_ratios(self):
        on = min(self.threshold_db)
        self._on_q = max(18, int(16 * 10 ** (on / 20.0)))      # Q4 amplitude ratio
        self._off_q = max(17, min(24, self._on_q * 3 // 4))

    # ------------------------------------------------------------ per block
    def feed(self, block, n, first_index, found):
        hop = self.hop
        if n % hop or n > len(self._abs) * hop:
            raise ValueError("impulse: block of %d samples (need a multiple of %d, at most %d)"
                             % (n, hop, len(self._abs) * hop))
        if first_index != self._next_index:
            # samples were lost: an event in progress or an onset search cannot span the gap
            self._active = False
            self._prev_hop_abs = 0
            self._prev_hop_diff = 0
            tail = self._tail
            for i in range(len(tail)):
                tail[i] = 0
        self._next_index = first_index + n
        hops = n // hop
        self._prev_sample = dsp.hop_levels(block, 0, hops, hop, self._prev_sample,
                                           self._abs, self._diff, self._peak)
        for j in range(hops):
            self._hop(block, j, first_index, found)
        tail = self._tail
        k = n - 2 * hop
        for i in range(2 * hop):
            tail[i] = block[k + i]

    def _hop(self, block, j, first_index, found):
        level = self._abs[j]
        dlevel = self._diff[j]
        sta2 = level + self._prev_hop_abs
        sta2d = dlevel + self._prev_hop_diff
        self._hops_seen += 1
        if self._active:
            self._event_hop(block, j, level, sta2, sta2d, first_index, found)
        elif self._hops_seen <= self._warmup_hops:
            self._learn(level, dlevel, sta2, sta2d, 2)
        elif self._holdoff:
            self._holdoff -= 1
        # Two channels: |x| for low-frequency blasts, |dx| (a high-pass) for cracks that pink or
        # wind noise would bury. The ratio alone suits white noise; low-frequency noise swings
        # a 2 ms average far more, so a trigger also stands _DEV_K mean deviations above the mean.
        elif (_above(sta2, self._lta >> 5, self._dev >> 5, self._on_q)
              or _above(sta2d, self._lta_d >> 5, self._dev_d >> 5, self._on_q)):
            self._start(block, j, level, sta2, sta2d, first_index)
        else:
            self._learn(level, dlevel, sta2, sta2d, _LTA_SHIFT)
        self._prev_hop_abs = level
        self._prev_hop_diff = dlevel

    def _learn(self, level, dlevel, sta2, sta2d, shift):
        d = (sta2 << 9) - 2 * self._lta
        self._dev += ((d if d >= 0 else -d) - self._dev) >> shift
        d = (sta2d << 9) - 2 * self._lta_d
        self._dev_d += ((d if d >= 0 else -d) - self._dev_d) >> shift
        self._lta += ((level << 9) - self._lta) >> shift
        self._lta_d += ((dlevel << 9) - self._lta_d) >> shift

    # ------------------------------------------------------------ an event
    def _start(self, block, j, level, sta2, sta2d, first_index):
        hop = self.hop
        noise = self._lta // (512 * hop)               # mean noise |x| per sample
        onset = self._onset(block, j, noise)
        self._active = True
        ev = self._ev
        for k in range(_EVENT_SLOTS):
            ev[k] = 0
        ev[_ONSET_AT] = first_index + onset
        ev[_PEAK_AT] = first_index + onset
        ev[_END_AT] = first_index + (j + 1) * hop
        # the hop before the trigger hop usually holds the onset: count it in the features
        if onset < j * hop:
            ev[_HOPS] = 1
            ev[_ABS] = self._prev_hop_abs
            ev[_DIFF] = self._prev_hop_diff
        self._event_hop(block, j, level, sta2, sta2d, first_index, None)

    def _onset(self, block, j, noise):
        """Sample (relative to block, negative = in the previous block) where the event begins:
        the first over the level in the last three hops, walked back down its rising edge to
        where it leaves the noise (same sign, still growing)."""
        hop = self.hop
        lo = (j - 2) * hop
        hi = (j + 1) * hop
        tail = self._tail
        t = len(tail)
        for level in (_ONSET_K * noise, (_ONSET_K * noise) >> 1):
            i = dsp.first_above(tail, t + lo, t, level) - t if lo < 0 else -t - 1
            if i < -t:
                i = dsp.first_above(block, max(lo, 0), hi, level)
                if i < 0:
                    continue
            if i <= 0:
                return i
            v = block[i]
            for _ in range(hop):
                if i - 1 < max(lo, 0):
                    break
                u = block[i - 1]
                if (u >= 0) != (v >= 0):
                    break
                au = u if u >= 0 else -u
                av = v if v >= 0 else -v
                if au >= av or au <= noise:
                    break
                i -= 1
                v = u
            return i
        return j * hop

    def _event_hop(self, block, j, level, sta2, sta2d, first_index, found):
        hop = self.hop
        ev = self._ev
        ev[_HOPS] += 1
        ev[_ABS] += level
        ev[_DIFF] += self._diff[j]
        if sta2 > ev[_MAX_STA]:
            ev[_MAX_STA] = sta2
        if sta2d > ev[_MAX_STA_D]:
            ev[_MAX_STA_D] = sta2d
        p = self._peak[j]
        if p > ev[_PEAK]:
            ev[_PEAK] = p
            ev[_PEAK_AT] = first_index + dsp.first_above(block, j * hop, (j + 1) * hop, p - 1)
        off = self._off_q
        if sta2 * 256 >= off * (self._lta >> 4) or sta2d * 256 >= off * (self._lta_d >> 4):
            ev[_QUIET] = 0
            ev[_END_AT] = first_index + (j + 1) * hop
            ev[_KEEP_HOPS] = ev[_HOPS]
            ev[_KEEP_ABS] = ev[_ABS]
            ev[_KEEP_DIFF] = ev[_DIFF]
        else:
            ev[_QUIET] += 1
        if found is None:
            return
        if ev[_HOPS] >= self._max_hops:
            # no impulse lasts this long: the background changed, adopt its level silently
            self._active = False
            self._lta = ((ev[_ABS] << 4) // ev[_HOPS]) << 5
            self._lta_d = ((ev[_DIFF] << 4) // ev[_HOPS]) << 5
        elif ev[_QUIET] >= self._gap_hops:
            self._active = False
            self._holdoff = self._holdoff_hops
            det = self._classify()
            if det.snr_db >= self.threshold_db[det.cls]:
                found.append(det)

    def _classify(self):
        ev = self._ev
        lta = self._lta / 512.0
        n = ev[_KEEP_HOPS]
        sig_abs = ev[_KEEP_ABS] - n * lta
        lta_d = self._lta_d / 512.0
        sig_diff = ev[_KEEP_DIFF] - n * lta_d
        balance = sig_diff / sig_abs if sig_abs > 0 else 2.0
        balance = min(2.0, max(0.0, balance))
        freq = int(self.rate / math.pi * math.asin(balance / 2.0))
        onset = ev[_ONSET_AT]
        duration_ms = (ev[_END_AT] - onset) * 1000 // self.rate
        rise_ms = (ev[_PEAK_AT] - onset) * 1000.0 / self.rate
        snr_db = _db20(max(ev[_MAX_STA] / (2.0 * lta) if lta > 0 else 0.0,
                           ev[_MAX_STA_D] / (2.0 * lta_d) if lta_d > 0 else 0.0))
        peak_db = _db20(ev[_PEAK] / 32768.0)
        strength = clamp01((snr_db - 3.0) / 15.0)
        cls = 0
        fit = 0.0
        if freq <= _EXPLOSION_MAX_HZ and duration_ms >= _EXPLOSION_MIN_MS:
            cls = 1
            fit = min(clamp01(0.5 + math.log(_EXPLOSION_MAX_HZ / max(freq, 1)) / 1.4),
                      clamp01(duration_ms / (2.0 * _EXPLOSION_MIN_MS)))
        elif (freq >= _SMALL_ARMS_MIN_HZ and duration_ms <= _SMALL_ARMS_MAX_MS
              and rise_ms <= _SMALL_ARMS_MAX_RISE_MS):
            cls = 2
            fit = clamp01(0.5 + math.log(freq / _SMALL_ARMS_MIN_HZ) / 1.4)
        confidence = 0.2 * strength + 0.8 * strength * fit if cls else 0.3 * strength
        return Detection(cls, confidence, onset, peak_db, duration_ms, freq, snr_db)
