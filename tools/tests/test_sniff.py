"""`linewatch sniff` against a private Mosquitto: good frames decoded and verified, bad ones shown
with their error and bytes, and the sniffer keeps going."""
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.publish as publish

from linewatch.keys import create_master_key
from lwproto import const, frame, topic
from lwproto.auth import derive_node_key
from lwtools.sniff import Verifier, describe

LINEWATCH = str(Path(sys.executable).parent / "linewatch")
MASTER = bytes(range(32))
EVENT = {"event_class": const.EXPLOSION, "confidence": 0.9, "onset_offset_us": -1200, "peak_db": 96.5,
         "duration_ms": 40, "frequency_hz": 120, "snr_db": 31.0}


def event(node=0x0102, key=None, seq=7):
    key = key or derive_node_key(MASTER, node)
    return frame.encode(key, const.EVENT, node, 2, seq, 1_795_000_000_123_456, const.CLOCK_NTP, 800, EVENT)


def test_a_good_frame_is_decoded_and_verified():
    line = describe("lw/3/0102/event", event(), Verifier(MASTER))
    assert "event     node=0x0102 boot=2 seq=7" in line and "event_class=explosion" in line
    assert "clock=ntp±800us" in line and "peak_db=96.5" in line and line.endswith("[verified]")
    assert "2026-" in line or "20" in line.split("t=")[1][:2]


def test_without_the_master_key_it_decodes_but_says_so():
    assert describe("lw/3/0102/event", event()).endswith("[not verified: no master key]")


def test_forged_and_misplaced_frames_are_refused_with_their_bytes():
    forged = describe("lw/3/0102/event", event(key=bytes(32)), Verifier(MASTER))
    assert "REFUSED: bad tag" in forged and f"hex {event(key=bytes(32)).hex()}" in forged
    elsewhere = describe("lw/3/0103/event", event(), Verifier(MASTER))
    assert "REFUSED: topic names node 0x0103" in elsewhere
    wrong_kind = describe("lw/3/0102/heartbeat", event(), Verifier(MASTER))
    assert "event frame on a heartbeat topic" in wrong_kind
    unknown = describe("lw/3/0102/event", event(), Verifier(MASTER, known_nodes=lambda n: False))
    assert "node not in the registry" in unknown


def test_garbage_never_raises():
    for payload in (b"", b"\x00", b"\x11" * 5, b"\xff" * 48, event()[:-1], event() + b"!"):
        line = describe("lw/3/0102/event", payload, Verifier(MASTER), raw=True)
        assert " ERROR " in line and f"hex {payload.hex()}" in line
    assert "alert" in describe("lw/alerts", b'{"incident": "x"}')


def test_raw_adds_hex_to_good_frames():
    assert f"hex {event().hex()}" in describe("lw/3/0102/event", event(), Verifier(MASTER), raw=True)


def test_the_sniff_command_against_a_real_broker(mosquitto, tmp_path):
    key_file = tmp_path / "master.key"
    master = create_master_key(key_file)
    good = frame.encode(derive_node_key(master, 0x0102), const.EVENT, 0x0102, 2, 7,
                        1_795_000_000_000_000, const.CLOCK_GPS_PPS, 3, EVENT)
    proc = subprocess.Popen([LINEWATCH, "sniff", "--broker", f"{mosquitto.host}:{mosquitto.port}",
                             "--master-key", str(key_file), "--count", "3", "--timeout", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "listening on" in line:
                ready.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ready.wait(15), lines
    where = dict(hostname=mosquitto.host, port=mosquitto.port, qos=1)
    publish.single(topic.uplink(3, 0x0102, const.EVENT), good, **where)
    publish.single("lw/3/0102/event", b"\x13\x01", **where)
    publish.single(topic.uplink(3, 0x0102, const.EVENT), event(), **where)   # other master: forged
    assert proc.wait(20) == 0
    reader.join(5)
    text = "\n".join(lines)
    assert "clock=gps_pps±3us" in text and "[verified]" in text
    assert "ERROR truncated" in text and "hex 1301" in text
    assert "REFUSED: bad tag" in text


def test_an_unreachable_broker_is_a_clear_error(tmp_path):
    from linewatch.mosquitto import free_port
    result = subprocess.run([LINEWATCH, "sniff", "--broker", f"127.0.0.1:{free_port()}", "--count", "1"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 3 and "sniff: error:" in result.stderr and "unreachable" in result.stderr
