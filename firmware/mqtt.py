"""A small non-blocking asyncio MQTT 3.1.1 client for the node's uplink.

Why our own: umqtt is blocking (the node must keep sampling while it publishes) and the PyPI
copy breaks on long topics; see DESIGN.md. Runs unchanged under CPython (the emulator) and
MicroPython (boards, unix port). The network is an argument (`open_connection`), so tests
hand in a fake stream and assert the bytes on the wire.

TLS: an SSL context (lwnode.tls, loaded only by a node whose config has broker.ca) handed
to the client as `ssl`: the connection is opened with it and the broker's certificate checked
against its host name.

Scope: QoS 0/1 publish, QoS 1 subscribe, keepalive, last will, clean disconnect. No QoS 2 and
no retransmission of unacked publishes after a reconnect: the node's durable queue resends
whatever the commission has not acked, end to end.
"""
import asyncio
import struct

try:
    from time import ticks_ms, ticks_diff
except ImportError:  # CPython
    import time

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

try:
    from random import random as _random
except ImportError:  # boards built without random's extra functions
    import os

    def _random():
        return (os.urandom(1)[0] * 256 + os.urandom(1)[0]) / 65536

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# Packet types (high nibble of the fixed header). Module constants as _NAME = const(...): inlined,
# so a node does not intern their names (see firmware/README.md "Memory").
_CONNECT = const(1)
_CONNACK = const(2)
_PUBLISH = const(3)
_PUBACK = const(4)
_SUBSCRIBE = const(8)
_SUBACK = const(9)
_PINGREQ = const(12)
_PINGRESP = const(13)
_DISCONNECT = const(14)

_PROTOCOL_LEVEL = const(4)  # MQTT 3.1.1
_MAX_PACKET = const(4096)  # largest packet accepted from the broker (downlink frames are small)
_MAX_REMAINING = const(268435455)

_CONNACK_REASONS = const(("unacceptable protocol version", "client identifier rejected",
                          "server unavailable", "bad user name or password", "not authorized"))


class MQTTError(Exception):
    """Anything that ends or refuses an MQTT exchange; the message says what and why."""


class MQTTTimeout(MQTTError):
    """The broker did not answer in time; the connection is considered dead and dropped."""


# ---- encoding ---------------------------------------------------------------------------

def encode_remaining_length(n):
    if n < 0 or n > _MAX_REMAINING:
        raise ValueError("remaining length %d out of range" % n)
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_remaining_length(data):
    """(length, bytes used) from the start of `data`; raises MQTTError on a malformed varint."""
    value = 0
    shift = 0
    for i in range(4):
        if i >= len(data):
            raise MQTTError("remaining length truncated")
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    raise MQTTError("remaining length longer than 4 bytes")


# Checks a node cannot fail (its ids and topics are short, its qos fixed) say what was wrong in
# a few words: each distinct name or short text is interned in the node's RAM for good.

def _text(value):
    data = value.encode() if isinstance(value, str) else bytes(value)
    if len(data) > 0xFFFF:
        raise ValueError("MQTT string of %d bytes, the limit is 65535" % len(data))
    return struct.pack(">H", len(data)) + data


def _packet(flags, data):
    return bytes((flags,)) + encode_remaining_length(len(data)) + data


def connect_packet(client_id, keepalive, clean_session=True, user=None, password=None,
                   will=None):
    """CONNECT; `will` is (topic, payload bytes, qos, retain) or None."""
    if not 0 <= keepalive <= 0xFFFF:
        raise ValueError("keepalive %r out of range 0..65535 s" % (keepalive,))
    if password is not None and user is None:
        raise ValueError("MQTT 3.1.1 allows a password only with a user name")
    if not client_id and not clean_session:
        raise ValueError("an empty client id needs clean_session=True")
    flags = 0x02 if clean_session else 0
    payload = _text(client_id)
    if will is not None:
        topic, message, qos, retain = will
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1, got %r" % (qos,))
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += _text(topic) + _text(message)
    if user is not None:
        flags |= 0x80
        payload += _text(user)
    if password is not None:
        flags |= 0x40
        payload += _text(password)
    header = _text("MQTT") + struct.pack(">BBH", _PROTOCOL_LEVEL, flags, keepalive)
    return _packet(_CONNECT << 4, header + payload)


def publish_packet(topic, data, qos=0, retain=False, pid=0, dup=False):
    if not topic or "+" in topic or "#" in topic:
        raise ValueError("publish topic must be non-empty, without wildcards: %r" % (topic,))
    if qos not in (0, 1):
        raise ValueError("qos must be 0 or 1, got %r" % (qos,))
    first = (_PUBLISH << 4) | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    body = _text(topic)
    if qos:
        body += struct.pack(">H", pid)
    return _packet(first, body + bytes(data))


