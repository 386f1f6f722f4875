"""`linewatch provision`: registry, 0600 board config with the derived key, and a broker ACL that a
real Mosquitto enforces (a node publishes only its own uplinks and reads only its own downlink)."""
import json
import queue
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from linewatch.keys import create_master_key
from linewatch.commission.registry import Registry
from linewatch.mosquitto import Mosquitto, free_port
from lwproto.auth import derive_node_key
from lwtools import broker_access
from lwtools.provision import NodeSpec, ProvisionError, provision

LINEWATCH = str(Path(sys.executable).parent / "linewatch")
QUIET = lambda *_: None  # noqa: E731


@pytest.fixture
def books(tmp_path):
    master = create_master_key(tmp_path / "master.key")
    registry = Registry.open(tmp_path / "registry.db")
    yield master, registry, tmp_path / "provisioned"
    registry.store.close()


def spec(node, segment=3, **kw):
    base = dict(node=node, segment=segment, lat=48.5, lon=37.9, board="unix", broker_host="127.0.0.1")
    base.update(kw)
    return NodeSpec(**base)


def test_the_board_config_holds_the_derived_key_and_only_its_owner_reads_it(books):
    master, registry, out = books
    done = provision(spec(0x0102, alt_m=120.0), registry, master, out, progress=QUIET)
    assert stat.S_IMODE(done.config_path.stat().st_mode) == 0o600
    config = json.loads(done.config_path.read_text())
    assert bytes.fromhex(config["key"]) == derive_node_key(master, 0x0102)
    assert master.hex() not in done.config_path.read_text()
    assert (config["node"], config["segment"], config["position"]["alt_m"]) == (0x0102, 3, 120.0)
    assert config["broker"]["user"] == "node-0102" and len(config["broker"]["password"]) >= 24
    record = registry.get(0x0102)
    assert (record.segment, record.lat, record.lon) == (3, 48.5, 37.9)
    for path in (done.password_file, done.acl_file, done.commission_credentials):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_config_the_board_would_refuse_is_refused_here_and_nothing_is_written(books):
    master, registry, out = books
    with pytest.raises(ProvisionError, match="wifi-ssid"):
        provision(spec(0x0102, board="esp32"), registry, master, out, progress=QUIET)
    with pytest.raises(ProvisionError, match="lat"):
        provision(spec(0x0102, lat=123.0), registry, master, out, progress=QUIET)
    assert registry.list() == [] and not out.exists()


def test_reprovisioning_keeps_other_users_lines_and_rotates_the_nodes_password(books):
    master, registry, out = books
    provision(spec(0x0102), registry, master, out, progress=QUIET)
    first = provision(spec(0x0103), registry, master, out, progress=QUIET)
    lines = dict(line.split(":", 1) for line in first.password_file.read_text().splitlines())
    assert set(lines) == {"node-0102", "node-0103"}
    desk = first.commission_password_file.read_text()
    assert desk.startswith("commission:") and desk.count("\n") == 1
    again = provision(spec(0x0103), registry, master, out, progress=QUIET)
    after = dict(line.split(":", 1) for line in again.password_file.read_text().splitlines())
    assert after["node-0102"] == lines["node-0102"] and after["node-0103"] != lines["node-0103"]
    assert "lw/3/0103/birth" in again.acl_file.read_text()


