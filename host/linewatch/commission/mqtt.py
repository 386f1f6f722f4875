"""The aggregator's one MQTT client, behind a small interface (gmqtt today; see DESIGN.md for
why: asyncio-native, ~3x paho on ingest). Nothing else in the service imports gmqtt.

- Persistent session (clean_session False, fixed client id): while the service is down the
  broker queues every QoS 1 frame for it. A broker that comes back without the session (it
  crashed, or runs with `persistence false`) has forgotten the subscriptions too: whenever a
  CONNACK says "no session present" after the first, the link subscribes again and says so
  (the frames the broker lost come again from the nodes' flash queues, which resend whatever
  the commission has not acked).
- Incoming messages go to a bounded in-memory queue as (topic, payload, received_us). The
  broker's PUBACK is sent on receipt; a frame's durability is the end-to-end ack (acks.py),
  not the PUBACK. When the queue is full, reading from the socket pauses so the broker's
  inflight window holds the rest (backpressure instead of unbounded memory).
- Receive path (the ingest benchmark's hot loop): gmqtt's own per-message path costs more
  than checking and storing the frame (a debug log, a coroutine test and a socket write per
  message). For MQTT 3.1.1 QoS 1 PUBLISH packets the link splits each chunk read from the
  socket itself (`split_chunk`) and sends the chunk's PUBACKs in one write; every other
  packet still goes through gmqtt unchanged, in order.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time

import gmqtt
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from gmqtt.mqtt.handler import MQTTConnectError
from gmqtt.mqtt.package import Package

log = logging.getLogger("linewatch.commission.mqtt")

# gmqtt logs every reconnect attempt at warning level; the service says it once itself.
logging.getLogger("gmqtt").setLevel(logging.ERROR)


class _SaidBetter(logging.Filter):
    """gmqtt's two lines about a refusal it will not retry: the service names the broker, the
    user and what to check instead (BrokerRefused)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "permanent" not in record.getMessage()


logging.getLogger("gmqtt.mqtt.handler").addFilter(_SaidBetter())


class BrokerUnreachable(RuntimeError):
    pass


class BrokerRefused(BrokerUnreachable):
    """The broker answered and said no to our user: trying again cannot help."""


# CONNACK codes that refuse the user (3.1.1: bad user name or password, not authorised;
# 5: the same, banned, bad authentication method)
REFUSED_CODES = frozenset({4, 5, 134, 135, 138, 140})


def _quiet_cancelled_reconnects(loop: asyncio.AbstractEventLoop) -> None:
    """A stop while the broker is away: gmqtt's reconnect task, sleeping between tries, is
    cancelled as the loop closes, and gmqtt's done-callback asks the cancelled task for its
    exception, which raises; asyncio then logs a traceback for a clean stop. Only that one is
    left out; anything else goes to the handler there was."""
    previous = loop.get_exception_handler()

    def handler(loop, context):
        if isinstance(context.get("exception"), asyncio.CancelledError) \
                and "_handle_exception_in_future" in repr(context.get("handle")):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)
    loop.set_exception_handler(handler)


PUBACK = b"\x40\x02"


def split_chunk(data: bytes, on_other, v5: bool = False) -> tuple[int, list[tuple[str, bytes]], bytes]:
    """Split the complete packets at the start of `data` (MQTT 3.1.1, or 5 with `v5`).

    Returns (bytes used, [(topic, payload)] of the QoS 1 PUBLISH packets, their PUBACKs as one
    byte string); -1 as bytes used for a malformed length. Any other packet goes to
    on_other(cmd, body) in its place in the stream, after the PUBACKs owed before it. In MQTT 5
    the PUBLISH's properties are skipped (a 2-byte PUBACK means success there too); one
    carrying a topic alias (empty topic) goes to gmqtt, which keeps the alias table.
    """
    used, size = 0, len(data)
    messages: list[tuple[str, bytes]] = []
    acks: list[bytes] = []
    while size - used >= 2:
        i, mult, length = used + 1, 1, 0
        while True:
            if i >= size:
                return used, messages, b"".join(acks)
            b = data[i]
            i += 1
            length += (b & 0x7F) * mult
            if b < 128:
                break
            mult *= 128
            if mult > 2097152:
                return -1, messages, b"".join(acks)
        end = i + length
        if end > size:
            break
        cmd = data[used]
        if cmd & 0xF6 == 0x32 and length >= 4:   # PUBLISH, QoS 1 (any dup / retain flag)
            t_end = i + 2 + ((data[i] << 8) | data[i + 1])
            start = t_end + 2
            if v5:   # an empty topic means a topic alias: gmqtt resolves those
                start = _skip_properties(data, start, end) if t_end > i + 2 else end + 1
            if start <= end:
                messages.append((data[i + 2:t_end].decode("utf-8", "replace"), data[start:end]))
                acks.append(PUBACK + data[t_end:t_end + 2])
                used = end
                continue
        if acks:   # what we owe goes out before whatever this packet makes gmqtt write
            on_other(None, b"".join(acks))
            acks = []
        on_other(cmd, data[i:end])
        used = end
    return used, messages, b"".join(acks)


