"""The virtual node's radio link: latency, jitter and losses on its real TCP connection."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from lwnode import mqtt
from lwnode.store import FrameQueue
from lwproto import frame as wire

from linewatch import keys
from linewatch.emulator import radio as rd, scenario as sc, vclock
from linewatch.emulator.commission import Commission
from linewatch.emulator.runner import RunOptions, emulate, prepare
from linewatch.emulator.world import RadioLink
from linewatch.commission.store import FRAME, open_store

pytestmark = pytest.mark.timeout(600, method="thread")   # a hang guard: see test_e2e.py
GRACE_S = 0.1           # real time the virtual loop may wait for the broker (a loaded machine)


def test_delay_line_keeps_order_and_due_times():
    async def main():
        loop = asyncio.get_running_loop()
        line = rd.DelayLine(loop)
        got = []
        for i, delay in enumerate((0.5, 0.1, 0.3, 0.7)):
            line.push(delay, lambda i=i: got.append((i, loop.time())))
        await asyncio.sleep(1)
        return got

    got = vclock.run(main, virtual=True)
    # a later push never overtakes an earlier one; it leaves when its own time comes
    assert [i for i, _ in got] == [0, 1, 2, 3]
    assert [t for _, t in got] == pytest.approx([0.5, 0.5, 0.5, 0.7])


def test_losses_cost_retransmission_timeouts_and_the_same_seed_draws_the_same():
    link = RadioLink(latency_ms=50, latency_jitter_ms=0, loss_probability=0.3)
    first = rd.Radio(link, 7, 0x0101)
    again = rd.Radio(link, 7, 0x0101)
    a = [first.delay_s() for _ in range(2000)]
    assert a == [again.delay_s() for _ in range(2000)]
    assert a != [rd.Radio(link, 8, 0x0101).delay_s() for _ in range(2000)]
    crossed = [d for d in a if d is not None]
    # 50 ms, 250 (one loss), 650, 1450, 3050 ms (four); a fifth loss in a row breaks the link
    assert set(round(d, 6) for d in crossed) <= {0.05, 0.25, 0.65, 1.45, 3.05}
    assert 0.65 < crossed.count(0.05) / len(crossed) < 0.75
    assert first.retransmissions > 0
    assert rd.Radio(RadioLink(loss_probability=1.0), 7, 1).delay_s() is None
    assert link.give_up_s() == pytest.approx(0.05 + 0.2 * 31)
    assert rd.Radio(RadioLink(0, 0, 0), 7, 1).ideal and not rd.Radio(link, 7, 1).ideal


async def _subscriber(broker, topic: str, arrivals: list):
    loop = asyncio.get_running_loop()
    client = mqtt.MQTTClient("sub-" + uuid.uuid4().hex[:8], broker.host, broker.port,
                             on_message=lambda t, p: arrivals.append((loop.time(), p)))
    await client.connect()
    await client.subscribe(topic, qos=1)
    return client


async def _publisher(broker, radio: rd.Radio, clean: bool = True, will=None):
    client = mqtt.MQTTClient("pub-" + uuid.uuid4().hex[:8], broker.host, broker.port,
                             clean_session=clean, will=will,
                             open_connection=lambda h, p: rd.open_link(radio, h, p))
    await client.connect()
    return client


def test_latency_delays_each_frame_at_the_broker_in_run_time_and_keeps_order(shared_mosquitto):
    topic = "t/radio/" + uuid.uuid4().hex

    async def main():
        loop = asyncio.get_running_loop()
        arrivals: list = []
        sub = await _subscriber(shared_mosquitto, topic, arrivals)
        fixed = await _publisher(shared_mosquitto, rd.Radio(RadioLink(200, 0, 0), 1, 1))
        sent = []
        for i in range(3):
            await asyncio.sleep(1)
            sent.append(loop.time())
            await fixed.publish(topic, b"fixed %d" % i, qos=0)
        await asyncio.sleep(1)
        fixed_arrivals, arrivals[:] = list(arrivals), []
        # a wide jitter, writes back to back: none overtakes another
        jittery = await _publisher(shared_mosquitto, rd.Radio(RadioLink(200, 150, 0), 1, 2))
        for i in range(30):
            await jittery.publish(topic, b"%d" % i, qos=0)
            await asyncio.sleep(0.01)
        await asyncio.sleep(2)
        for client in (fixed, jittery, sub):
            await client.disconnect()
        return sent, fixed_arrivals, list(arrivals)

    sent, fixed_arrivals, jittery = vclock.run(main, virtual=True, grace_s=GRACE_S)
    assert [p for _, p in fixed_arrivals] == [b"fixed 0", b"fixed 1", b"fixed 2"]
    delays = [t - s for (t, _), s in zip(fixed_arrivals, sent)]
    # delivered on the link's grid of run time, at most one tick late
    assert all(0.2 - 1e-6 <= d <= 0.2 + rd.TICK_S + 1e-6 for d in delays), delays
    assert [int(p) for _, p in jittery] == list(range(30))


def test_a_link_that_loses_everything_breaks_and_the_broker_sends_the_will(shared_mosquitto):
    topic = "t/radio/" + uuid.uuid4().hex

    async def main():
        loop = asyncio.get_running_loop()
        arrivals: list = []
        sub = await _subscriber(shared_mosquitto, topic, arrivals)
        radio = rd.Radio(RadioLink(50, 0, 0), 3, 3)
        node = await _publisher(shared_mosquitto, radio, will=(topic, b"will", 1, False))
        radio.link = RadioLink(50, 0, 1.0)          # the radio goes deaf
        started = loop.time()
        await node.publish(topic, b"lost", qos=0)
        reason = await node.wait_disconnected()
        broke_after = loop.time() - started
        await asyncio.sleep(1)
        radio.link = RadioLink(50, 0, 0)            # and recovers: the node reconnects
        again = await _publisher(shared_mosquitto, radio)
        await again.publish(topic, b"back", qos=1)
        await asyncio.sleep(1)
        await again.disconnect()
        await sub.disconnect()
        return broke_after, reason, [p for _, p in arrivals], radio.breaks

    broke_after, reason, payloads, breaks = vclock.run(main, virtual=True, grace_s=GRACE_S)
    assert breaks == 1 and reason
    assert broke_after == pytest.approx(RadioLink(50).give_up_s(), abs=0.05)
    assert payloads == [b"will", b"back"]


LOSSY = {
    "scenario": {"name": "lossy", "seed": 5, "duration_s": 90, "heartbeat_s": 2,
                 "start_utc": "2026-11-25T06:00:00Z"},
    "line": {"vertices": [[48.0, 37.8], [48.02, 37.84]], "segment_length_m": 5000},
    "nodes": {"row_offsets_m": [-300], "spacing_m": 2000, "end_m": 2000},
    # one write in 5 costs a retransmission; two losses in a row break the link (one in 25)
    "radio": {"latency_ms": 40, "latency_jitter_ms": 20, "loss_probability": 0.2,
              "max_retransmissions": 1},
}


def test_a_lossy_link_delivers_every_frame_exactly_once(tmp_path):
    scenario = sc.parse(LOSSY)
    world, _truth = prepare(scenario, real_time=False)
    from linewatch.mosquitto import Mosquitto
    with Mosquitto(workdir=tmp_path / "broker") as broker:
        desk = Commission.prepare(tmp_path / "commission", world, (broker.host, broker.port))
        desk.start_aggregator()
        try:
            options = RunOptions((broker.host, broker.port), tmp_path / "nodes", desk.master_key,
                                 virtual=True, drain_s=30, progress=False, grace_s=GRACE_S)
            summary = emulate(scenario, world, options)
        finally:
            assert desk.stop_aggregator() == 0, desk.log_tail()
    store = open_store(str(desk.db_path), "NORMAL")
    try:
        rows = [r for r in store.evidence() if r.kind == FRAME]
    finally:
        store.close()
    created = 0
    for node in world.nodes:
        kept = [(r.boot, r.seq) for r in rows if r.node == node.id and r.type != "death"]
        assert len(kept) == len(set(kept)), "stored twice"
        # what the commission does not have yet is still in the node's durable queue (its
        # last frames may be sent but not yet acked when the run stops)
        queue = FrameQueue(str(tmp_path / "nodes" / ("%04x" % node.id) / "queue"), 256)
        waiting = {(b, s) for b, s, _k, _f in queue.pending(1000)}
        queue.close()
        every = set(kept) | waiting
        assert {s for _, s in every} == set(range(1, len(every) + 1)), "a frame went missing"
        assert len({b for b, _ in every}) == 1
        assert len(kept) >= len(every) // 2
        created += len(every)
    assert created == summary.frames
    # the link broke on the way (the broker sent wills) and the nodes came back
    assert any(r.type == "death" for r in rows)
    for r in rows:
        f = wire.decode(r.raw, keys.derive(desk.master_key, r.node))
        assert (f.node, f.seq) == (r.node, r.seq)
