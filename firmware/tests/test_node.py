"""The node app under CPython on the sim board: reporting, acks, commands, birth before connect."""
import asyncio
import math
import random
from array import array

import pytest

from lwnode import config
from lwnode.hal import sim
from lwnode.node import Node
from lwproto import auth, frame
from lwproto import const as c

MASTER = bytes(range(32))
KEY = auth.derive_node_key(MASTER, 0x0102)
START_US = 1_795_000_000_000_000


def make_node(tmp_path, boot=1, **extra):
    raw = {"node": 0x0102, "segment": 3, "key": KEY.hex(), "position": {"lat": 48.0, "lon": 37.7},
           "broker": {"host": "127.0.0.1", "port": 9}, "board": "sim", "storage": str(tmp_path),
           "audio": {"rate_hz": 16000, "block": 512}}
    raw.update(extra)
    cfg = config.parse(raw)
    board = sim.Board(cfg, start_us=START_US)
    board.log = lambda line: board.lines.append(line)
    return Node(cfg, board, boot), board


def downlink(ftype, values, seq, key=KEY, boot=1):
    return frame.encode(key, ftype, 0x0102, boot, seq, START_US, c.CLOCK_NTP, 100, values)


def command(seq, key=KEY, **values):
    full = {"command": c.CMD_SET_THRESHOLD, "event_class": 0, "threshold": 0, "refractory_ms": 0,
            "boot": 0, "first_seq": 0, "last_seq": 0, "delay_s": 0}
    full.update(values)
    return downlink(c.COMMAND, full, seq, key)


def queued(node):
    return [(boot, seq, kind) for boot, seq, kind, _ in node.queue.pending(100)]


def test_every_frame_goes_through_the_queue_with_growing_seq(tmp_path):
    node, _ = make_node(tmp_path)
    node.heartbeat()
    node.heartbeat()
    assert queued(node) == [(1, 1, c.HEARTBEAT), (1, 2, c.HEARTBEAT)]
    f = frame.decode(node.queue.pending(1)[0][3], KEY)
    assert f.field("queue_depth") == 0 and f.time_us == START_US


def test_ack_removes_up_to_its_seq_and_a_replay_is_ignored(tmp_path):
    node, _ = make_node(tmp_path)
    for _ in range(4):
        node.heartbeat()
    node.on_downlink("t", downlink(c.ACK, {"boot": 1, "seq": 2}, seq=5))
    assert [s for _, s, _ in queued(node)] == [3, 4]
    node.on_downlink("t", downlink(c.ACK, {"boot": 1, "seq": 4}, seq=5))      # replayed counter
    assert [s for _, s, _ in queued(node)] == [3, 4]
    assert node.refused_commands == 0


def test_commands_apply_once_forgeries_and_replays_are_refused(tmp_path):
    node, board = make_node(tmp_path)
    node.on_downlink("t", command(7, event_class=c.EXPLOSION, threshold=15.0, refractory_ms=900))
    assert node.detector.threshold(c.EXPLOSION) == 15.0
    assert node.detector.refractory_ms(c.EXPLOSION) == 900
    assert any("set_threshold explosion threshold=15.0" in line for line in board.lines)
    node.on_downlink("t", command(7, event_class=c.EXPLOSION, threshold=3.0))            # replay
    node.on_downlink("t", command(8, key=bytes(32), event_class=c.EXPLOSION, threshold=3.0))  # forged
    node.on_downlink("t", b"\x00garbage")
    node.on_downlink("t", command(9, event_class=c.VEHICLE, threshold=3.0))   # the vehicle detector
    assert node.detector.threshold(c.EXPLOSION) == 15.0
    assert node.detector.threshold(c.VEHICLE) == 3.0
    assert node.refused_commands == 3
    again, _ = make_node(tmp_path)                 # the command counter survives a reboot
    again.on_downlink("t", command(7, event_class=c.EXPLOSION, threshold=3.0))
    assert again.refused_commands == 1


def test_rebirth_and_resend(tmp_path):
    node, _ = make_node(tmp_path)
    node.on_downlink("t", command(1, command=c.CMD_REBIRTH))
    assert queued(node) == [(1, 1, c.BIRTH)]
    assert len(node.queue.pending(10, True)) == 1          # published on this connection
    assert node.queue.pending(10, True) == []
    node.on_downlink("t", command(2, command=c.CMD_RESEND, boot=1, first_seq=1, last_seq=1))
    assert [(b, s) for b, s, _, _ in node.queue.pending(10, True)] == [(1, 1)]


def _impulse_audio(seconds, at_s):
    rnd = random.Random(3)
    n = int(seconds * 16000)
    out = array("h", (max(-32768, min(32767, int(rnd.gauss(0, 60)))) for _ in range(n)))
    k = int(at_s * 16000)
    for i in range(2400):
        out[k + i] = max(-32768, min(32767, out[k + i] + int(
            22000 * math.exp(-i / 500) * math.sin(2 * math.pi * 150 * i / 16000))))
    return out


