"""Garbage cannot fill the commission's disk nor its log (issue 12, defect 4): quarantine keeps
at most so many refused frames per (reason, publishing client) and in total, and counts the
rest; refusal log lines are limited per reason and per publishing client (the topic's node:
the broker's ACL ties each client to its own topics), not per node id written inside the
garbage. Real service, real Mosquitto, three attackers."""
from __future__ import annotations

import random
import subprocess
import sys
import time

import paho.mqtt.client as paho

from lwproto import const, frame as wire, topic as topics
from linewatch import keys
from linewatch.commission.registry import Registry
from linewatch.commission.store import open_store

SEGMENT, NODE, OTHER = 3, 0x0102, 0x0103
PER_SOURCE, TOTAL = 20, 150
GARBAGE, BAD_TOPICS, OVERSIZED = 5000, 2000, 2000


def publisher(broker, name):
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name)
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def test_a_garbage_flood_is_counted_but_kept_and_logged_only_so_much(tmp_path, mosquitto):
    master = keys.create_master_key(tmp_path / "master.key")
    db = tmp_path / "lw.db"
    store = open_store(str(db))
    registry = Registry(store)
    registry.add(NODE, SEGMENT, 48.0, 37.0)
    registry.add(OTHER, SEGMENT, 48.001, 37.0)
    config = tmp_path / "aggregator.toml"
    config.write_text(f'[broker]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nclient_id = "agg-q"\n'
                      f'[store]\npath = "lw.db"\n[keys]\nmaster_key_file = "master.key"\n'
                      f'[ingest]\nquarantine_per_source = {PER_SOURCE}\nquarantine_total = {TOTAL}\n')
    log_path = tmp_path / "aggregator.log"
    log = open(log_path, "w")
    service = subprocess.Popen([sys.executable, "-m", "linewatch.cli", "-v", "aggregator", "--config", str(config)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    rnd = random.Random(12)
    try:
        for _ in range(200):
            if b"listening on" in log_path.read_bytes():
                break
            time.sleep(0.05)
        a, b, c = publisher(mosquitto, "attacker-a"), publisher(mosquitto, "attacker-b"), publisher(mosquitto, "c")
        for _ in range(GARBAGE):           # a compromised node's own topic, any node id inside
            body = bytes([0x11]) + rnd.randbytes(rnd.randint(27, 50))
            a.publish(topics.uplink(SEGMENT, NODE, const.EVENT), body, 1)
        for n in range(BAD_TOPICS):
            b.publish("lw/%d/junk%d/event" % (SEGMENT, n), rnd.randbytes(42), 1)
        for _ in range(OVERSIZED):
            c.publish(topics.uplink(SEGMENT, OTHER, const.EVENT), rnd.randbytes(10_000), 1)
        good = wire.encode(keys.derive(master, OTHER), const.EVENT, OTHER, 1, 1, 1795000000000000,
                           const.CLOCK_GPS_PPS, 3, {"event_class": 1, "confidence": 0.9, "onset_offset_us": 0,
                                                    "peak_db": -10.0, "duration_ms": 100, "frequency_hz": 90,
                                                    "snr_db": 20.0})
        c.publish(topics.uplink(SEGMENT, OTHER, const.EVENT), good, 1).wait_for_publish(30)
        total = GARBAGE + BAD_TOPICS + OVERSIZED
        for _ in range(600):
            if sum(store.refusals_by_reason().values()) >= total and store.frames_since(0) == 1:
                break
            time.sleep(0.1)
        for client in (a, b, c):
            client.loop_stop()
            client.disconnect()
        refused = store.refusals_by_reason()
        assert sum(refused.values()) == total, refused          # every refusal counted
        assert store.frames_since(0) == 1                      # and the commission still listens
        kept = store.db.execute("SELECT reason, topic, length(raw) FROM quarantine").fetchall()
        assert len(kept) <= TOTAL, len(kept)
        per_source: dict = {}
        for reason, topic, size in kept:
            per_source[(reason, topic if reason != "bad_topic" else "?")] = \
                per_source.get((reason, topic if reason != "bad_topic" else "?"), 0) + 1
            assert size <= wire.MAX_FRAME_SIZE, (reason, size)   # an oversized frame's head only
        assert max(per_source.values()) <= PER_SOURCE, per_source
        assert sum(store.quarantine_dropped().values()) == total - len(kept)
        assert db.stat().st_size < 2_000_000, db.stat().st_size
        stats = subprocess.run([sys.executable, "-m", "linewatch.cli", "stats", "--config", str(config)],
                               capture_output=True, text=True, timeout=60).stdout
        assert "not kept" in stats, stats
    finally:
        service.terminate()
        service.wait(timeout=20)
        log.close()
        store.close()
    lines = [line for line in log_path.read_text().splitlines() if "refused " in line]
    assert len(lines) <= 12, "\n".join(lines[:30])      # a few reasons x three clients
