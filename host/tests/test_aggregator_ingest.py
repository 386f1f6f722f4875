"""The aggregator in-process against a real Mosquitto, fed by the node's own MQTT client."""
from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from dataclasses import replace

import pytest

from lwnode.mqtt import MQTTClient
from lwproto import auth, const, frame as wire, topic as topics
from linewatch import cli, keys
from linewatch.commission.service import Aggregator
from linewatch.commission.config import AcksConfig, Config, HealthConfig, StoreConfig
from linewatch.commission.registry import Registry
from linewatch.commission.store import open_store

SEGMENT = 3
NODE = 0x0102
OTHER = 0x0103
T0 = 1795000000000000


def event(key, node, boot, seq, cls=const.EXPLOSION):
    return wire.encode(key, const.EVENT, node, boot, seq, T0 + seq * 1000, const.CLOCK_GPS_PPS, 3,
                       {"event_class": cls, "confidence": 0.9, "onset_offset_us": -100, "peak_db": -10.0,
                        "duration_ms": 100, "frequency_hz": 90, "snr_db": 20.0})


def birth(key, node, boot, seq, lat=48.0, lon=37.0):
    return wire.encode(key, const.BIRTH, node, boot, seq, T0, const.CLOCK_GPS_PPS, 3,
                       {"fw_major": 0, "fw_minor": 1, "fw_patch": 0, "board": 4, "segment": SEGMENT,
                        "lat": lat, "lon": lon, "alt_m": 100, "position_error_m": 5, "sensors": 15,
                        "capabilities": 16, "sample_rate_hz": 16000})


class Node:
    """A node as the broker sees it: the firmware's MQTT client, downlink subscribed."""

    def __init__(self, broker, master, node=NODE):
        self.node = node
        self.key = keys.derive(master, node)
        self.downlink: list[wire.Frame] = []
        self.client = MQTTClient("node-%04x" % node, broker.host, broker.port, keepalive=30,
                                 on_message=self._on_message)

    def _on_message(self, topic, payload):
        self.downlink.append(wire.decode(payload, self.key))

    async def start(self):
        await self.client.connect()
        await self.client.subscribe(topics.downlink(SEGMENT, self.node), 1)

    async def send(self, data, kind=None, node=None):
        ftype = wire.peek(data)[0] if kind is None else kind
        await self.client.publish(topics.uplink(SEGMENT, self.node if node is None else node, ftype), data, 1)

    def acks(self):
        return [f.fields() for f in self.downlink if f.ftype == const.ACK]


async def wait_for(condition, timeout=10.0):
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in %.0f s" % timeout)


@pytest.fixture
def desk(tmp_path, mosquitto):
    master_path = tmp_path / "master.key"
    master = keys.create_master_key(master_path)
    db = str(tmp_path / "lw.db")
    store = open_store(db)
    registry = Registry(store)
    registry.add(NODE, SEGMENT, 48.0, 37.0, 100)
    registry.add(OTHER, SEGMENT, 48.001, 37.001, 100)
    config = Config()
    config = replace(config, broker=replace(config.broker, host=mosquitto.host, port=mosquitto.port,
                                            client_id="agg-test", connect_retries=0),
                     store=StoreConfig(path=db),
                     keys=replace(config.keys, master_key_file=str(master_path)),
                     acks=AcksConfig(interval_ms=50, resend_interval_s=0.3, resend_tries=2),
                     health=HealthConfig(tick_s=0.1))
    return config, master, store


async def run_aggregator(config, master, store):
    stop = asyncio.Event()
    aggregator = Aggregator(config, master, store)
    await aggregator.start()
    task = asyncio.create_task(aggregator.serve(stop))
    return aggregator, stop, task


async def stop_aggregator(aggregator, stop, task):
    stop.set()
    await task
    await aggregator.shutdown()


async def test_frames_stored_once_bad_frames_refused_acks_reach_node(desk, mosquitto):
    config, master, store = desk
    aggregator, stop, task = await run_aggregator(config, master, store)
    node = Node(mosquitto, master)
    await node.start()
    key, boot = node.key, 7
    await node.send(birth(key, NODE, boot, 1))
    for seq in range(2, 6):
        await node.send(event(key, NODE, boot, seq))
    other_key = keys.derive(master, OTHER)
    stranger = 0x0999
    await node.send(event(b"\x01" * 32, NODE, boot, 6))                       # forged
    await node.send(event(key, NODE, boot, 3))                                # replayed
    await node.send(event(key, NODE, boot, 6)[:20], kind=const.EVENT)         # truncated
    await node.send(bytes(wire.MAX_FRAME_SIZE + 10), kind=const.EVENT)        # oversized
    await node.send(event(other_key, OTHER, 1, 1), kind=const.EVENT)          # OTHER's frame on NODE's topic
    await node.send(event(keys.derive(master, stranger), stranger, 1, 1), node=stranger)  # unknown node
    for seq in range(6, 9):                                                   # still ingesting
        await node.send(event(key, NODE, boot, seq))

    await wait_for(lambda: sum(store.counts_by_type().values()) == 8 and sum(store.refusals_by_reason().values()) == 6)
    assert store.counts_by_type() == {"birth": 1, "event": 7}
    assert store.refusals_by_reason() == {"bad_tag": 1, "replay": 1, "truncated": 1, "oversized": 1,
                                          "wrong_topic": 1, "unknown_node": 1}
    seqs = [(r.node, r.boot, r.seq) for r in store.evidence() if r.kind == "frame"]
    assert seqs == [(NODE, boot, s) for s in range(1, 9)]
    assert all(r.raw for r in store.refusals())
    await wait_for(lambda: node.acks() and node.acks()[-1] == {"boot": boot, "seq": 8})
    # downlink frames carry the commission's own counters, strictly growing
    down = [(f.boot, f.seq) for f in node.downlink]
    assert down == sorted(set(down)) and all(b == aggregator.boot for b, _ in down)
    await node.client.disconnect()
    await stop_aggregator(aggregator, stop, task)


