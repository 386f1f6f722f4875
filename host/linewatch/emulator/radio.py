"""A virtual node's radio link, applied to its real TCP connection to the broker.

The node's Wi-Fi sits under TCP, so what the application sees of the radio is time, not
lost bytes: every write from the node and every read towards it arrives `latency ± jitter`
later, and a lost transmission arrives after TCP's retransmission timeouts (200 ms,
doubling). A write lost more than `max_retransmissions` times in a row breaks the link: the
connection is aborted (the broker publishes the node's will; the node reconnects and resends
from its durable queue). Each direction keeps its order, as TCP does: a write delayed by a
retransmission holds back those behind it.

Time is the run loop's (`loop.call_at`), so latency is real time in a real-time run and
virtual time in a virtual one. Draws come from the world's seed (one stream per node), so the
same seed gives the same delays for the same traffic. A link with no latency, jitter or loss
is not wrapped at all (`Radio.ideal`): the node then talks to the socket directly.
"""
from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from typing import Any, Callable

from linewatch.emulator import vclock
from linewatch.emulator.answers import Debts
from linewatch.emulator.randomness import stream
from linewatch.emulator.world import RadioLink

# Two events closer than this are one instant (the loop's timers are floats).
_SAME_INSTANT_S = 1e-9
# Deliveries fall on a grid of this many seconds of run time, so the writes of many nodes
# share a loop pass and, in virtual time, one wait for the broker's answers (see vclock):
# without it each node's jittered write is an instant of its own, ~10x the cost per frame.
TICK_S = 0.02


class Radio:
    """One node's link model and its random draws; lives as long as the node (across boots)."""

    def __init__(self, link: RadioLink, seed: int, node_id: int) -> None:
        self.link = link
        self._rng = random.Random(int(stream(seed, "radio", node_id).integers(1 << 62)))
        self.retransmissions = 0
        self.breaks = 0

    @property
    def ideal(self) -> bool:
        link = self.link
        return link.latency_ms <= 0 and link.latency_jitter_ms <= 0 and link.loss_probability <= 0

    def delay_s(self) -> float | None:
        """How long one write takes to cross, or None when TCP gives up on it."""
        link = self.link
        rng = self._rng
        delay = link.latency_ms
        if link.latency_jitter_ms > 0:
            delay = max(0.0, rng.gauss(delay, link.latency_jitter_ms))
        if link.loss_probability > 0:
            timeout = link.retransmit_ms
            tries = 0
            while rng.random() < link.loss_probability:
                tries += 1
                if tries > link.max_retransmissions:
                    self.breaks += 1
                    return None
                self.retransmissions += 1
                delay += timeout
                timeout *= 2
        return delay / 1000.0


class DelayLine:
    """One direction of a link: calls run in the order pushed, each at its due time or later."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._last_due = 0.0

    def push(self, delay_s: float, call: Callable[..., Any], *args: Any) -> None:
        due = max(math.ceil((self._loop.time() + delay_s) / TICK_S - 1e-6) * TICK_S, self._last_due)
        self._last_due = due
        self._items.append((due, call, args))
        if self._timer is None:
            self._timer = self._loop.call_at(due, self._release)

    def clear(self) -> None:
        self._items.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _release(self) -> None:
        self._timer = None
        items = self._items
        # the timer was set for the head: it goes now, then whatever is due at the same time
        limit = self._loop.time() + _SAME_INSTANT_S
        while items:
            due, call, args = items.popleft()
            call(*args)
            if items and items[0][0] > limit:
                self._timer = self._loop.call_at(items[0][0], self._release)
                return


class LinkReader(asyncio.StreamReader):
    """The node's StreamReader: bytes from the broker arrive after the radio's delay."""

    def __init__(self, radio: Radio, loop: asyncio.AbstractEventLoop, debts: Debts | None = None) -> None:
        super().__init__(loop=loop)
        self.loop = loop
        self.radio = radio
        self.line = DelayLine(loop)
        self.on_break: Callable[[], None] = lambda: None
        self.debts = debts or Debts(loop)        # answers the broker owes (settled on arrival)

    def feed_data(self, data) -> None:       # bytes from the protocol
        self.debts.received(data)
        delay = self.radio.delay_s()
        if delay is None:
            self.line.push(self.radio.link.give_up_s(), self.on_break)
        else:
            self.line.push(delay, super().feed_data, data)

    def feed_eof(self) -> None:
        # after the bytes before it (a broker closing the connection)
        self.debts.close()
        self.line.push(self.radio.link.latency_ms / 1000.0, super().feed_eof)

    def set_exception(self, exc) -> None:
        self.debts.close()
        super().set_exception(exc)

    def cut(self) -> None:
        """The link is gone: what was in the air is lost, the node sees the end now."""
        self.debts.close()
        self.line.clear()
        super().feed_eof()


class LinkWriter:
    """The node's StreamWriter: each write leaves after the radio's delay, in order; a write
    TCP gives up on breaks the link when its last retransmission would have been due."""

    def __init__(self, writer: asyncio.StreamWriter, reader: LinkReader) -> None:
        self._writer = writer
        self._reader = reader
        self._radio = reader.radio
        self._line = DelayLine(reader.loop)
        reader.on_break = self.break_link

    def write(self, data: bytes) -> None:
        delay = self._radio.delay_s()
        if delay is None:
            self._line.push(self._radio.link.give_up_s(), self.break_link)
        else:
            self._line.push(delay, self._send, data)

    def _send(self, data: bytes) -> None:
        if self._writer.transport.is_closing():
            return                       # cut meanwhile: lost with the link
        vclock.note_io()
        self._reader.debts.sent(data)
        self._writer.write(data)

    def close(self) -> None:
        self._line.push(0.0, self._writer.close)     # after what is still in the air

    def break_link(self) -> None:
        """TCP gave up: abort (no DISCONNECT, so the broker publishes the will)."""
        self.cut()
        self._writer.transport.abort()

    def cut(self) -> None:
        self._line.clear()
        self._reader.cut()

    def __getattr__(self, name: str) -> Any:       # drain, wait_closed, transport ...
        return getattr(self._writer, name)


async def open_link(radio: Radio, host: str, port: int) -> tuple[LinkReader, LinkWriter]:
    """asyncio.open_connection, with the radio between the node and the socket."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(2 * radio.link.latency_ms / 1000.0)     # the handshake's round trip
    debts = Debts(loop)
    reader = LinkReader(radio, loop, debts)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    debts.connecting()                       # the broker's accept takes no virtual time
    try:
        transport, _ = await loop.create_connection(lambda: protocol, host, port)
    except BaseException:
        debts.close()
        raise
    debts.connected()
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, LinkWriter(writer, reader)
