"""A one-line progress bar on stderr for long virtual-time runs (silent when not a TTY)."""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


def hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


class Progress:
    def __init__(self, total: float, label: str = "", stream: TextIO | None = None,
                 enabled: bool | None = None, width: int = 30, min_interval_s: float = 0.2,
                 describe: Callable[[float], str] | None = None):
        self.total = max(total, 1e-12)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_tty(self.stream) if enabled is None else enabled
        self.width = width
        self.min_interval_s = min_interval_s
        self.describe = describe
        self._started = time.monotonic()
        self._last_draw = -1e9
        self._drawn = False

    def update(self, done: float, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        self.stream.write("\r" + self.line(done, now - self._started))
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

    def close(self) -> None:
        if self.enabled and self._drawn:
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
