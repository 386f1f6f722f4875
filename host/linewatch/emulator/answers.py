"""What the broker owes a virtual node: the MQTT answers to what the node sent on one
connection, counted as packets cross the node's socket.

A virtual-time loop (vclock.VirtualTimeLoop) must not jump its clock while the broker is
still working on an answer: the answer would arrive at a later virtual time than in the
field, by however long the broker took in real time, and on a loaded machine past the node's
own timeouts (its MQTT client drops a link whose PUBACK is 10 s late). So each CONNECT,
SUBSCRIBE, UNSUBSCRIBE, PINGREQ and QoS 1 PUBLISH the node writes to the socket is a debt, and
each CONNACK, SUBACK, UNSUBACK, PINGRESP and PUBACK read from it settles one; a TCP connect in
progress is one too. The loop waits (in real time) while any is owed, so the broker's time
counts as none, as a broker next to the nodes would. A connection that ends owes nothing more.

The radio's delays (radio.py) are virtual time on either side of the socket: a write is
counted when it reaches the socket, an answer when it leaves it.
"""
from __future__ import annotations

import asyncio

# MQTT control packet types (MQTT 3.1.1, 2.2.1)
CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP = 8, 9, 10, 11, 12, 13
ASKS = (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ)
ANSWERS = (CONNACK, PUBACK, SUBACK, UNSUBACK, PINGRESP)


class Packets:
    """Splits one direction's byte stream into MQTT packets: (type, flags) of each packet
    whose fixed header has arrived (the rest of its body is skipped as it comes)."""

    def __init__(self) -> None:
        self._head = b""          # an incomplete fixed header
        self._skip = 0            # body bytes of the last packet still to come

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        view = memoryview(data)
        if self._skip:
            n = min(self._skip, len(view))
            self._skip -= n
            view = view[n:]
        while len(view):
            if self._head:
                view = memoryview(self._head + bytes(view))
                self._head = b""
            # the fixed header: type and flags, then the remaining length (1-4 bytes)
            length, shift, i = 0, 0, 1
            while True:
                if i >= len(view) or i > 4:
                    if i > 4:             # not MQTT: count nothing more on this stream
                        self._skip = 1 << 62
                        return out
                    self._head = bytes(view)
                    return out
                byte = view[i]
                length |= (byte & 0x7F) << shift
                shift += 7
                i += 1
                if not byte & 0x80:
                    break
            out.append((view[0] >> 4, view[0] & 0x0F))
            if i + length > len(view):
                self._skip = i + length - len(view)
                return out
            view = view[i + length:]
        return out


class Debts:
    """The answers one connection is owed, kept on the loop's total (`loop.owed`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.owed = 0
        self.closed = False
        self._sent = Packets()
        self._got = Packets()
        if hasattr(self.loop, "debts"):
            self.loop.debts.add(self)

    def _add(self, n: int) -> None:
        n = max(n, -self.owed)
        self.owed += n
        if hasattr(self.loop, "owed"):
            self.loop.owed += n

    def sent(self, data: bytes) -> None:
        if self.closed:
            # The broker ended the connection (its EOF came): the socket is only half closed,
            # so the node may still write before it notices, but no answer can come. Counted,
            # such a write held virtual time for ANSWER_WAIT_S of real time.
            return
        self._add(sum(1 for kind, flags in self._sent.feed(data)
                      if kind in ASKS or (kind == PUBLISH and flags & 0x06)))

    def received(self, data: bytes) -> None:
        self._add(-sum(1 for kind, _ in self._got.feed(data) if kind in ANSWERS))

    def connecting(self) -> None:
        self._add(1)

    def connected(self) -> None:
        self._add(-1)

    def forgive(self) -> None:
        """Owe nothing more (the connection ended, or the loop gave up waiting)."""
        self._add(-self.owed)

    def close(self) -> None:
        self.closed = True
        self.forgive()
        if hasattr(self.loop, "debts"):
            self.loop.debts.discard(self)


class CountingReader(asyncio.StreamReader):
    """A node's StreamReader on a socket without a radio: settles debts as answers arrive."""

    def __init__(self, debts: Debts, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self.debts = debts

    def feed_data(self, data) -> None:
        self.debts.received(data)
        super().feed_data(data)

    def feed_eof(self) -> None:
        self.debts.close()
        super().feed_eof()

    def set_exception(self, exc) -> None:
        self.debts.close()
        super().set_exception(exc)


async def open_counted(host: str, port: int) -> tuple[CountingReader, asyncio.StreamWriter, Debts]:
    """asyncio.open_connection, with the connection's debts counted (its connect is one)."""
    loop = asyncio.get_running_loop()
    debts = Debts(loop)
    reader = CountingReader(debts, loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    debts.connecting()
    try:
        transport, _ = await loop.create_connection(lambda: protocol, host, port)
    except BaseException:
        debts.close()
        raise
    debts.connected()
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop), debts
