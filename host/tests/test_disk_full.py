"""A full disk (issue 12, defect 6): at start and while running, the service ends with one
clear message and the documented exit code (4: database not writable), never a traceback, never
"stopped cleanly", and nothing is acknowledged that was not committed: the node keeps (and
later resends) every frame the commission did not store.

The disk is filled for the service's process alone with RLIMIT_FSIZE: a write past the limit
fails with EFBIG as it would with ENOSPC on a full disk (SQLite reports either as a failed
write), without root or a filesystem of its own."""
from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys

from lwnode.mqtt import MQTTClient
from lwproto import const, frame as wire, topic as topics
from linewatch import keys
from linewatch.commands.aggregator import EXIT_STORE
from linewatch.commission.registry import Registry
from linewatch.commission.store import open_store

SEGMENT, NODE, BOOT = 2, 0x0201, 6


def event(key, seq):
    return wire.encode(key, const.EVENT, NODE, BOOT, seq, 1795000000000000 + seq, const.CLOCK_GPS_PPS, 3,
                       {"event_class": 1, "confidence": 0.9, "onset_offset_us": 0, "peak_db": -10.0,
                        "duration_ms": 100, "frequency_hz": 90, "snr_db": 20.0})


def setup(tmp_path, broker):
    master = keys.create_master_key(tmp_path / "master.key")
    db = tmp_path / "lw.db"
    store = open_store(str(db))
    Registry(store).add(NODE, SEGMENT, 48.0, 37.0)
    store.close()
    config = tmp_path / "aggregator.toml"
    config.write_text(f'[broker]\nhost = "{broker.host}"\nport = {broker.port}\nclient_id = "agg-full"\n'
                      f'connect_retries = 0\n[store]\npath = "lw.db"\nbatch_max = 20\n'
                      f'[keys]\nmaster_key_file = "master.key"\n[acks]\ninterval_ms = 20\n')
    return master, db, config


def start(config, limit_bytes):
    def fill_the_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return subprocess.Popen([sys.executable, "-m", "linewatch.cli", "aggregator", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=fill_the_disk, start_new_session=True)


def assert_one_clear_message(err: str, out: str):
    text = err + out
    assert "Traceback" not in text, text
    assert "stopped cleanly" not in text, text
    lines = [line for line in err.splitlines() if line.startswith("linewatch aggregator:")]
    assert len(lines) == 1, err
    assert "lw.db" in lines[0] and ("full" in lines[0] or "write" in lines[0]), lines


def test_full_disk_at_start_exits_4_with_one_message(tmp_path, mosquitto):
    _, db, config = setup(tmp_path, mosquitto)
    reader = open_store(str(db), readonly=True)   # an operator's command: the WAL's files exist
    try:
        service = start(config, 2048)      # not one page more: the WAL's first frame does not fit
        out, err = service.communicate(timeout=60)
    finally:
        reader.close()
    assert service.returncode == EXIT_STORE, (service.returncode, err)
    assert_one_clear_message(err, out)


async def test_full_disk_while_running_acks_only_what_was_committed(tmp_path, mosquitto):
    master, db, config = setup(tmp_path, mosquitto)
    key = keys.derive(master, NODE)
    acked = []

    def on_message(topic, payload):
        f = wire.decode(payload, key)
        if f.ftype == const.ACK:
            acked.append(f.field("seq"))

    service = start(config, os.path.getsize(db) + 96 * 1024)   # room for a few batches
    for _ in range(200):      # subscribed: its first evidence head is written right after
        if (tmp_path / "lw.db-head.json").exists() or service.poll() is not None:
            break
        await asyncio.sleep(0.05)
    node = MQTTClient("lw-0201", mosquitto.host, mosquitto.port, clean_session=False, on_message=on_message)
    await node.connect()
    await node.subscribe(topics.downlink(SEGMENT, NODE), 1)
    seq = 0
    try:
        # a first batch, acked before the flood (the service acks every 200 ms of its own: on a
        # quiet machine the flood filled the disk before the first ack, and the acked <=
        # committed check below had nothing to check)
        for seq in range(1, 11):
            await node.publish(topics.uplink(SEGMENT, NODE, const.EVENT), event(key, seq), 1)
        for _ in range(600):
            if acked or service.poll() is not None:
                break
            await asyncio.sleep(0.05)
        while service.poll() is None and seq < 20000:
            seq += 1
            await node.publish(topics.uplink(SEGMENT, NODE, const.EVENT), event(key, seq), 1)
            if seq % 50 == 0:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        out, err = service.communicate(timeout=60)
    finally:
        if service.poll() is None:
            service.kill()
        await node.disconnect()
    assert service.returncode == EXIT_STORE, (service.returncode, err[-2000:])
    assert_one_clear_message(err, out)
    store = open_store(str(db), readonly=True)
    stored = sorted(r.seq for r in store.evidence() if r.kind == "frame")
    store.close()
    assert stored and stored == list(range(1, len(stored) + 1)), "stored frames are not a prefix"
    assert acked, "nothing was acked before the disk filled"
    assert max(acked) <= len(stored), f"acked seq {max(acked)} with only {len(stored)} frames committed"
