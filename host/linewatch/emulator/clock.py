"""Run-loop time: real time for the demo and live tests, virtual time for scoring long runs.

Both offer `now_us()` (UTC microseconds of the run) and `async sleep_until(t_us)`, so one
run loop serves both.

Virtual time jumps to the earliest sleeper once every runnable task has had its turn
(`settle` passes of the event loop). It does not wait for sockets: a loop that must let the
broker catch up registers a barrier (`add_barrier(async_fn)`), awaited before every jump.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Awaitable, Callable, Protocol


class Clock(Protocol):
    def now_us(self) -> int: ...

    async def sleep_until(self, t_us: int) -> None: ...


class RealClock:
    """Wall-clock time from start_us (default: now), optionally sped up."""

    def __init__(self, start_us: int | None = None, speed: float = 1.0):
        if speed <= 0:
            raise ValueError("speed must be > 0, got %r" % speed)
        self.start_us = time.time_ns() // 1000 if start_us is None else int(start_us)
        self.speed = speed
        self._t0_ns = time.monotonic_ns()

    def now_us(self) -> int:
        return self.start_us + int((time.monotonic_ns() - self._t0_ns) * self.speed / 1000)

    async def sleep_until(self, t_us: int) -> None:
        delay_s = (t_us - self.now_us()) / 1e6 / self.speed
        await asyncio.sleep(max(0.0, delay_s))

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now_us() + int(seconds * 1e6))


class VirtualClock:
    """Time that only moves when every task is waiting for it: as fast as possible."""

    def __init__(self, start_us: int, settle: int = 3):
        self._now = int(start_us)
        self.settle = settle
        self._sleepers: list[tuple[int, int, asyncio.Future]] = []
        self._order = itertools.count()
        self._barriers: list[Callable[[], Awaitable[None]]] = []
        self._advancer: asyncio.Task | None = None

    def now_us(self) -> int:
        return self._now

    def add_barrier(self, barrier: Callable[[], Awaitable[None]]) -> None:
        self._barriers.append(barrier)

    async def sleep_until(self, t_us: int) -> None:
        if t_us <= self._now:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (int(t_us), next(self._order), future))
        if self._advancer is None or self._advancer.done():
            self._advancer = asyncio.get_running_loop().create_task(self._advance())
        await future

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + int(seconds * 1e6))

    async def _advance(self) -> None:
        while self._sleepers:
            for _ in range(self.settle):
                await asyncio.sleep(0)
            for barrier in self._barriers:
                await barrier()
            if not self._sleepers:
                break
            when = self._sleepers[0][0]
            self._now = max(self._now, when)
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    future.set_result(None)