async def test_gap_asks_resend_then_gives_up_and_ack_advances(desk, mosquitto):
    config, master, store = desk
    aggregator, stop, task = await run_aggregator(config, master, store)
    node = Node(mosquitto, master)
    await node.start()
    for seq in (1, 2, 5):
        await node.send(event(node.key, NODE, 1, seq))
    await wait_for(lambda: any(f.ftype == const.COMMAND for f in node.downlink))
    command = [f for f in node.downlink if f.ftype == const.COMMAND][0].fields()
    assert (command["command"], command["boot"], command["first_seq"], command["last_seq"]) == \
        (const.CMD_RESEND, 1, 3, 4)
    # the ack and the resend command are two publishes: under load the ack may come second
    await wait_for(lambda: node.acks() and node.acks()[-1] == {"boot": 1, "seq": 2})
    await node.send(event(node.key, NODE, 1, 3))          # one of two comes back; 4 never does
    # a try counts once the node has been heard after it: this one sends its next event after
    # every resend command (a live node's heartbeats would do the same)
    seq, tries = 5, 1
    for _ in range(int(10 / 0.02)):
        if node.acks()[-1]["seq"] == seq:
            break
        commands = sum(f.ftype == const.COMMAND for f in node.downlink)
        if commands > tries:
            tries, seq = commands, seq + 1
            await node.send(event(node.key, NODE, 1, seq))
        await asyncio.sleep(0.02)
    assert node.acks()[-1] == {"boot": 1, "seq": seq}
    lost = [json.loads(r.note) for r in store.evidence() if r.type == "lost"]
    assert lost == [{"boot": 1, "first_seq": 4, "last_seq": 4, "why": "no answer to 2 resend requests"}]
    await node.client.disconnect()
    await stop_aggregator(aggregator, stop, task)


async def test_health_changes_are_stored_and_alerted(desk, mosquitto):
    config, master, store = desk
    alerts: list[dict] = []
    watcher = MQTTClient("watcher", mosquitto.host, mosquitto.port,
                         on_message=lambda t, p: alerts.append(json.loads(p)))
    await watcher.connect()
    await watcher.subscribe("lw/alerts/#", 1)
    aggregator, stop, task = await run_aggregator(config, master, store)
    node = Node(mosquitto, master)
    await node.start()
    await node.send(birth(node.key, NODE, 1, 1))
    await node.send(event(node.key, NODE, 1, 2, cls=const.TAMPER))
    await wait_for(lambda: any(a.get("new") == "tampered" for a in alerts))
    assert [h.state for h in store.health() if h.node == NODE] == ["tampered"]
    assert alerts[-1]["node"] == "0x0102" and alerts[-1]["why"] == "tamper event"
    await node.client.disconnect()
    await watcher.disconnect()
    await stop_aggregator(aggregator, stop, task)


async def test_evidence_verify_names_the_edited_row(desk, mosquitto, capsys):
    config, master, store = desk
    aggregator, stop, task = await run_aggregator(config, master, store)
    node = Node(mosquitto, master)
    await node.start()
    for seq in range(1, 6):
        await node.send(event(node.key, NODE, 1, seq))
    await wait_for(lambda: sum(store.counts_by_type().values()) == 5)
    await node.client.disconnect()
    await stop_aggregator(aggregator, stop, task)
    argv = ["evidence", "--db", config.store.path, "--master-key", config.keys.master_key_file, "verify"]
    assert cli.main(argv) == 0
    assert "OK, 5 rows" in capsys.readouterr().out
    db = sqlite3.connect(config.store.path)
    db.execute("DROP TRIGGER evidence_no_update")     # what an intruder with the file could do
    db.execute("UPDATE evidence SET received_us = received_us + 1 WHERE id = 3")
    db.commit()
    db.close()
    assert cli.main(argv) == 1
    assert "BROKEN at row 3" in capsys.readouterr().out


def test_master_key_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "master.key"
    keys.create_master_key(path)
    assert (os.stat(path).st_mode & 0o777) == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(keys.KeyFileError, match="chmod 600"):
        keys.load_master_key(path)