def _skip_properties(data: bytes, at: int, end: int) -> int:
    """Where the payload starts after an MQTT 5 property block at `at` (end + 1 if malformed)."""
    mult, length = 1, 0
    while at < end:
        b = data[at]
        at += 1
        length += (b & 0x7F) * mult
        if b < 128:
            return at + length
        mult *= 128
        if mult > 2097152:
            break
    return end + 1


class _Client(gmqtt.Client):
    """gmqtt's client with the link's receive path on every (re)connection."""

    link: "MqttLink"

    async def _create_connection(self, *args, **kwargs):
        connection = await super()._create_connection(*args, **kwargs)
        protocol = connection._protocol
        fallback = protocol._read_packet
        link = self.link

        def read_packet(data: bytes) -> int:
            if connection._handler.current_connection is not connection:
                return fallback(data)

            def other(cmd, body):
                if cmd is None:
                    protocol.write_data(body)
                else:
                    connection.put_package(Package(cmd, body))

            used, messages, acks = split_chunk(data, other, protocol.proto_ver >= MQTTv50)
            if messages:
                connection._last_data_in = time.monotonic()
                if acks:
                    protocol.write_data(acks)
                link._deliver(messages)
            return used

        protocol._read_packet = read_packet
        return connection


class MqttLink:
    def __init__(self, client_id: str, host: str, port: int, *, clean_session: bool = False,
                 will: tuple[str, bytes, bool] | None = None, username: str = "", password: str = "",
                 keepalive_s: int = 30, max_queued: int = 50000, v5: bool = False,
                 session_expiry_s: int | None = None, ssl_context=None) -> None:
        """`v5`: MQTT 5 (shared subscriptions, `$share/...`); its session lasts
        `session_expiry_s` after a disconnect (0: it ends with the connection). `ssl_context`:
        TLS (linewatch.broker.tls_context: the line's CA, the host name checked)."""
        self.ssl_context = ssl_context
        self.host, self.port, self.keepalive_s = host, port, keepalive_s
        self.username = username
        self.version = MQTTv50 if v5 else MQTTv311
        will_message = gmqtt.Message(will[0], will[1], qos=1, retain=will[2]) if will else None
        extra = {"session_expiry_interval": int(session_expiry_s)} if v5 and session_expiry_s is not None else {}
        self.client = _Client(client_id, clean_session=clean_session, will_message=will_message, **extra)
        self.client.link = self
        if username:
            self.client.set_auth_credentials(username, password or None)
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect = self._on_connect
        self._queue: collections.deque[tuple[str, bytes, int]] = collections.deque()
        self._held: collections.deque[tuple[str, bytes, int, bool]] = collections.deque()
        self._ready = asyncio.Event()
        self.max_queued = max_queued
        self._paused = False
        self.received = 0
        self.connected = False
        self.subscriptions: dict[str, int] = {}     # filter -> qos, to subscribe again
        self.sessions_lost = 0
        self.clean_session = clean_session

    async def connect(self, retries: int = 5, delay_s: float = 2.0) -> None:
        """Connect, retrying `retries` times; BrokerUnreachable with the last reason after that."""
        last: Exception | None = None
        for attempt in range(retries + 1):
            try:
                await self.client.connect(self.host, self.port, ssl=self.ssl_context or False,
                                          keepalive=self.keepalive_s, version=self.version)
                self.client.set_config({"reconnect_retries": -1, "reconnect_delay": max(1, int(delay_s))})
                return
            except MQTTConnectError as exc:
                if getattr(exc, "_code", None) in REFUSED_CODES:
                    raise self._refused(exc) from None
                last = exc
                if attempt < retries:
                    log.warning("broker %s:%d did not take us (%s); retry %d/%d in %.0f s",
                                self.host, self.port, exc, attempt + 1, retries, delay_s)
                    await asyncio.sleep(delay_s)
            except (OSError, asyncio.TimeoutError, Exception) as exc:  # gmqtt raises its own too
                last = exc
                if attempt < retries:
                    log.warning("broker %s:%d not reachable (%s); retry %d/%d in %.0f s",
                                self.host, self.port, exc, attempt + 1, retries, delay_s)
                    await asyncio.sleep(delay_s)
        raise BrokerUnreachable(f"broker {self.host}:{self.port} unreachable after {retries + 1} tries: {last}")

    def _refused(self, exc: Exception) -> BrokerRefused:
        from linewatch import broker
        access = broker.BrokerAccess(self.host, self.port, self.username)
        where = access.where + (" (TLS)" if self.ssl_context else "")
        return BrokerRefused(f"broker {where} refused the connection {access.who}: "
                             f"{getattr(exc, 'message', exc)}; {broker.refusal_hint(access)}")

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        self.subscriptions[topic_filter] = qos
        self.client.subscribe(topic_filter, qos=qos)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Send now, or hold it in order while the broker's receive maximum is in flight."""
        self._held.append((topic, payload, qos, retain))
        self.send_held()

    def send_held(self) -> int:
        """Send what is held, oldest first, until the broker's receive maximum (MQTT 5: 100 on
        our Mosquitto, 32 on EMQX) is in flight: past it gmqtt refuses a QoS 1 publish with
        OverflowError, and an owner flushing the acks of more nodes than that at once would
        stop. Called again on each take(); returns how many are still held."""
        held = self._held
        while held:
            topic, payload, qos, retain = held[0]
            try:
                self.client.publish(topic, payload, qos=qos, retain=retain)
            except OverflowError:     # no packet id free: wait for the broker's PUBACKs
                break
            held.popleft()
        return len(held)

    async def disconnect(self) -> None:
        for _ in range(20):      # what is held goes out first, while the broker acks
            if not self._held or not self.connected or not self.send_held():
                break
            await asyncio.sleep(0.05)
        self.connected = False   # a goodbye, not a loss: no warning from _on_disconnect
        _quiet_cancelled_reconnects(asyncio.get_running_loop())
        try:
            await self.client.disconnect()
        except Exception as exc:  # already gone; a clean exit matters more than the reason
            log.debug("disconnect: %s", exc)

    # -- receiving --

    def _on_message(self, client, topic, payload, qos, properties) -> int:
        self._queue.append((topic, payload, time.time_ns() // 1000))
        self.received += 1
        self._ready.set()
        if len(self._queue) >= self.max_queued and not self._paused:
            self._pause(True)
        return 0

    def _deliver(self, messages: list[tuple[str, bytes]]) -> None:
        """A chunk's messages from the fast path: one arrival time for the chunk they came in."""
        at = time.time_ns() // 1000
        self._queue.extend([(t, p, at) for t, p in messages])
        self.received += len(messages)
        self._ready.set()
        if len(self._queue) >= self.max_queued and not self._paused:
            self._pause(True)

    def _on_connect(self, client, flags, rc, properties) -> None:
        if not self.connected:
            log.info("connected to broker %s:%d", self.host, self.port)
        self.connected = True
        if not flags and self.subscriptions:   # flags: session present
            self.sessions_lost += 1
            if self.clean_session:             # no session is kept for us by design
                log.info("subscribed again to %s", ", ".join(self.subscriptions))
            else:
                log.warning("broker %s:%d kept no session for us (restarted without persistence?): subscribed "
                            "again to %s; what it lost comes again from the nodes' queues", self.host, self.port,
                            ", ".join(self.subscriptions))
            for topic_filter, qos in self.subscriptions.items():
                self.client.subscribe(topic_filter, qos=qos)

    def _on_disconnect(self, client, packet, exc=None) -> None:
        if self.connected:
            log.warning("lost the broker %s:%d; reconnecting (the session keeps frames queued)",
                        self.host, self.port)
        self.connected = False

    def _pause(self, pause: bool) -> None:
        transport = getattr(getattr(self.client, "_connection", None), "_transport", None)
        if transport is None:
            return
        try:
            transport.pause_reading() if pause else transport.resume_reading()
            self._paused = pause
        except (AttributeError, RuntimeError):
            pass

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until at least one message is queued (False on timeout)."""
        if self._queue:
            return True
        self._ready.clear()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return bool(self._queue)

    def queued(self) -> int:
        """Messages received and not yet taken."""
        return len(self._queue)

    def take(self, limit: int) -> list[tuple[str, bytes, int]]:
        """Up to `limit` queued messages, oldest first, without waiting."""
        if self._held:
            self.send_held()
        q = self._queue
        n = min(limit, len(q))
        out = [q.popleft() for _ in range(n)]
        if self._paused and len(q) < self.max_queued // 2:
            self._pause(False)
        return out

    async def messages(self):
        """Async iteration, one message at a time (tools; the service takes batches)."""
        while True:
            await self.wait()
            for message in self.take(1000):
                yield message