async def test_an_impulse_becomes_an_event_dated_to_the_sample(tmp_path):
    node, board = make_node(tmp_path, feed={"exit_at_end": True})
    node.board.network_up = _never_up
    board.push_audio(_impulse_audio(3.0, 1.5), 0)
    board.end_audio()
    await asyncio.wait_for(node.run(), 30)
    events = [frame.decode(data, KEY) for _, _, kind, data in node.queue.pending(10)
              if kind == c.EVENT]
    assert len(events) == 1
    onset = events[0].time_us + events[0].field("onset_offset_us")
    assert abs(onset - (START_US + 1_500_000)) <= 1000
    assert events[0].field("event_class") == c.EXPLOSION


async def _never_up():
    return False


async def test_birth_is_queued_before_connecting_and_kept_across_failures(tmp_path):
    node, _ = make_node(tmp_path)

    async def refuse(host, port):
        raise OSError(111, "refused")
    node.board.open_connection = refuse
    for _ in range(2):
        with pytest.raises(Exception):
            await node._session()
    assert queued(node) == [(1, 1, c.BIRTH)]        # one birth, seq 1, no hole
    node.heartbeat()
    assert queued(node)[-1][1] == 2


def test_a_short_microphone_read_skips_the_block_not_the_detection_task(tmp_path):
    node, board = make_node(tmp_path, feed={"exit_at_end": True})
    board.push_audio(array("h", [0] * 100))        # not a multiple of the detectors' hop
    for _ in range(4):
        board.push_audio(array("h", [0] * 512))
    board.end_audio()

    async def play():
        sampling = asyncio.create_task(node._sampling())
        await asyncio.wait_for(node._detection(), 5)
        sampling.cancel()

    asyncio.run(play())
    assert node.samples == 100 + 4 * 512           # the task went on past the short block
    assert node.overruns == 1
    assert any("block skipped" in line for line in board.lines)


def test_downlink_order_and_commands_from_the_golden_vectors(tmp_path):
    """SPEC section 6: acks and commands share the commission's downlink sequence, each kind
    compared with the last of its own kind; unused command fields are ignored (section 3.6)."""
    import json
    from pathlib import Path
    vectors = json.loads((Path(__file__).parents[2] / "protocol" / "vectors" / "v1.json").read_text())
    node, _ = make_node(tmp_path)
    for _ in range(12):
        node.heartbeat()
    for kind, boot, seq, want in vectors["downlink"]:
        refused, before = node.refused_commands, node._last_ack
        if kind == "ack":
            node.on_downlink("t", downlink(c.ACK, {"boot": 1, "seq": seq % 12}, seq, boot=boot))
            took = node._last_ack != before and node._last_ack == (boot, seq)
            assert ("take" if took else "ignore") == want, (kind, boot, seq)
        else:
            node.on_downlink("t", downlink(c.COMMAND, {"command": c.CMD_REBIRTH, "event_class": 0, "threshold": 0,
                                                       "refractory_ms": 0, "boot": 0, "first_seq": 0,
                                                       "last_seq": 0, "delay_s": 0}, seq, boot=boot))
            assert ("apply" if node.refused_commands == refused else "refuse") == want, (kind, boot, seq)
    for case in vectors["commands"]:
        folder = tmp_path / case["name"].replace(" ", "_")
        folder.mkdir()
        fresh, _ = make_node(folder)
        fresh.on_downlink("t", bytes.fromhex(case["hex"]))
        assert fresh.refused_commands == 0, case["name"]
        assert fresh.detector.refractory_ms(1) == case["applies"]["refractory_ms"]


async def test_a_node_that_cannot_publish_says_so(tmp_path, monkeypatch):
    """Out of memory in every session: after 3 in a row the node is degraded (the heartbeat's
    power bit 2, the board told once, its LED blinking between tries), and it stays so."""
    from lwnode import mqtt
    monkeypatch.setattr(mqtt, "backoff_delays", lambda: iter(lambda: 0.01, None))
    node, board = make_node(tmp_path)
    told, blinks = [], []
    board.degraded = lambda: told.append(True)
    board.led = blinks.append

    async def out_of_memory(host, port):
        raise MemoryError("memory allocation failed, allocating 272 bytes")
    board.open_connection = out_of_memory
    uplink = asyncio.get_running_loop().create_task(node._uplink())
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(blinks) >= 2:
                break
    finally:
        uplink.cancel()
        await asyncio.gather(uplink, return_exceptions=True)
    assert told == [True] and blinks[:2] == [1, 0]
    assert any("DEGRADED: 3 sessions in a row ran out of memory" in line for line in board.lines)
    node.heartbeat()
    beat = frame.decode(node.queue.pending(10)[-1][3], KEY)
    assert beat.field("power") & c.POWER_DEGRADED
    node._power[4] = 0                         # a publish that got out: the count starts again ...
    node.heartbeat()
    assert frame.decode(node.queue.pending(10)[-1][3], KEY).field("power") & c.POWER_DEGRADED   # ... the flag stays
