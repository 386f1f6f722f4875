"""Live updates: server-sent events to every open page.

The service tells the hub of each incident it stores and each node health change (its
listeners, called in its own task: a put into each page's queue, nothing more, so a slow page
never slows the ingest; a page whose queue is full is dropped and reconnects by itself, as
EventSource does). The page fetches what changed from the JSON API; the events carry only
what kind of thing changed and its id. A comment line every 15 s keeps proxies from closing
an idle stream, and a `tick` every 5 s, however busy the stream, lets the page refresh "last
seen" times and read the answers to the commands it sent.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from linewatch.commission.store import HealthChange

log = logging.getLogger("linewatch.desk")
QUEUE = 200
KEEPALIVE_S = 15.0
TICK_S = 5.0


class Hub:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue] = set()

    def __len__(self) -> int:
        return len(self._queues)

    def listener(self, kind: str, what: Any) -> None:
        """The service's listener (Aggregator.listeners)."""
        if not self._queues:
            return
        if kind == "incident":
            self.publish("incident", {"id": str(what.get("id"))})
        elif kind == "health" and isinstance(what, HealthChange):
            self.publish("health", {"node": what.node, "new": what.new})

    def publish(self, event: str, data: dict[str, Any]) -> None:
        message = ("event: %s\ndata: %s\n\n" % (event, json.dumps(data))).encode()
        for queue in list(self._queues):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                self._queues.discard(queue)     # its stream ends; the page reconnects

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        queue: asyncio.Queue = asyncio.Queue(QUEUE)
        self._queues.add(queue)
        try:
            await response.write(b"retry: 2000\nevent: hello\ndata: {}\n\n")
            # a tick every TICK_S however busy the stream (waiting TICK_S for a quiet moment,
            # a live line's steady incidents starved it, and a node page never read its
            # command's answer), a keepalive comment every KEEPALIVE_S
            loop = asyncio.get_running_loop()
            tick_at = loop.time() + TICK_S
            keepalive_at = loop.time() + KEEPALIVE_S
            while queue in self._queues:
                try:
                    message = await asyncio.wait_for(queue.get(), max(0.0, tick_at - loop.time()))
                    if message is None:
                        break
                except TimeoutError:
                    message = b""
                if loop.time() >= tick_at:
                    tick_at = loop.time() + TICK_S
                    message += b"event: tick\ndata: {}\n\n"
                    if loop.time() >= keepalive_at:
                        keepalive_at = loop.time() + KEEPALIVE_S
                        message += b": keepalive\n\n"
                await response.write(message)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._queues.discard(queue)
        return response

    def close(self) -> None:
        """End every stream (the service is stopping)."""
        for queue in list(self._queues):
            try:
                queue.put_nowait(None)
            except asyncio.QueueFull:
                pass
        self._queues.clear()
