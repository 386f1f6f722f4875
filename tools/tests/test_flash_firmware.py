"""`linewatch flash` with the REAL firmware: `linewatch build --target unix`, a node made with
`linewatch provision`, flashed onto the virtual board (the unix port behind a PTY, real mpremote),
then the self-test on its console and its birth frame on a private Mosquitto, checked by the
flash tool and again here with the key derived from the commission's master key."""
import json
import queue
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

from linewatch.keys import create_master_key
from lwproto import const, frame, topic
from lwproto.auth import derive_node_key
from lwtools.remote import Mpremote

LINEWATCH = str(Path(sys.executable).parent / "linewatch")
NODE, SEGMENT = 0x0102, 3
# The node's heap budget is 128K (a board's), and the real firmware runs in it on the 64-bit
# unix port too, with the REPL mpremote drives (firmware/README.md "Memory").
HEAP = "128K"
FEED = "hil-feed.raw"


def run(*args, timeout=120):
    result = subprocess.run([LINEWATCH, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"linewatch {args[0]}: {result.stdout}{result.stderr}"
    return result.stdout


def quiet_feed(seconds=2, rate=16000) -> bytes:
    """A faint alternating signal: the microphone of a node in a quiet field."""
    return struct.pack("<%dh" % (seconds * rate), *([40, -40] * (seconds * rate // 2)))


def subscribe_birth(broker) -> tuple[mqtt.Client, "queue.Queue[bytes]"]:
    births: "queue.Queue[bytes]" = queue.Queue()
    ready: queue.Queue = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic.uplink(SEGMENT, NODE, const.BIRTH), qos=1)
    client.on_subscribe = lambda c, u, mid, codes, p: ready.put(codes)
    client.on_message = lambda c, u, m: births.put(bytes(m.payload))
    client.connect(broker.host, broker.port)
    client.loop_start()
    ready.get(timeout=10)
    return client, births


def test_the_real_firmware_flashed_boots_and_its_birth_verifies(virtual_board_with_heap, mosquitto, tmp_path):
    out = tmp_path / "build"
    run("build", "--target", "unix", "--out", str(out))
    master = create_master_key(tmp_path / "master.key")
    # hal/unix's sample feed (what a microphone is on a real board): a file on the board's
    # filesystem, played in real time, over and over
    extra = tmp_path / "unix-feed.json"
    extra.write_text(json.dumps({"feed": {"audio": FEED, "realtime": True, "plays": 0},
                                 "heartbeat_s": 5}))
    run("provision", "0x0102", "--segment", str(SEGMENT), "--lat", "48.0123", "--lon", "37.7654",
        "--board", "unix", "--broker-host", mosquitto.host, "--broker-port", str(mosquitto.port),
        "--extra", str(extra), "--registry", str(tmp_path / "registry.db"),
        "--master-key", str(tmp_path / "master.key"), "--out", str(tmp_path / "provisioned"))
    config = tmp_path / "provisioned" / "node-0102.json"

    board = virtual_board_with_heap(HEAP)
    (tmp_path / FEED).write_bytes(quiet_feed())
    Mpremote(board.port).copy([(tmp_path / FEED, FEED)])
    watcher, births = subscribe_birth(mosquitto)
    try:
        flashed = run("flash", "--port", board.port, "--node", "0x0102", "--build", str(out),
                      "--config", str(config), "--virtual", "--self-test-timeout", "30",
                      "--birth-timeout", "30", timeout=180)
        payload = births.get(timeout=10)
    finally:
        watcher.disconnect()
        watcher.loop_stop()

    assert "linewatch node 0x0102 self-test ok (board unix" in flashed, flashed
    assert "waiting up to 30 s for the node's birth frame" in flashed
    assert "birth of node 0x0102 verified: firmware" in flashed and "board unix, boot 1" in flashed, flashed
    birth = frame.decode(payload, derive_node_key(master, NODE))
    assert (birth.ftype, birth.node, birth.boot, birth.seq) == (const.BIRTH, NODE, 1, 1)
    assert abs(birth.field("lat") - 48.0123) < 1e-6 and birth.field("segment") == SEGMENT
    assert (board.fs / "lib/lwnode/node.mpy").exists() and (board.fs / "lw-manifest.json").exists()