class Client:
    """A paho client that records what it receives."""

    def __init__(self, broker, user, password, port=None):
        self.received = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}")
        self.client.username_pw_set(user, password)
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, m.payload))
        self.connected = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.put(rc)
        self.client.connect(broker.host, port or broker.port)
        self.client.loop_start()
        self.rc = self.connected.get(timeout=5)

    def subscribe(self, topic):
        granted = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, codes, p: granted.put(codes[0])
        self.client.subscribe(topic, qos=1)
        return granted.get(timeout=5)

    def publish(self, topic, payload):
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def topics(self, wait=0.5):
        time.sleep(wait)
        got = []
        while not self.received.empty():
            got.append(self.received.get()[0])
        return got

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_a_real_mosquitto_enforces_the_generated_acl(books, tmp_path):
    master, registry, out = books
    ports = dict(broker_port=free_port(), commission_port=free_port(), tls=False)
    a = provision(spec(0x0102, segment=3, **ports), registry, master, out, progress=QUIET)
    provision(spec(0x0103, segment=4, **ports), registry, master, out, progress=QUIET)
    node_a = json.loads(a.config_path.read_text())["broker"]
    commission = json.loads(a.commission_credentials.read_text())
    assert commission["port"] == ports["commission_port"]
    # as root, Mosquitto would drop to `mosquitto`, who cannot enter pytest's 0700 folders
    with Mosquitto(port=ports["broker_port"], workdir=tmp_path / "broker",
                   listeners=a.mosquitto_conf.read_text()) as broker:
        clients = []
        try:
            desk = Client(broker, "commission", commission["password"], port=commission["port"])
            node = Client(broker, "node-0102", node_a["password"])
            clients += [desk, node]
            clients.append(Client(broker, "node-0102", "wrong"))
            assert clients[-1].rc != 0
            clients.append(Client(broker, "node-0102", node_a["password"], port=commission["port"]))
            assert clients[-1].rc != 0        # a node has no user on the commission's listener
            clients.append(Client(broker, "commission", commission["password"]))
            assert clients[-1].rc != 0        # nor the commission on the nodes'
            desk.subscribe("lw/+/+/+")
            node.subscribe("lw/3/0102/down/#")   # its downlink and its update topic, as the firmware does
            node.subscribe("lw/4/0103/down/#")   # Mosquitto 2.0 grants it, then delivers nothing
            node.publish("lw/3/0102/birth", b"own")
            node.publish("lw/4/0103/event", b"forged")            # another node's uplink
            node.publish("lw/3/0102/down", b"self-command")       # its own downlink is read-only
            desk.publish("lw/3/0102/down", b"ack")
            desk.publish("lw/4/0103/down", b"not for 0102")
            desk.publish("lw/3/0102/down/update", b"chunk")
            desk.publish("lw/4/0103/down/update", b"chunk not for 0102")
            assert sorted(desk.topics()) == ["lw/3/0102/birth", "lw/3/0102/down", "lw/4/0103/down"]
            assert sorted(node.topics(wait=0)) == ["lw/3/0102/down", "lw/3/0102/down/update"]
        finally:
            for c in clients:
                c.close()


def test_the_provision_command(tmp_path):
    create_master_key(tmp_path / "master.key")
    cmd = [LINEWATCH, "provision", "0x0a01", "--segment", "7", "--lat", "48.1", "--lon", "37.2",
           "--wifi-ssid", "line", "--broker-host", "10.0.0.2", "--registry", str(tmp_path / "r.db"),
           "--master-key", str(tmp_path / "master.key"), "--out", str(tmp_path / "out")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out" / "node-0a01.json").read_text())["board"] == "esp32"
    bad = subprocess.run(cmd[:2] + ["zz"] + cmd[3:], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "not hex" in bad.stderr
    (tmp_path / "master.key").chmod(0o644)
    loose = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert loose.returncode == 1 and "chmod 600" in loose.stderr


def test_acl_text_names_each_nodes_own_topics_only():
    text = broker_access.acl_text([broker_access.NodeAccess(0x0102, 3)])
    node_part = text.split("user node-0102")[1]
    assert "lw/3/0102/event" in node_part and "+" not in node_part
    assert [line for line in node_part.splitlines() if "#" in line] == ["topic read lw/3/0102/down/#"]


def test_it_names_broker_install_as_sudo_finds_it(books):
    """sudo's secure_path (Debian's default) leaves the venv out: `sudo linewatch` would be
    "command not found", so the line printed names the venv's linewatch by its full path."""
    import sys
    from pathlib import Path
    master, registry, out = books
    said = []
    provision(spec(0x0102), registry, master, out, progress=said.append)
    line = next(s for s in said if "for the system's Mosquitto" in s)
    program = line.split("sudo ", 1)[1].split()[0]
    assert program == str(Path(sys.executable).parent.absolute() / "linewatch") and Path(program).exists(), line
