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
    """Maps absolute sample indices to UTC: each block read is stamped with the time of its
    last sample, so an onset is dated to the sample rather than to when the detector ran."""

    def __init__(self, rate_hz):
        self.rate_hz = rate_hz
        self.end_index = 0     # index one past the last sample of the newest stamped block
        self.end_us = 0        # UTC of that point

    def mark(self, end_index, end_us):
        self.end_index = end_index
        self.end_us = end_us

    def utc_of(self, index):
        return self.end_us - (self.end_index - index) * 1000000 // self.rate_hz