def subscribe_packet(pid, topic, qos=1):
    if qos not in (0, 1):
        raise ValueError("qos must be 0 or 1, got %r" % (qos,))
    if not topic:
        raise ValueError("empty topic filter")
    return _packet((_SUBSCRIBE << 4) | 0x02, struct.pack(">H", pid) + _text(topic)
                   + bytes((qos,)))


def puback_packet(pid):
    return bytes((_PUBACK << 4, 2)) + struct.pack(">H", pid)


PINGREQ_PACKET = bytes((_PINGREQ << 4, 0))
DISCONNECT_PACKET = bytes((_DISCONNECT << 4, 0))


def backoff_delays(base=1.0, cap=60.0, factor=2.0, jitter=0.5, rand=None):
    """Endless reconnect delays in seconds: exponential up to `cap`, each reduced by a random
    share of up to `jitter` so a segment's nodes do not reconnect in lockstep after an outage."""
    rand = rand or _random
    delay = base
    while True:
        yield delay * (1 - jitter * rand())
        delay = min(cap, delay * factor)


# ---- the client -------------------------------------------------------------------------

class _Waiter(asyncio.Event):
    """One expected answer (PUBACK/SUBACK/PINGRESP) that a coroutine awaits. No timer of its
    own: the client's watchdog task finds it late (`sent` is its ticks_ms)."""

    def __init__(self, what):
        super().__init__()
        self.what = what  # what it waits for, or a packet id (text made only if it is late)
        self.sent = ticks_ms()
        self.value = None
        self.error = None
        self.late = False


