"""TLS on the line's broker as provisioning sets it up: Mosquitto from the generated config
(both listeners TLS only), the real aggregator (gmqtt) on the commission's listener with the
line's CA, and the firmware's MQTT client on the real MicroPython unix port (-X heapsize=128K)
on the nodes' listener: its heartbeats are stored and acked over TLS. A node given another CA
refuses the broker and says why."""
from __future__ import annotations

import json
import queue
import signal
import threading
import time
import subprocess
import sys

import pytest

from linewatch.commission.registry import Registry
from linewatch.commission.store import open_store
from linewatch.keys import create_master_key
from linewatch.mosquitto import Mosquitto, free_port, wait_for_port
from linewatch.testing import micropython as mp
from lwtools.provision import NodeSpec, provision
from lwtools.tls import CertificateAuthority

NODE, SEGMENT = 0x0102, 3

NODE_SCRIPT = r'''
import sys, gc, json, asyncio
from lwnode import mqtt, tls
from lwproto import const, frame, topic

cfg = json.load(open(sys.argv[1]))
b = cfg["broker"]
key = bytes.fromhex(cfg["key"])
acked = [0]


def heartbeat(seq):
    return frame.encode(key, const.HEARTBEAT, cfg["node"], 7, seq, 1795000000000000 + seq, const.CLOCK_NTP, 900,
                        {"battery_mv": 3900, "temperature_c": 10.0, "uptime_s": seq, "rssi_dbm": -60,
                         "queue_depth": 0, "free_memory": 50000, "detections": 0, "dropped": 0,
                         "reconnects": 0, "refused_commands": 0, "radio_ms": 0, "slept_s": 0,
                         "heartbeat_s": 60, "power": 0})


def on_message(t, payload):
    f = frame.decode(payload, key)
    if f.ftype == const.ACK:
        acked[0] = max(acked[0], f.field("seq"))


async def main():
    gc.collect()
    before = gc.mem_alloc()
    client = mqtt.MQTTClient("lw-%04x" % cfg["node"], b["host"], b["port"], 30, clean_session=False,
                             user=b["user"], password=b["password"], on_message=on_message,
                             ssl=tls.context(b["ca"]))
    try:
        await client.connect()
    except mqtt.MQTTError as exc:
        print("REFUSED", exc)
        return
    gc.collect()
    print("TLS_HEAP", gc.mem_alloc() - before)
    await client.subscribe(topic.downlink(cfg["segment"], cfg["node"]), 1)
    for seq in (1, 2, 3):
        await client.publish(topic.uplink(cfg["segment"], cfg["node"], const.HEARTBEAT), heartbeat(seq), 1)
    for _ in range(600):
        if acked[0] >= 3:
            break
        await asyncio.sleep(0.05)
    print("ACKED", acked[0])
    await client.disconnect()

asyncio.run(main())
'''


@pytest.fixture
def line(tmp_path):
    """One node provisioned with TLS; Mosquitto from the generated config; the aggregator's
    config on the commission's listener with the line's CA."""
    master = create_master_key(tmp_path / "master.key")
    registry = Registry.open(tmp_path / "lw.db")
    try:
        done = provision(NodeSpec(node=NODE, segment=SEGMENT, lat=48.5, lon=37.9, board="unix",
                                  broker_host="127.0.0.1", broker_port=free_port(), commission_port=free_port()),
                         registry, master, tmp_path / "provisioned", progress=lambda *_: None)
    finally:
        registry.store.close()
    assert master
    commission = json.loads(done.commission_credentials.read_text())
    node = json.loads(done.config_path.read_text())
    (tmp_path / "aggregator.toml").write_text(
        '[broker]\nhost = "127.0.0.1"\nport = %d\nca_file = "%s"\nusername = "commission"\npassword = "%s"\n'
        'client_id = "agg-tls"\nconnect_retries = 20\nretry_delay_s = 0.5\n\n[store]\npath = "lw.db"\n'
        '[keys]\nmaster_key_file = "master.key"\n' % (commission["port"], commission["ca"], commission["password"]))
    with Mosquitto(port=node["broker"]["port"], workdir=tmp_path / "broker", persistence=False,
                   listeners=done.mosquitto_conf.read_text()) as broker:
        wait_for_port("127.0.0.1", commission["port"])
        yield tmp_path, node, broker


def run_node(tmp_path, config: dict) -> str:
    (tmp_path / "node.json").write_text(json.dumps(config))
    script = tmp_path / "node_tls.py"
    script.write_text(NODE_SCRIPT)
    result = mp.run(script, str(tmp_path / "node.json"), heap="128K", timeout=120)
    return result.stdout + result.stderr


def test_node_and_aggregator_talk_over_tls_only(line, micropython):
    tmp_path, node, broker = line
    service = subprocess.Popen([sys.executable, "-m", "linewatch.cli", "-v", "aggregator", "--config",
                                str(tmp_path / "aggregator.toml")], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in service.stdout], daemon=True).start()
    log = []
    try:
        while not any("subscribed" in x or "connected to broker" in x for x in log):
            log.append(lines.get(timeout=60))
        time.sleep(1)     # its subscription is in before the node publishes
        out = run_node(tmp_path, node)
        assert "ACKED 3" in out, out
        heap = int(out.split("TLS_HEAP")[1].split()[0])
        print("TLS connection's share of the GC heap on the unix port: %d bytes" % heap)
        # another CA: the node refuses the broker, and says it was TLS
        other = CertificateAuthority.load_or_create(tmp_path / "other-ca")
        refused = run_node(tmp_path, {**node, "broker": {**node["broker"], "ca": other.pem}})
        assert "REFUSED" in refused and "(TLS)" in refused, refused
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
    assert any("connected to broker" in x for x in log), log
    store = open_store(str(tmp_path / "lw.db"))
    try:
        stored = store.frames_after(0, [NODE])
    finally:
        store.close()
    assert sorted((r.boot, r.seq) for r in stored) == [(7, 1), (7, 2), (7, 3)]
