"""The aggregator's one MQTT client, behind a small interface (gmqtt today; see DESIGN.md for
why: asyncio-native, ~3x paho on ingest). Nothing else in the service imports gmqtt.

- Persistent session (clean_session False, fixed client id): while the service is down the
  broker queues every QoS 1 frame for it.
- Incoming messages go to a bounded in-memory queue as (topic, payload, received_us). The
  broker's PUBACK is sent on receipt; a frame's durability is the end-to-end ack (acks.py),
  not the PUBACK. When the queue is full, reading from the socket pauses so the broker's
  inflight window holds the rest (backpressure instead of unbounded memory).
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time

import gmqtt
from gmqtt.mqtt.constants import MQTTv311

log = logging.getLogger("linewatch.mqtt")

# gmqtt logs every reconnect attempt at warning level; the service says it once itself.
logging.getLogger("gmqtt").setLevel(logging.ERROR)


class BrokerUnreachable(RuntimeError):
    pass


class MqttLink:
    def __init__(self, client_id: str, host: str, port: int, *, clean_session: bool = False,
                 will: tuple[str, bytes, bool] | None = None, username: str = "", password: str = "",
                 keepalive_s: int = 30, max_queued: int = 50000) -> None:
        self.host, self.port, self.keepalive_s = host, port, keepalive_s
        will_message = gmqtt.Message(will[0], will[1], qos=1, retain=will[2]) if will else None
        self.client = gmqtt.Client(client_id, clean_session=clean_session, will_message=will_message)
        if username:
            self.client.set_auth_credentials(username, password or None)
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect = self._on_connect
        self._queue: collections.deque[tuple[str, bytes, int]] = collections.deque()
        self._ready = asyncio.Event()
        self.max_queued = max_queued
        self._paused = False
        self.received = 0
        self.connected = False

    async def connect(self, retries: int = 5, delay_s: float = 2.0) -> None:
        """Connect, retrying `retries` times; BrokerUnreachable with the last reason after that."""
        last: Exception | None = None
        for attempt in range(retries + 1):
            try:
                await self.client.connect(self.host, self.port, keepalive=self.keepalive_s, version=MQTTv311)
                self.client.set_config({"reconnect_retries": -1, "reconnect_delay": max(1, int(delay_s))})
                return
            except (OSError, asyncio.TimeoutError, Exception) as exc:  # gmqtt raises its own too
                last = exc
                if attempt < retries:
                    log.warning("broker %s:%d not reachable (%s); retry %d/%d in %.0f s",
                                self.host, self.port, exc, attempt + 1, retries, delay_s)
                    await asyncio.sleep(delay_s)
        raise BrokerUnreachable(f"broker {self.host}:{self.port} unreachable after {retries + 1} tries: {last}")

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        self.client.subscribe(topic_filter, qos=qos)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain)

    async def disconnect(self) -> None:
        self.connected = False   # a goodbye, not a loss: no warning from _on_disconnect
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

    def _on_connect(self, client, flags, rc, properties) -> None:
        if not self.connected:
            log.info("connected to broker %s:%d", self.host, self.port)
        self.connected = True

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

    def take(self, limit: int) -> list[tuple[str, bytes, int]]:
        """Up to `limit` queued messages, oldest first, without waiting."""
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