class MQTTClient:
    """One connection to the broker at a time. After `connect()`, a reader task dispatches
    broker packets and a keepalive task pings when the uplink is idle. A dead connection
    (EOF, write error, missing PUBACK/PINGRESP, malformed packet) is dropped once: `connected`
    turns False, `error` says why, and waiting publishers get MQTTError. The caller reconnects
    (see `backoff_delays`)."""

    def __init__(self, client_id, host, port=1883, keepalive=60, clean_session=True,
                 user=None, password=None, will=None, on_message=None, open_connection=None,
                 ack_timeout=10.0, ssl=None):
        # Validate now, not at the first connect attempt in the field.
        connect_packet(client_id, keepalive, clean_session, user, password, will)
        self.client_id = client_id
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.clean_session = clean_session
        self.user = user
        self.password = password
        self.will = will
        self.on_message = on_message
        self.ack_timeout = ack_timeout  # for CONNACK, PUBACK, SUBACK, PINGRESP and the TCP connect
        self._open = open_connection or asyncio.open_connection
        self.ssl = ssl
        self._reader = None
        self._writer = None
        self._tasks = []
        self._waiters = {}
        self._next_pid = 0
        self._lock = asyncio.Lock()
        self._down = asyncio.Event()
        self._last_tx = 0
        self.connected = False
        self.error = None
        self.callback_errors = 0
        self.pings = 0

    # -- connection lifecycle --

    async def connect(self):
        """Open the socket, send CONNECT and await CONNACK. Returns session_present."""
        if self.connected:
            raise MQTTError("already connected to %s:%d" % (self.host, self.port))
        where = "%s:%d" % (self.host, self.port)
        try:
            opening = (self._open(self.host, self.port) if self.ssl is None else
                       self._open(self.host, self.port, ssl=self.ssl, server_hostname=self.host))
            self._reader, self._writer = await asyncio.wait_for(opening, self.ack_timeout)
        except asyncio.TimeoutError:
            raise MQTTTimeout("connect to %s: no TCP connection within %s s"
                              % (where, self.ack_timeout))
        except OSError as exc:
            raise MQTTError("connect to %s%s: %s" % (where, " (TLS)" if self.ssl else "", repr(exc)))
        self._down = asyncio.Event()
        self.error = None
        self._waiters = {}
        packet = connect_packet(self.client_id, self.keepalive, self.clean_session, self.user,
                                self.password, self.will)
        try:
            self._writer.write(packet)
            await self._writer.drain()
            self._last_tx = ticks_ms()
            ptype, flags, body = await asyncio.wait_for(self._read_packet(), self.ack_timeout)
        except asyncio.TimeoutError:
            await self._close_stream()
            raise MQTTTimeout("connect to %s: no CONNACK within %s s" % (where, self.ack_timeout))
        except (OSError, EOFError, MQTTError, ValueError) as exc:
            # MicroPython's TLS handshake runs at the first write and fails with ValueError
            # (a certificate not from the line's CA) or OSError
            await self._close_stream()
            raise MQTTError("connect to %s%s: %s" % (where, " (TLS)" if self.ssl else "",
                                                     "connection closed by the broker"
                                                     if isinstance(exc, EOFError)
                                                     else str(exc).strip() or repr(exc)))
        malformed = ptype != _CONNACK or flags or len(body) != 2
        if malformed or body[1]:
            await self._close_stream()
            if malformed:
                raise MQTTError("connect to %s: expected CONNACK, got packet type %d with %d-byte"
                                " body" % (where, ptype, len(body)))
            code = body[1]
            reasons = _CONNACK_REASONS
            raise MQTTError("connect to %s: broker refused: %s (code %d)"
                            % (where, reasons[code - 1] if code <= len(reasons)
                               else "unknown reason", code))
        session_present = bool(body[0] & 1)
        self.connected = True
        self._tasks = [asyncio.create_task(self._read_loop()),
                       asyncio.create_task(self._watchdog())]
        return session_present

    async def disconnect(self):
        """Clean DISCONNECT: the broker discards the will."""
        if self.connected:
            try:
                await self._send(DISCONNECT_PACKET)
            except MQTTError:
                pass
        self._drop("disconnected by the client")
        await self._close_stream()

    async def wait_disconnected(self):
        """Return the reason once the current connection has ended."""
        await self._down.wait()
        return self.error

    def _drop(self, reason):
        """End the connection once; later calls keep the first reason."""
        if not self.connected and self._down.is_set():
            return
        self.connected = False
        if self.error is None:
            self.error = reason
        for waiter in self._waiters.values():
            waiter.error = reason
            waiter.set()
        self._waiters = {}
        me = asyncio.current_task()
        for task in self._tasks:
            if task is not me:
                task.cancel()
        self._tasks = []
        self._down.set()
        if self._writer is not None:
            asyncio.create_task(self._close_stream())

    async def _close_stream(self):
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        try:
            writer.close()
            await writer.wait_closed()  # MicroPython closes the socket only here
        except Exception:  # closing a broken socket may fail in any way; it is gone anyway
            pass

    # -- requests --

    async def publish(self, topic, data, qos=0, retain=False):
        """Send a PUBLISH; for QoS 1 wait for its PUBACK (at most `ack_timeout` s)."""
        if not qos:
            await self._send(publish_packet(topic, data, 0, retain))
            return
        pid = self._new_pid()
        await self._request(publish_packet(topic, data, 1, retain, pid), _PUBACK, pid, pid)

    async def subscribe(self, topic, qos=1):
        """Subscribe one filter; returns the granted QoS, raises if the broker refused."""
        pid = self._new_pid()
        granted = await self._request(subscribe_packet(pid, topic, qos), _SUBACK, pid,
                                      "SUBACK for %r" % (topic,))
        if granted == 0x80:
            raise MQTTError("broker refused subscription to %r" % (topic,))
        return granted

    async def ping(self):
        """PINGREQ and wait for PINGRESP; no answer drops the connection."""
        await self._request(PINGREQ_PACKET, _PINGRESP, 0, "PINGRESP")

    async def _request(self, data, kind, pid, what):
        # Awaits an Event, not wait_for (a new Task per publish on CPython, two on MicroPython):
        # the watchdog drops the link when an answer is ack_timeout late.
        key = (kind << 16) | pid
        waiter = _Waiter(what)
        self._waiters[key] = waiter
        try:
            await self._send(data)
            await waiter.wait()
        finally:
            if self._waiters.get(key) is waiter:
                del self._waiters[key]
        if waiter.late:
            raise MQTTTimeout(waiter.error)
        if waiter.error is not None:
            raise MQTTError("%s not received: %s" % (_what(waiter.what), waiter.error))
        return waiter.value

    def _new_pid(self):
        for _ in range(0xFFFF):
            self._next_pid = self._next_pid % 0xFFFF + 1
            if ((_PUBACK << 16) | self._next_pid) not in self._waiters and \
                    ((_SUBACK << 16) | self._next_pid) not in self._waiters:
                return self._next_pid
        raise MQTTError("all 65535 packet ids are in flight")

    async def _send(self, data):
        if not self.connected:
            raise MQTTError("not connected: %s" % (self.error or "connect() first"))
        async with self._lock:
            writer = self._writer
            if writer is None:
                raise MQTTError("not connected: %s" % self.error)
            try:
                writer.write(data)
                await writer.drain()
            except Exception as exc:  # OSError, or the stream's own errors on a dead socket
                self._drop("write failed: %r" % (exc,))
                raise MQTTError("write failed: %r" % (exc,))
        self._last_tx = ticks_ms()

    # -- receiving --

    async def _read_packet(self):
        """(type, flags, body) of the next packet; MQTTError if it is malformed or too big."""
        reader = self._reader
        head = await reader.readexactly(2)  # type and the first remaining-length byte
        header = head[1:]
        while header[-1] & 0x80:  # more length bytes: one at a time, never past the header
            if len(header) == 4:
                raise MQTTError("malformed packet from broker: remaining length longer than 4 bytes")
            header += await reader.readexactly(1)
        length = decode_remaining_length(header)[0]
        first = head[0]
        if length > _MAX_PACKET:
            raise MQTTError("packet of %d bytes from broker exceeds the limit of %d"
                            % (length, _MAX_PACKET))
        body = await reader.readexactly(length) if length else b""
        return first >> 4, first & 0x0F, body

    async def _read_loop(self):
        try:
            while True:
                ptype, flags, body = await self._read_packet()
                await self._dispatch(ptype, flags, body)
        except asyncio.CancelledError:
            raise
        except EOFError:
            self._drop("connection closed by the broker")
        except MQTTError as exc:
            self._drop(str(exc))
        except Exception as exc:  # socket errors differ by port; any of them ends the link
            self._drop("read failed: %r" % (exc,))

    async def _dispatch(self, kind, flags, data):
        if kind == _PUBLISH:
            await self._on_publish(flags, data)
            return
        if kind == _PUBACK and not flags and len(data) == 2:
            self._answer((_PUBACK << 16) | struct.unpack(">H", data)[0], None)
        elif kind == _SUBACK and not flags and len(data) >= 3:
            self._answer((_SUBACK << 16) | struct.unpack(">H", data[:2])[0], data[2])
        elif kind == _PINGRESP and not flags and not data:
            if self._answer(_PINGRESP << 16, None):
                self.pings += 1
        elif kind in (_PUBACK, _SUBACK, _PINGRESP):
            raise MQTTError("malformed packet from broker: type %d with %d-byte body"
                            % (kind, len(data)))
        else:
            raise MQTTError("malformed packet from broker: unexpected packet type %d" % kind)

    def _answer(self, key, value):
        waiter = self._waiters.pop(key, None)
        if waiter is not None:  # otherwise a late answer to a request that timed out
            waiter.value = value
            waiter.set()
        return waiter

    async def _on_publish(self, flags, data):
        qos = (flags >> 1) & 3
        if qos > 1:
            raise MQTTError("malformed packet from broker: PUBLISH with QoS %d" % qos)
        if len(data) < 2:
            raise MQTTError("malformed packet from broker: PUBLISH without topic")
        tlen = struct.unpack(">H", data[:2])[0]
        start = 2 + tlen + (2 if qos else 0)
        if start > len(data):
            raise MQTTError("malformed packet from broker: PUBLISH topic length %d beyond body"
                            % tlen)
        try:
            topic = bytes(data[2:2 + tlen]).decode()
        except UnicodeError:
            raise MQTTError("malformed packet from broker: PUBLISH topic is not UTF-8")
        payload = bytes(data[start:])
        if self.on_message is not None:
            try:
                self.on_message(topic, payload)
            except Exception as exc:  # a bad downlink handler must not take the uplink down
                self.callback_errors += 1
                print("mqtt: on_message failed for %s: %r" % (topic, exc))
        if qos:
            await self._send(puback_packet(struct.unpack(">H", data[2 + tlen:start])[0]))

    async def _watchdog(self):
        """Keepalive pings and answer timeouts in one task: it wakes when the oldest answer is
        due, else every ack_timeout (a request made meanwhile is found late within
        2 x ack_timeout), or when the link has been idle for the keepalive period."""
        period = self.keepalive * 1000
        limit = int(self.ack_timeout * 1000)
        while self.connected:
            now = ticks_ms()
            wait = limit
            for waiter in self._waiters.values():
                left = limit - ticks_diff(now, waiter.sent)
                if left <= 0:
                    waiter.late = True
                    self._drop("no %s within %s s" % (_what(waiter.what), self.ack_timeout))
                    return
                wait = min(wait, left)
            if period:
                idle = ticks_diff(now, self._last_tx)
                if idle >= period and (_PINGRESP << 16) not in self._waiters:
                    self._waiters[_PINGRESP << 16] = _Waiter("PINGRESP")
                    try:
                        await self._send(PINGREQ_PACKET)
                    except MQTTError:
                        return  # the connection was dropped with the reason
                    continue
                wait = min(wait, period - idle)
            await asyncio.sleep(max(wait, 1) / 1000)


def _what(what):
    return "PUBACK for packet %d" % what if isinstance(what, int) else what
