"""`linewatch update`'s rollout against a private Mosquitto and stand-in nodes: every node gets
a manifest and chunks that verify under its own key, at most the share of a segment updates at
once, and the outcome per node comes from its next birth. (The node's side is tested on the
virtual board: hil-tests/test_node_update.py.)"""
import threading
import time

import paho.mqtt.client as paho

from linewatch.commission.rollout import Rollout
from lwproto import auth, frame, hostupdate
from lwproto import const as c

MASTER = bytes(range(32))
IMAGE = bytes(range(256)) * 9          # 2304 bytes
CHUNKS = -(-len(IMAGE) // hostupdate.DEFAULT_CHUNK)


class StandInNodes:
    """Answer each update like a node: take the chunks, then publish a birth with the new
    release (or the old one, for the nodes in `refuse`), or nothing (the nodes in `silent`)."""

    def __init__(self, broker, refuse=(), silent=(), master=MASTER):
        self.refuse, self.silent, self.master = set(refuse), set(silent), master
        self.busy: set[int] = set()
        self.most_busy = 0
        self.chunks: dict[int, list[int]] = {}
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="stand-in-nodes")
        self.client.on_message = self.on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe("lw/+/+/down/update", qos=1)
        self.client.loop_start()
        assert subscribed.wait(10), "the stand-in nodes' subscription was not granted"

    def on_message(self, client, userdata, message):
        seg, node = int(message.topic.split("/")[1]), int(message.topic.split("/")[2], 16)
        key = auth.derive_node_key(self.master, node)
        if message.payload[0] == 0x11:
            m = hostupdate.read_manifest(key, message.payload)
            with self.lock:
                self.busy.add(node)
                self.most_busy = max(self.most_busy, len(self.busy))
                self.chunks[node] = []
                self.expected = m["chunks"]
            return
        _, _, index, _ = hostupdate.read_chunk(key, message.payload)
        self.chunks[node].append(index)
        if index == self.expected - 1 and node not in self.silent:
            threading.Timer(0.3, self.birth, (client, seg, node, key)).start()

    def birth(self, client, seg, node, key):
        with self.lock:
            self.busy.discard(node)
        release = (0, 1, 0) if node in self.refuse else (0, 2, 0)
        data = frame.encode(key, c.BIRTH, node, 2, 1, int(time.time() * 1e6), 1, 2000,
                            (*release, 3, seg, 48.0, 37.7, 0, 5, 1, 16, 16000))
        client.publish("lw/%d/%04x/birth" % (seg, node), data, qos=1)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_a_segment_is_updated_a_share_at_a_time_with_each_outcome(mosquitto):
    nodes = StandInNodes(mosquitto, refuse={0x0104}, silent={0x0201})
    lines = []
    rollout = Rollout(IMAGE, (0, 2, 0), 2, MASTER, share=0.5, wait_s=3,
                      report=lambda node, text: lines.append((node, text)))
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="commission-update")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        targets = [(0x0101, 3), (0x0102, 3), (0x0103, 3), (0x0104, 3), (0x0201, 4)]
        out = rollout.run(client, targets, {3: 4, 4: 1})
    finally:
        client.disconnect()
        client.loop_stop()
        nodes.close()
    assert {n: o.state for n, o in out.items()} == {0x0101: "updated", 0x0102: "updated", 0x0103: "updated",
                                                   0x0104: "not updated", 0x0201: "no answer"}
    assert nodes.most_busy <= 2 + 1        # 2 of segment 3's 4 (share 0.5) and segment 4's one
    assert all(nodes.chunks[n] == list(range(CHUNKS)) for n in (0x0101, 0x0102, 0x0103, 0x0104, 0x0201))
    assert any(n == 0x0102 and "%d of %d messages sent" % (CHUNKS + 1, CHUNKS + 1) in t for n, t in lines)
    assert (0x0201, "no answer no birth within 3 s") in lines
    assert rollout.slots(4) == 2 and rollout.slots(3) == 1 and Rollout(b"", (0, 0, 0), 2, MASTER, share=0.1).slots(50) == 5


def test_the_update_command_pushes_a_build_to_a_segment_and_records_it(mosquitto, tmp_path, capsys):
    import json
    from linewatch.cli import main
    from linewatch.commission.registry import Registry
    from linewatch.commission.store import open_store
    from linewatch.keys import create_master_key
    master = create_master_key(tmp_path / "master.key")
    store = open_store(str(tmp_path / "linewatch.db"))
    registry = Registry(store)
    for node, seg in ((0x0101, 3), (0x0102, 3), (0x0301, 5)):
        registry.add(node, seg, 48.0, 37.7)
    build = tmp_path / "build"
    (build / "lib" / "lwnode").mkdir(parents=True)
    (build / "lib" / "lwnode" / "node.mpy").write_bytes(IMAGE)
    (build / "manifest.json").write_text(json.dumps({"release": "0.2.0", "target": "esp32", "arch_code": 10,
                                                     "mpy_version": "6.3", "files": []}))
    nodes = StandInNodes(mosquitto, master=master)
    try:
        code = main(["update", str(build), "--segment", "3", "--share", "0.5", "--wait", "5",
                     "--registry", str(tmp_path / "linewatch.db"), "--master-key", str(tmp_path / "master.key"),
                     "--broker", "%s:%d" % (mosquitto.host, mosquitto.port), "--operator", "ana"])
    finally:
        nodes.close()
    said = capsys.readouterr()
    out = said.out
    assert code == 0, out
    assert "warning" not in said.err, said.err       # every entry recorded, none refused
    assert "update: 2 of 2 node(s) updated" in out and "0x0102: updated running 0.2.0" in out
    assert 0x0301 not in nodes.chunks                      # another segment: untouched
    entries = store.commission_entries("update") + store.commission_entries("update_outcome")
    assert sorted((e.node, e.verified) for e in entries) == [(0x0101, "ana"), (0x0101, "ana"), (0x0102, "ana"), (0x0102, "ana")]
    assert {json.loads(e.note)["state"] for e in entries if e.type == "update_outcome"} == {"updated"}
    assert {json.loads(e.note)["release"] for e in entries if e.type == "update"} == {"0.2.0"}
