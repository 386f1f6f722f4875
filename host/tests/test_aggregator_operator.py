"""What an operator sees: the commission's retained online/offline state (its last will),
`frames tail`, `stats` and `nodes status`, against a real Mosquitto and the real service."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import time

import paho.mqtt.client as paho

from lwproto import const, frame as wire, topic as topics
from linewatch import keys
from linewatch.commission.registry import Registry
from linewatch.commission.store import open_store

SEGMENT, NODE, BOOT = 2, 0x0201, 3


def heartbeat(key, seq):
    return wire.encode(key, const.HEARTBEAT, NODE, BOOT, seq, 1795000000000000 + seq, const.CLOCK_NTP, 900,
                       {"battery_mv": 3900, "temperature_c": 10.0, "uptime_s": seq, "rssi_dbm": -60,
                        "queue_depth": 0, "free_memory": 50000, "detections": 0, "dropped": 0,
                        "reconnects": 0, "refused_commands": 0, "radio_ms": 0, "slept_s": 0,
                        "heartbeat_s": 60, "power": 0})


def linewatch(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "linewatch.cli", *args], capture_output=True, text=True,
                          timeout=60, **kwargs)


def retained_state(broker, master) -> int:
    """The state frame retained on lw/commission/state, verified with the commission's key."""
    got: queue.Queue = queue.Queue()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.put(m.payload)
    client.connect(broker.host, broker.port)
    client.subscribe(topics.COMMISSION_STATE, 1)
    client.loop_start()
    try:
        payload = got.get(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()
    f = wire.decode(payload, keys.derive(master, const.COMMISSION_NODE))
    assert f.ftype == const.STATE and f.node == const.COMMISSION_NODE
    return f.field("state")


def test_operator_view_and_the_commissions_last_will(tmp_path, mosquitto):
    master = keys.create_master_key(tmp_path / "master.key")
    store = open_store(str(tmp_path / "lw.db"))
    Registry(store).add(NODE, SEGMENT, 48.0, 37.0)
    config = tmp_path / "aggregator.toml"
    config.write_text(f'[broker]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nclient_id = "agg-op"\n'
                      f'[store]\npath = "lw.db"\n[keys]\nmaster_key_file = "master.key"\n')
    log = open(tmp_path / "aggregator.log", "w")
    service = subprocess.Popen([sys.executable, "-m", "linewatch.cli", "aggregator", "--config", str(config)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    tail = None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if retained_state(mosquitto, master) == const.ONLINE:
                    break
            except Exception:
                time.sleep(0.2)
        assert retained_state(mosquitto, master) == const.ONLINE

        tail = subprocess.Popen([sys.executable, "-m", "linewatch.cli", "frames", "--config", str(config),
                                 "tail", "--count", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        ready = tail.stderr.readline()     # frames are not retained: publish once it has subscribed
        assert "listening on" in ready, ready
        node = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="node-0201")
        node.connect(mosquitto.host, mosquitto.port)
        node.loop_start()
        key = keys.derive(master, NODE)
        for seq in (1, 2):
            node.publish(topics.uplink(SEGMENT, NODE, const.HEARTBEAT), heartbeat(key, seq), qos=1).wait_for_publish(5)
        node.loop_stop()
        node.disconnect()
        out, err = tail.communicate(timeout=20)
        assert tail.returncode == 0, err
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 2, out                  # --count is exact
        # the second line may be heartbeat 2 or the commission's ack of heartbeat 1
        assert "heartbeat node=0x0201 boot=3 seq=1" in lines[0], out
        assert all("tag_ok" in line for line in lines), out

        deadline = time.monotonic() + 10
        while store.frames_since(0) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = linewatch("stats", "--config", str(config))
        assert stats.returncode == 0, stats.stderr
        assert "frames stored: 2" in stats.stdout and "heartbeat" in stats.stdout
        status = linewatch("nodes", "--config", str(config), "status")
        assert status.returncode == 0, status.stderr
        row = [line for line in status.stdout.splitlines() if line.startswith("0x0201")]
        assert row and "online" in row[0] and "3900" in row[0], status.stdout

        os.killpg(service.pid, signal.SIGKILL)     # no goodbye: the broker publishes the will
        service.wait()
        deadline = time.monotonic() + 10
        while retained_state(mosquitto, master) != const.OFFLINE and time.monotonic() < deadline:
            time.sleep(0.2)
        assert retained_state(mosquitto, master) == const.OFFLINE
    finally:
        if tail and tail.poll() is None:
            tail.kill()
        if service.poll() is None:
            os.killpg(service.pid, signal.SIGKILL)
            service.wait()
        log.close()
