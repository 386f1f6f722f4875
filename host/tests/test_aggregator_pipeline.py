"""The serve loop commits a round in a writer thread while it checks the next one: an ack
must still name only frames already committed, every frame lands once, in order, and the
registry can be read while a commit is in flight (WAL: separate reader and writer)."""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

from lwproto import const, frame as wire, topic as topics
from linewatch import keys
from linewatch.commission.service import Aggregator
from linewatch.commission.alerts import Alerter
from linewatch.commission.config import AcksConfig, Config, StoreConfig
from linewatch.commission.registry import Registry
from linewatch.commission.store import FRAME, open_store

SEGMENT = 4
NODES = (0x0401, 0x0402)
T0 = 1795000000000000


def event(key, node, seq):
    return wire.encode(key, const.EVENT, node, 1, seq, T0 + seq, const.CLOCK_GPS_PPS, 3,
                       {"event_class": 1, "confidence": 0.5, "onset_offset_us": 0, "peak_db": -10.0,
                        "duration_ms": 10, "frequency_hz": 50, "snr_db": 10.0})


class SlowStore:
    """The real store with a slow disk: commits take a while and are noted when done."""

    def __init__(self, store):
        self.store = store
        self.stored: dict[int, int] = {}   # node -> highest seq committed
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def commit(self, batch):
        time.sleep(0.03)
        ids = self.store.commit(batch)
        with self.lock:
            self.threads.add(threading.current_thread().name)
            for row in batch.evidence:
                if row.kind == FRAME:
                    self.stored[row.node] = max(self.stored.get(row.node, 0), row.seq)
        return ids

    def __getattr__(self, name):
        return getattr(self.store, name)


class FakeLink:
    """What the serve loop needs of the MQTT link: a queue in, publishes out."""

    def __init__(self, store: SlowStore, node_keys):
        self.queue: list = []
        self.store, self.node_keys = store, node_keys
        self.acks: list[tuple[int, int, int]] = []   # (node, acked seq, committed seq then)

    async def wait(self, timeout=None):
        if not self.queue:
            await asyncio.sleep(timeout or 0)
        return bool(self.queue)

    def take(self, limit):
        out, self.queue = self.queue[:limit], self.queue[limit:]
        return out

    def publish(self, topic, data, qos=1, retain=False):
        if not topic.endswith("/" + topics.DOWN):
            return   # the commission's state and evidence head
        ftype, node = wire.peek(data)
        if ftype == const.ACK:
            ack = wire.decode(data, self.node_keys[node]).fields()
            with self.store.lock:
                self.acks.append((node, ack["seq"], self.store.stored.get(node, 0)))


async def test_acks_name_only_committed_frames_while_the_next_round_is_checked(tmp_path):
    master = keys.create_master_key(tmp_path / "master.key")
    db = str(tmp_path / "lw.db")
    real = open_store(db)
    registry = Registry(real)
    for node in NODES:
        registry.add(node, SEGMENT, 48.0, 37.0)
    config = Config()
    config = replace(config, store=StoreConfig(path=db, batch_max=50), acks=AcksConfig(interval_ms=5))
    store = SlowStore(real)
    aggregator = Aggregator(config, master, store)
    aggregator._setup()
    node_keys = {n: aggregator.ingest.key_of(n) for n in NODES}
    link = aggregator.link = FakeLink(store, node_keys)
    aggregator.alerter = Alerter(config.alerts, lambda t, d: None)
    stop = asyncio.Event()
    task = asyncio.create_task(aggregator.serve(stop))
    for chunk in range(8):
        link.queue += [(topics.uplink(SEGMENT, n, const.EVENT), event(node_keys[n], n, chunk * 30 + i + 1), T0)
                       for i in range(30) for n in NODES]
        await asyncio.sleep(0.01)
        assert aggregator.registry.get(NODES[0]) is not None   # reads beside the writer
    for _ in range(300):
        if aggregator.frames_committed == 480 and all(n in [a[0] for a in link.acks if a[1] == 240] for n in NODES):
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert aggregator.frames_committed == 480
    assert link.acks, "no ack was sent"
    for node, acked, committed in link.acks:
        assert acked <= committed, f"node 0x{node:04x} acked seq {acked} with only {committed} committed"
    assert {node for node, acked, _ in link.acks if acked == 240} == set(NODES)
    assert any(name.startswith("linewatch-store") for name in store.threads)
    rows = [r for r in real.evidence() if r.kind == FRAME]
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    for node in NODES:
        assert [r.seq for r in rows if r.node == node] == list(range(1, 241))
    real.close()
