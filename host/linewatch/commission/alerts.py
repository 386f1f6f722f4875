"""Alerts for other systems: JSON on `<prefix>/<kind>` (kinds: incident, node_state) and,
optionally, POSTed to webhooks.

Webhooks run in one thread with a bounded queue: a slow or dead receiver must never hold up
ingest, so when the queue is full the newest alert is dropped and counted (the MQTT alert and
the stored record remain).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.request
from typing import Any, Callable

from linewatch.commission.config import AlertsConfig
from linewatch.commission.store import HealthChange

log = logging.getLogger("linewatch.commission.alerts")

INCIDENT = "incident"
NODE_STATE = "node_state"

Publish = Callable[[str, bytes], None]


def node_state_alert(change: HealthChange) -> dict[str, Any]:
    return {"kind": NODE_STATE, "node": "0x%04x" % change.node, "old": change.old, "new": change.new,
            "why": change.why, "at_us": change.at_us}


class Alerter:
    def __init__(self, config: AlertsConfig, publish: Publish) -> None:
        self.config = config
        self.publish = publish
        self.sent = 0
        self.webhooks = Webhooks(config) if config.webhooks else None

    def node_state(self, change: HealthChange) -> None:
        self._send(NODE_STATE, node_state_alert(change))

    def incident(self, incident: dict[str, Any]) -> None:
        self._send(INCIDENT, {"kind": INCIDENT, **incident})

    def _send(self, kind: str, body: dict[str, Any]) -> None:
        data = json.dumps(body, sort_keys=True).encode()
        try:
            self.publish(f"{self.config.topic_prefix}/{kind}", data)
            self.sent += 1
        except Exception as exc:  # the broker may be away; the record is in the store anyway
            log.warning("alert %s not published: %s", kind, exc)
        if self.webhooks:
            self.webhooks.post(data)

    def close(self) -> None:
        if self.webhooks:
            self.webhooks.close()


class Webhooks:
    def __init__(self, config: AlertsConfig, opener: Callable[..., Any] = urllib.request.urlopen) -> None:
        self.config = config
        self.opener = opener
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=config.queue_size)
        self.dropped = 0
        self.delivered = 0
        self.failed = 0
        self.thread = threading.Thread(target=self._run, name="linewatch-webhooks", daemon=True)
        self.thread.start()

    def post(self, data: bytes) -> None:
        try:
            self.queue.put_nowait(data)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("webhook queue full (%d): %d alerts dropped so far", self.config.queue_size, self.dropped)

    def close(self, timeout: float = 5.0) -> None:
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self.thread.join(timeout)

    def _run(self) -> None:
        while True:
            data = self.queue.get()
            if data is None:
                return
            for url in self.config.webhooks:
                self._deliver(url, data)

    def _deliver(self, url: str, data: bytes) -> None:
        for attempt in range(self.config.retries + 1):
            try:
                request = urllib.request.Request(url, data=data, method="POST",
                                                 headers={"Content-Type": "application/json"})
                with self.opener(request, timeout=self.config.timeout_s) as response:
                    response.read()
                self.delivered += 1
                return
            except Exception as exc:  # any failure of a remote system: retry, then give up
                if attempt == self.config.retries:
                    self.failed += 1
                    log.warning("webhook %s failed after %d tries: %s", url, attempt + 1, exc)
                    return
                time.sleep(min(0.5 * 2 ** attempt, 10.0))
