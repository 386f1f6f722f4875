"""SIGKILL the aggregator in the middle of a stream: after restart every frame is stored
exactly once (persistent session + the node resending what was not acked + dedup)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from lwnode.mqtt import MQTTClient
from lwproto import const, frame as wire, topic as topics
from linewatch import keys
from linewatch.commands.evidence import verify
from linewatch.commission.registry import Registry
from linewatch.commission.store import open_store

SEGMENT, NODE, BOOT, TOTAL = 2, 0x0201, 5, 400


def frame(key, seq):
    return wire.encode(key, const.HEARTBEAT, NODE, BOOT, seq, 1795000000000000 + seq, const.CLOCK_NTP, 900,
                       {"battery_mv": 3900, "temperature_c": 10.0, "uptime_s": seq, "rssi_dbm": -60,
                        "queue_depth": 0, "free_memory": 50000, "detections": 0, "dropped": 0,
                        "reconnects": 0, "refused_commands": 0, "radio_ms": 0, "slept_s": 0,
                        "heartbeat_s": 60, "power": 0})


def start(config_path, log):
    return subprocess.Popen([sys.executable, "-m", "linewatch.cli", "aggregator", "--config", str(config_path)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(tmp_path, mosquitto):
    master = keys.create_master_key(tmp_path / "master.key")
    db = tmp_path / "lw.db"
    store = open_store(str(db))
    Registry(store).add(NODE, SEGMENT, 48.0, 37.0)
    config = tmp_path / "aggregator.toml"
    config.write_text(f'[broker]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nclient_id = "agg-restart"\n'
                      f'[store]\npath = "lw.db"\nbatch_max = 50\n[keys]\nmaster_key_file = "master.key"\n'
                      f'[acks]\ninterval_ms = 50\n')
    key = keys.derive(master, NODE)
    unacked = {seq: frame(key, seq) for seq in range(1, TOTAL + 1)}

    def on_message(topic, payload):   # the node's durable queue: drop what the commission acked
        f = wire.decode(payload, key)
        if f.ftype == const.ACK and f.field("boot") == BOOT:
            for seq in [s for s in unacked if s <= f.field("seq")]:
                del unacked[seq]

    node = MQTTClient("node-0201", mosquitto.host, mosquitto.port, on_message=on_message)
    await node.connect()
    await node.subscribe(topics.downlink(SEGMENT, NODE), 1)
    uplink = topics.uplink(SEGMENT, NODE, const.HEARTBEAT)
    log = open(tmp_path / "aggregator.log", "w")
    aggregator = start(config, log)
    try:
        for _ in range(200):   # until the service has stored something
            if store.frames_since(0) > 0:
                break
            await node.publish(uplink, unacked[1], 1)
            await asyncio.sleep(0.05)
        for seq in range(2, TOTAL + 1):
            await node.publish(uplink, unacked[seq], 1)
            if seq == TOTAL // 2:
                os.killpg(aggregator.pid, signal.SIGKILL)   # mid-stream: no goodbye, no flush
                aggregator.wait()
        assert store.frames_since(0) < TOTAL
        aggregator = start(config, log)
        for _ in range(60):   # the node resends whatever is still unacked, like its flash queue
            if not unacked:
                break
            await asyncio.sleep(0.5)
            for seq in sorted(unacked)[:100]:
                pending = unacked.get(seq)     # an ack may arrive while we publish
                if pending is not None:
                    await node.publish(uplink, pending, 1)
        assert not unacked, f"{len(unacked)} frames never acked: {sorted(unacked)[:10]}"
    finally:
        aggregator.send_signal(signal.SIGTERM)
        assert aggregator.wait(timeout=20) == 0
        await node.disconnect()
        log.close()
    seqs = [r.seq for r in store.evidence() if r.kind == "frame"]
    assert sorted(seqs) == list(range(1, TOTAL + 1))      # each exactly once
    assert verify(store, master) == (TOTAL, None)
