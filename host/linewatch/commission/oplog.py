"""The service's log for operators (what `journalctl -u linewatch-aggregator` shows): one INFO
line per state change (a node's birth and death, its health changes, an incident formed,
settled or withdrawn), told in the operator's words (wording.py).

Rate-limited per cause: at most `burst` lines of one cause per `interval_s`; past that, the
lines are counted and one line says how many were left out (and where to look instead) when
the interval ends. A barrage of 500 incidents cannot bury a node going offline.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from lwproto import const

from linewatch.commission import wording

WHERE_TO_LOOK = {"birth": "linewatch nodes status", "death": "linewatch nodes status",
                 "health": "linewatch nodes status", "incident": "linewatch incidents list"}


class OperatorLog:
    def __init__(self, logger: logging.Logger, sides: tuple[str, str] = wording.DEFAULT_SIDES,
                 burst: int = 20, interval_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = logger
        self.sides = sides
        self.burst = burst
        self.interval_s = interval_s
        self.clock = clock
        self._window: dict[str, tuple[float, int, int]] = {}   # cause -> (start, said, left out)

    # -- what happened --

    def frame(self, f) -> None:
        """A node's birth or death frame (anything else is not a state change)."""
        if f.ftype == const.BIRTH:
            v = f.fields()
            board = const.BOARD_NAMES[v["board"]] if v["board"] < len(const.BOARD_NAMES) else v["board"]
            self._say("birth", "node 0x%04x born: boot %d, firmware %d.%d.%d on %s"
                      % (f.node, f.boot, v["fw_major"], v["fw_minor"], v["fw_patch"], board))
        elif f.ftype == const.DEATH:
            self._say("death", "node 0x%04x died (boot %d): its last will" % (f.node, f.boot))

    def health(self, change) -> None:
        self._say("health", "node 0x%04x: %s -> %s (%s)" % (change.node, change.old, change.new, change.why))

    def incident(self, incident: dict[str, Any], first: bool) -> None:
        """A version of an incident as fusion published it; `first`: the commission had not
        heard of it before."""
        if wording.withdrawn(incident):
            self._say("incident", "incident %s withdrawn: its reports joined other incidents" % incident.get("id"))
        elif incident.get("provisional") is False:
            self._say("incident", "incident settled: %s" % wording.describe(incident, self.sides))
        elif first:
            self._say("incident", "incident formed: %s" % wording.describe(incident, self.sides))

    # -- the limit --

    def _say(self, cause: str, text: str) -> None:
        now = self.clock()
        start, said, left_out = self._roll(cause, now)
        if said < self.burst:
            self.log.info("%s", text)
            said += 1
        else:
            left_out += 1
        self._window[cause] = (start, said, left_out)

    def _roll(self, cause: str, now: float) -> tuple[float, int, int]:
        start, said, left_out = self._window.get(cause, (now, 0, 0))
        if now - start < self.interval_s:
            return start, said, left_out
        self._left_out(cause, left_out)
        return now, 0, 0

    def flush(self) -> None:
        """Say what was left out in every interval that has ended (called from a timer)."""
        now = self.clock()
        for cause in list(self._window):
            start, said, left_out = self._window[cause]
            if now - start >= self.interval_s:
                self._left_out(cause, left_out)
                del self._window[cause]

    def _left_out(self, cause: str, count: int) -> None:
        if count:
            self.log.info("%s more %s lines left out in the last %.0f s (rate limit; see `%s`)",
                          count, cause, self.interval_s, WHERE_TO_LOOK[cause])
