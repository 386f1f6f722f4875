"""The node's side of an update over the air under CPython on the sim board (SPEC.md section
10): what gets a download started, the detectors paused while it runs (their room is what the
download needs at 128K, firmware/README.md "Updates over the air"), and the reboot that ends
every download: into the new build, or, given up, into the build the node runs. The whole
update on the unix port, reboots and rollback included: hil-tests/test_node_update.py."""
import asyncio
import time

import pytest

from lwnode import config
from lwnode.hal import sim
from lwnode.node import Node
from lwproto import auth, frame, hostupdate
from lwproto import const as c

KEY = auth.derive_node_key(bytes(range(32)), 0x0102)

TOPIC = "lw/3/0102/down/update"
FILES = [("lib/lwnode/node.mpy", bytes(range(256)) * 2), ("lib/lwproto/frame.mpy", b"frame" * 40)]
IMAGE = hostupdate.pack_image(FILES)   # 742 bytes: 6 chunks of 128


@pytest.fixture
def node(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)        # the build slots (fw/) are in the board's root
    (tmp_path / "flash").mkdir()
    cfg = config.parse({"node": 0x0102, "segment": 3, "key": KEY.hex(), "position": {"lat": 48.0, "lon": 37.7},
                        "broker": {"host": "127.0.0.1", "port": 9}, "board": "sim",
                        "storage": str(tmp_path / "flash"), "heartbeat_s": 60})
    board = sim.Board(cfg, now_us=lambda: 1_795_000_000_000_000 + int(time.monotonic() * 1e6))
    board.log = board.lines.append
    board.resets = []
    board.reset = lambda: board.resets.append(1)   # the sim board's raises SystemExit
    return Node(cfg, board, 1)


def heartbeat(node):
    """One round of the node's health task: its heartbeat and what follows it."""
    async def one():
        node._power[2] = 0                 # the heartbeat is due now
        task = asyncio.ensure_future(node._health())
        await asyncio.sleep(0.1)
        task.cancel()
    asyncio.run(one())


def manifest(update_id, key=KEY):
    return hostupdate.manifest(key, 0x0102, update_id, IMAGE, (0, 1, 1), 0)   # arch 0: CPython's


def chunks(update_id):
    return hostupdate.chunks(KEY, 0x0102, update_id, IMAGE)


def listening(node):
    return node.detector.impulse is not None and node.detector.drone is not None


def test_the_birth_advertises_updates_and_the_node_takes_one(node):
    assert node.birth()[10] & 64                      # CAP_UPDATE (SPEC section 10)
    node.on_downlink(TOPIC, manifest(1))
    assert node._power[6] is not None and node._power[6][0] == 1 and not listening(node)
    assert node.refused_commands == 0


def test_what_is_not_a_manifest_under_the_nodes_key_is_refused_and_it_keeps_listening(node):
    node.on_downlink(TOPIC, manifest(1, key=bytes(32)))
    node.on_downlink(TOPIC, manifest(1)[:-1])
    assert node.refused_commands == 2
    node.on_downlink(TOPIC, chunks(1)[0])               # a chunk with no download: ignored
    assert node.refused_commands == 2 and node._power[6] is None and listening(node)
    assert node.board.resets == []


def test_a_paused_node_hears_nothing_and_refuses_thresholds(node):
    node.on_downlink(TOPIC, manifest(1))
    from array import array
    block = array("h", [20000, -20000] * 256)
    assert node.detector.feed_audio(block, 0, len(block)) == ()
    assert node.detector.feed_accel(0, 0, 5000, 0) == ()
    with pytest.raises(ValueError):
        node.detector.set_threshold(c.DRONE, 9.0)


def test_a_bad_chunk_gives_the_download_up_and_the_node_reboots_to_listen_again(node):
    node.on_downlink(TOPIC, manifest(2))
    parts = chunks(2)
    node.on_downlink(TOPIC, parts[0])
    node.on_downlink(TOPIC, manifest(2))                # redelivered after a reconnect: not refused
    assert node.refused_commands == 0 and node.board.resets == []
    bad = bytearray(parts[1])
    bad[20] ^= 0x40
    node.on_downlink(TOPIC, bytes(bad))
    assert node.refused_commands == 1 and node._power[6][4] < 0 and node.board.resets == [1]
    assert "update: given up; rebooting" in node.board.lines


def test_a_replayed_manifest_is_refused(node, tmp_path):
    (tmp_path / "flash" / "update").write_text("7")     # the last update this node took
    node.on_downlink(TOPIC, manifest(7))
    assert node.refused_commands == 1 and node._power[6] is None and node.board.resets == [1]


def test_a_download_with_no_chunk_for_two_minutes_is_given_up(node):
    node.on_downlink(TOPIC, manifest(3))
    node.on_downlink(TOPIC, chunks(3)[0])
    heartbeat(node)
    assert not listening(node) and node.board.resets == []   # a heartbeat's while: still downloading
    node._uptime_us += 121 * 1_000_000
    heartbeat(node)
    assert node._power[6][4] < 0 and node.refused_commands == 1 and node.board.resets == [1]
    assert any("no chunk for 120 s" in line for line in node.board.lines)


def test_a_complete_download_is_unpacked_beside_the_running_build_and_reboots_into_it(node, tmp_path):
    async def download():
        node.on_downlink(TOPIC, manifest(4))
        for part in chunks(4):
            node.on_downlink(TOPIC, part)
        await asyncio.sleep(1.2)       # the reboot waits a second for the last PUBACK

    asyncio.run(download())
    assert node.board.resets == [1] and node._power[6][4] == 6 and not listening(node)   # deaf until the reboot
    assert (tmp_path / "fw" / "next").read_text() == "fw/a"
    assert not (tmp_path / "fw" / "image").exists()
    for name, data in FILES:
        assert (tmp_path / "fw" / "a" / name).read_bytes() == data


def test_a_build_on_trial_commits_when_its_birth_is_acked_and_reboots_into_it(node, tmp_path):
    (tmp_path / "fw").mkdir()
    (tmp_path / "fw" / "trying").write_text("fw/b")
    (tmp_path / "fw" / "current").write_text("fw/a")
    node._power[7] = 5                                  # on trial; its birth of this boot: seq 5
    ack = lambda seq: frame.encode(KEY, c.ACK, 0x0102, 9, seq, 0, 0, 0, (1, 4 + seq - 10))

    async def acks():
        node.on_downlink("lw/3/0102/down", ack(10))     # acks up to seq 4: not yet
        assert (tmp_path / "fw" / "trying").exists() and node._power[7] == 5 and listening(node)
        node.on_downlink("lw/3/0102/down", ack(11))     # up to 5
        await asyncio.sleep(1.2)

    asyncio.run(acks())
    assert (tmp_path / "fw" / "current").read_text() == "fw/b" and node._power[7] is None
    assert not (tmp_path / "fw" / "trying").exists() and node.board.resets == [1]
