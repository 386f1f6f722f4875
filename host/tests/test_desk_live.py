"""The desk's live stream (linewatch.desk.live): a page hears a tick every TICK_S however busy
the stream is; the node page reads its commands' answers on those ticks."""
from __future__ import annotations

import asyncio

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from linewatch.desk import live


async def test_a_busy_stream_still_ticks(monkeypatch):
    # a steady flow of incidents, one every 20 ms for 2 s, with a tick due every 200 ms: the
    # tick waited for 200 ms without any message, so a live demo's incidents starved it and a
    # node page never showed its command's answer
    monkeypatch.setattr(live, "TICK_S", 0.2)
    hub = live.Hub()
    app = web.Application()
    app.router.add_get("/live", hub.stream)
    server = TestServer(app)
    await server.start_server()
    events: list[str] = []

    async def publish():
        for i in range(100):
            hub.publish("incident", {"id": str(i)})
            await asyncio.sleep(0.02)
        hub.close()

    try:
        async with ClientSession() as session, session.get(server.make_url("/live")) as response:
            publisher = None
            async for line in response.content:
                if line.startswith(b"event: "):
                    events.append(line[7:].strip().decode())
                    if events[-1] == "hello":
                        publisher = asyncio.create_task(publish())
            await publisher
    finally:
        await server.close()
    assert events.count("incident") == 100
    assert events.count("tick") >= 2, events
