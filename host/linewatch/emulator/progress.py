"""Progress of a long virtual-time run on stderr: a one-line bar redrawn in place on a
terminal; elsewhere (a log, CI, `| tee`) plain lines, one per LINE_STEP of the run but never
more often than LINE_MIN_S apart, and at least every LINE_MAX_S, so a run nobody watches on a
terminal still says how far it is and how long it has left."""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

LINE_STEP = 0.10          # a line per 10 % ...
LINE_MIN_S = 5.0          # ... at most every 5 s ...
LINE_MAX_S = 30.0         # ... and at least every 30 s


def hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


class Progress:
    """`enabled`: None draws a bar on a terminal and lines elsewhere; False says nothing;
    True forces the bar. `lines=True` forces lines."""

    def __init__(self, total: float, label: str = "", stream: TextIO | None = None,
                 enabled: bool | None = None, width: int = 30, min_interval_s: float = 0.2,
                 describe: Callable[[float], str] | None = None, lines: bool | None = None):
        self.total = max(total, 1e-12)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        tty = _is_tty(self.stream)
        self.enabled = enabled is not False
        self.lines = (not tty and enabled is None) if lines is None else lines
        self.width = width
        self.min_interval_s = min_interval_s
        self.describe = describe
        self._started = time.monotonic()
        self._last_draw = -1e9
        self._next_step = LINE_STEP
        self._shown = -1.0                 # the fraction the last plain line said
        self._last_line = self._started
        self._drawn = False

    def update(self, done: float, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.lines:
            return self._line(done, now, force)
        if not force and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        self.stream.write("\r" + self.line(done, now - self._started))
        self.stream.flush()
        self._drawn = True

    def _line(self, done: float, now: float, force: bool) -> None:
        fraction = done / self.total
        since = now - self._last_line
        due = (fraction >= self._next_step and since >= LINE_MIN_S) or since >= LINE_MAX_S
        if not (force or due):
            return
        while self._next_step <= fraction:
            self._next_step += LINE_STEP
        self._last_line = now
        self._shown = fraction
        self.stream.write(self.text(done, now - self._started) + "\n")
        self.stream.flush()
        self._drawn = True

    def line(self, done: float, elapsed_s: float) -> str:
        fraction = min(1.0, max(0.0, done / self.total))
        filled = int(round(fraction * self.width))
        eta = elapsed_s * (1 - fraction) / fraction if fraction > 0 else 0.0
        what = " " + self.describe(done) if self.describe else ""
        return "%s [%s%s] %3d%%%s elapsed %s eta %s" % (
            self.label, "#" * filled, "." * (self.width - filled), int(fraction * 100), what,
            hms(elapsed_s), hms(eta))

    def text(self, done: float, elapsed_s: float) -> str:
        """The plain line: 'emulate demo: 40% (0:24:00/1:00:00), 0:00:41 so far, about 0:01:02 left'."""
        fraction = min(1.0, max(0.0, done / self.total))
        left = elapsed_s * (1 - fraction) / fraction if fraction > 0 else None
        what = " (%s)" % self.describe(done) if self.describe else ""
        return "%s: %d%%%s, %s so far%s" % (self.label, int(fraction * 100), what, hms(elapsed_s),
                                          ", about %s left" % hms(left) if left is not None else "")

    def close(self) -> None:
        if self.enabled and self._drawn:
            if self.lines:
                if self._shown < 1.0:
                    self.update(self.total, force=True)
                return
            self.update(self.total, force=True)
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
