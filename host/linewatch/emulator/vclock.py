"""One event loop for an emulated run, in real time or in virtual time, with real sockets.

Virtual time is the loop's own clock (`loop.time()`), so everything that sleeps through
asyncio — the firmware's `asyncio.sleep`, `wait_for` timeouts, MQTT keepalives — jumps with
it, unchanged. The selector decides when time may jump:

1. If any socket is ready, handle it (time stands still).
2. If the broker owes a virtual node an answer (`loop.owed`, counted by answers.py: a
   CONNACK, PUBACK, SUBACK or PINGRESP, or a TCP connect in progress), wait for it in real
   time, however long a loaded machine takes (up to ANSWER_WAIT_S, then the debts are
   forgiven with a warning): a publish and its PUBACK complete at the same virtual instant.
3. If sockets were busy since the last quiet moment (a read happened, or a virtual node wrote
   and called `note_io()`), wait up to `grace_s` of *real* time for anything more (an ack
   from the commission, which owes nothing: it acks on its own clock).
4. Otherwise jump the clock to the next timer at once (no real waiting at all).

Limits: what nobody owes (the commission's acks and incidents) arrives at whatever virtual
time the loop has reached by then. Programs outside the loop (the broker, an aggregator
process) keep real time: they see virtual nodes as very fast ones, or, on a loaded machine,
as slow ones. While `loop.pace()` holds, the clock goes at the wall clock's pace instead of
jumping (a run's drain, while a node waits for the commission's ack). Real time uses the
standard loop; both are driven through `RunClock`.
"""
from __future__ import annotations

import asyncio
import logging
import selectors
import time
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")
DEFAULT_GRACE_S = 0.003
ANSWER_WAIT_S = 10.0        # real seconds a loop waits for an answer owed before forgiving it
PACE_POLL_S = 0.05          # while paced, how often (real seconds) the pace is asked again

log = logging.getLogger("linewatch.emulator.vclock")


class _VirtualSelector:
    """Wraps the loop's selector: real I/O first, then a jump of virtual time."""

    def __init__(self, selector: selectors.BaseSelector, loop: "VirtualTimeLoop") -> None:
        self._selector = selector
        self._loop = loop

    def select(self, timeout: float | None = None) -> list:
        events = self._selector.select(0)
        if events:
            self._loop.busy = True
            return events
        if timeout is not None and timeout <= 0:
            return []
        loop = self._loop
        if loop.owed > 0:                        # the broker is working on an answer
            started = time.monotonic()
            events = self._selector.select(ANSWER_WAIT_S)
            loop.waited_s += time.monotonic() - started
            if events:
                loop.busy = True
                return events
            log.warning("no answer owed to a virtual node came within %.0f s of real time "
                        "(%d owed): virtual time goes on", ANSWER_WAIT_S, loop.owed)
            for debts in list(loop.debts):
                debts.forgive()
            loop.owed = 0
        if loop.pace is not None and loop.pace():     # the wall clock's pace, not a jump
            wait = PACE_POLL_S if timeout is None else min(timeout, PACE_POLL_S)
            started = time.monotonic()
            events = self._selector.select(wait)
            elapsed = time.monotonic() - started
            loop.waited_s += elapsed
            loop.advance(elapsed if timeout is None else min(elapsed, timeout))
            if events:
                loop.busy = True
            return events
        if loop.busy:
            wait = loop.grace_s if timeout is None else min(timeout, loop.grace_s)
            started = time.monotonic()
            events = self._selector.select(wait)
            loop.waited_s += time.monotonic() - started
            if events:
                return events
            loop.busy = False
            if timeout is not None and timeout <= wait:
                loop.advance(timeout)
                return []
        if timeout is None:                      # no timer at all: only a socket can wake us
            return self._selector.select(None)
        loop.advance(timeout)
        return []

    def __getattr__(self, name: str) -> Any:     # register, unregister, modify, get_key ...
        return getattr(self._selector, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock jumps to the next timer when nothing else happens."""

    def __init__(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        super().__init__()
        self._selector = _VirtualSelector(self._selector, self)   # type: ignore[has-type]
        self._virtual_s = 0.0
        self.grace_s = grace_s
        self.busy = True
        self.jumps = 0
        self.waited_s = 0.0          # real time spent waiting for answers (a cost figure)
        self.pace: Callable[[], bool] | None = None   # while it says True: the wall clock's pace
        self.owed = 0                # answers the broker owes the virtual nodes (answers.py)
        self.debts: set = set()      # answers.Debts of the open connections

    def time(self) -> float:
        return self._virtual_s

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._virtual_s += seconds
            self.jumps += 1

    def note_io(self) -> None:
        """A virtual node wrote to a socket: give the answer a chance before the next jump."""
        self.busy = True


def note_io(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Tell a virtual-time loop (if it is one) that a socket was written to."""
    loop = loop or asyncio.get_running_loop()
    if isinstance(loop, VirtualTimeLoop):
        loop.busy = True


class RunClock:
    """True world time of a run (UTC microseconds), read from the running loop's clock."""

    def __init__(self, start_utc_us: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.start_utc_us = int(start_utc_us)
        self.loop = loop or asyncio.get_running_loop()
        self._t0 = self.loop.time()

    @property
    def virtual(self) -> bool:
        return isinstance(self.loop, VirtualTimeLoop)

    def now_us(self) -> int:
        return self.start_utc_us + int(round((self.loop.time() - self._t0) * 1e6))

    def elapsed_s(self) -> float:
        return self.loop.time() - self._t0

    async def sleep_until(self, t_us: int) -> None:
        delay = (t_us - self.now_us()) / 1e6
        await asyncio.sleep(max(0.0, delay))


def run(main: Callable[[], Awaitable[T]], virtual: bool = False,
        grace_s: float = DEFAULT_GRACE_S) -> T:
    """Run `main()` to completion in a fresh loop of the chosen kind; the loop is closed after."""
    factory = (lambda: VirtualTimeLoop(grace_s)) if virtual else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())
