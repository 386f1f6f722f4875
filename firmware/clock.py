# Time as evidence: UTC microseconds from the board, with an honest error estimate.
#
# The board knows its clock source and the error at the moment it last synchronised (NTP
# round trip, GPS PPS edge). Between syncs the oscillator drifts, so the error a frame carries
# grows with the time since that sync; the commission weighs each arrival time by it.
from lwproto.const import CLOCK_ERROR_MAX_US, CLOCK_NONE

# module constants as _NAME = const(n): inlined, so no global and no interned name in RAM
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

try:
    from time import ticks_diff
except ImportError:  # CPython: board ticks there never wrap
    def ticks_diff(a, b):
        return a - b

_DEFAULT_DRIFT_PPM = const(50)   # a plain crystal over a field's temperature swing; boards may say better
_CREEP_PPM = const(1000)         # SampleTimeline: how fast its base may rise (clock drift, PPS)
_STEP_US = const(2000)           # ... a stamp this much later than the base ...
_STEP_BLOCKS = const(8)          # ... this many blocks in a row is a step of the clock
_GAP_US = const(150000)          # ... stamps this much further apart than their samples: a gap


class Clock:
    def __init__(self, board, drift_ppm=_DEFAULT_DRIFT_PPM):
        self.board = board
        self.drift_ppm = drift_ppm
        self._seen = None          # (source, error_us) last reported by the board
        self._synced_us = board.time_us()

    def now_us(self):
        return self.board.time_us()

    def quality(self):
        """(clock_source, error_us) for a frame stamped now."""
        source, error_us = self.board.clock()
        now = self.board.time_us()
        # A board that can say when it last synced (UTC us) says so; otherwise a change in
        # what it reports is taken as a fresh sync.
        ask = getattr(self.board, "clock_synced_us", None)
        synced_at = ask() if ask is not None else None
        if synced_at is None:
            if self._seen != (source, error_us):
                self._seen = (source, error_us)
                self._synced_us = now
            synced_at = self._synced_us
        if source == CLOCK_NONE:
            return source, CLOCK_ERROR_MAX_US
        # UTC, not ticks: board ticks wrap after minutes, and UTC only jumps at a sync
        drift = (now - synced_at) * self.drift_ppm // 1000000
        return source, min(CLOCK_ERROR_MAX_US, int(error_us) + max(0, drift))


class SampleTimeline:
    """Maps absolute sample indices to UTC. Each block is stamped when the sampling task has
    read it: never before its last sample was heard, often a fraction of a millisecond after,
    and up to the I2S driver's buffer (~100 ms) after when another task held the loop (a
    flash write, a collection, a blocking call). The sample clock itself is steady, so the
    timeline follows the earliest stamps: `base_us` (UTC of sample 0) is the lowest
    stamp - index / rate seen, allowed to rise by 1000 ppm of the time elapsed (the board
    clock drifting against the sample clock, a new PPS anchor), reset to a block's stamp when
    stamps jump further apart than their samples (the stream was cut: a paused feed, samples
    the driver dropped), and moved to the stamp of the 8th block in a row that is more than
    2 ms later than it (the clock stepped: an NTP sync), from where it follows the earliest
    again. Boards state what is left (~1 ms) in their clock error (hal/mcu.py)."""

    def __init__(self, rate_hz):
        self.rate_hz = rate_hz
        self.end_index = 0     # index one past the last sample of the newest stamped block
        self.end_us = 0        # its stamp
        self.base_us = None    # UTC of sample 0
        self._late = 0         # blocks in a row later than the base by more than _STEP_US

    def mark(self, end_index, end_us):
        rate = self.rate_hz
        implied = end_us - end_index * 1000000 // rate
        base = self.base_us
        if base is None or end_us - self.end_us > (end_index - self.end_index) * 1000000 // rate + _GAP_US:
            base = implied
            self._late = 0
        else:
            base += (end_index - self.end_index) * _CREEP_PPM // rate
            if implied <= base:
                base = implied
                self._late = 0
            elif implied > base + _STEP_US:
                self._late += 1
                if self._late >= _STEP_BLOCKS:
                    base = implied
                    self._late = 0
            else:
                self._late = 0
        self.base_us = base
        self.end_index = end_index
        self.end_us = end_us

    def utc_of(self, index):
        return self.base_us + index * 1000000 // self.rate_hz
