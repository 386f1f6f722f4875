"""The node's power decisions under CPython on the sim board: heartbeat fields, the saving
mode, sleep notices on a low battery and in quiet windows, and the sleep a boot woke from."""
import asyncio
import time

from lwnode import boot, config
from lwnode.hal import sim
from lwnode.node import Node
from lwproto import auth, frame, hostupdate
from lwproto import const as c

KEY = auth.derive_node_key(bytes(range(32)), 0x0102)
START_US = 1_795_000_000_000_000          # 2026-11-18T11:06:40Z: 40000 s into the UTC day


def make_node(tmp_path, battery=3900, boot_number=1, **power):
    raw = {"node": 0x0102, "segment": 3, "key": KEY.hex(), "position": {"lat": 48.0, "lon": 37.7},
           "broker": {"host": "127.0.0.1", "port": 9}, "board": "sim", "storage": str(tmp_path),
           "heartbeat_s": 60, "power": power}
    cfg = config.parse(raw)
    t0 = time.monotonic()      # a clock that runs (the node's waits are by the board's clock)
    board = sim.Board(cfg, now_us=lambda: START_US + int((time.monotonic() - t0) * 1e6))
    board.log = board.lines.append
    board.battery = battery
    return Node(cfg, board, boot_number), board


async def health_step(node, ack=False, wait_s=0.1):
    """One round of the node's health task (heartbeat, then the power decisions), acking what
    it queues when `ack` (as the commission would); returns when it sleeps or has waited."""
    node._power[2] = 0                        # the first heartbeat is due now
    task = asyncio.ensure_future(node._health())
    deadline = time.monotonic() + 5
    while not task.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        if ack:
            for boot_number, seq, _, _ in node.queue.pending(10):
                node.queue.ack(boot_number, seq)
        if not ack and time.monotonic() > deadline - 5 + wait_s:
            break
    task.cancel()


def last(node, ftype):
    frames = [frame.decode(data, KEY) for _, _, kind, data in node.queue.pending(100) if kind == ftype]
    return frames[-1] if frames else None


def test_heartbeat_reports_radio_time_sleep_interval_and_mode(tmp_path):
    node, _ = make_node(tmp_path)
    node._power[0] = 1_234_567
    node.heartbeat()
    f = last(node, c.HEARTBEAT)
    assert (f.field("radio_ms"), f.field("slept_s"), f.field("heartbeat_s"), f.field("power")) == (1234, 0, 60, 0)
    assert len(node.queue.pending(1)[0][3]) == frame.SIZES[c.HEARTBEAT] == 62


def test_a_low_battery_lengthens_heartbeats_and_saves_radio_power_with_hysteresis(tmp_path):
    node, board = make_node(tmp_path, battery=3450, save_below_mv=3500, save_heartbeat_s=600)
    asyncio.run(health_step(node))
    assert (node._power[3], node._power[2], board.radio_saving) == (1, 600, 1)
    board.battery = 3520                      # within the 50 mV hysteresis: still saving
    asyncio.run(health_step(node))
    assert node._power[3] == 1
    board.battery = 3560
    asyncio.run(health_step(node))
    assert (node._power[3], node._power[2], board.radio_saving) == (0, 60, 0)
    assert board.sleeps == []
    beats = [frame.decode(d, KEY) for _, _, k, d in node.queue.pending(10) if k == c.HEARTBEAT]
    assert [(b.field("power"), b.field("heartbeat_s")) for b in beats] == [(1, 600), (1, 600), (0, 60)]


def test_under_the_sleep_level_the_node_sends_its_notice_then_sleeps(tmp_path):
    node, board = make_node(tmp_path, battery=3300, sleep_below_mv=3350, low_battery_sleep_s=1800)
    asyncio.run(health_step(node, wait_s=0.4))
    assert board.sleeps == []                 # waits for the commission to store the notice
    assert last(node, c.SLEEP).field("reason") == c.SLEEP_LOW_BATTERY
    node, board = make_node(tmp_path, battery=3300, sleep_below_mv=3350, low_battery_sleep_s=1800)
    asyncio.run(health_step(node, ack=True))
    assert node.queue.depth == 0              # everything acked before sleeping
    assert board.sleeps == [1_800_000]
    assert any("power: sleeping 1800 s (low battery)" in line for line in board.lines)
    woken, _ = make_node(tmp_path, boot_number=2)     # the next boot: how long it slept
    assert boot.self_test(woken)[0]
    assert woken._power[1] == 1800
    assert not (tmp_path / "sleep").exists()


def test_the_sleep_notice_names_the_reason_and_length(tmp_path):
    node, board = make_node(tmp_path, battery=3300)

    async def run():
        task = asyncio.ensure_future(node.sleep(600, 1))
        await asyncio.sleep(0.05)
        notice = last(node, c.SLEEP)
        for boot_number, seq, _, _ in node.queue.pending(10):
            node.queue.ack(boot_number, seq)
        await asyncio.wait_for(task, 5)
        return notice

    notice = asyncio.run(run())
    assert (notice.field("sleep_s"), notice.field("reason")) == (600, c.SLEEP_LOW_BATTERY)


def test_a_quiet_window_puts_the_node_to_sleep_until_its_end(tmp_path):
    # START_US is 11:06:40 UTC; the window 11:00-11:30 ends in 1400 s
    node, board = make_node(tmp_path, quiet_windows=[["11:00", "11:30"]])
    asyncio.run(health_step(node, ack=True))
    assert board.sleeps == [1_400_000]
    assert any("(quiet window)" in line for line in board.lines)


def test_before_a_quiet_window_the_next_heartbeat_falls_on_its_start(tmp_path):
    node, board = make_node(tmp_path, quiet_windows=[["11:07", "11:30"]])   # starts in 20 s
    asyncio.run(health_step(node))
    assert node._power[2] == 20 and board.sleeps == []


def test_a_board_that_cannot_sleep_keeps_listening(tmp_path):
    node, board = make_node(tmp_path, battery=3000, quiet_windows=[["11:00", "11:30"]])
    board.capabilities = 0
    asyncio.run(health_step(node))
    assert board.sleeps == [] and node._power[3] == 1
    assert not node.birth()[10] & c.CAP_DEEP_SLEEP


def test_the_birth_advertises_what_this_node_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)      # an update's build slots (fw/) are in the board's root
    node, board = make_node(tmp_path)
    caps = node.birth()[10]
    assert caps & c.CAP_DEEP_SLEEP and board.capabilities & c.CAP_DEEP_SLEEP
    assert caps & c.CAP_DRONE and node.detector.threshold(c.DRONE) > 0
    assert caps & c.CAP_RESEND
    assert caps & 32 and node.detector.threshold(4) > 0    # CAP_VEHICLE, and the vehicle detector (class 4)
    # CAP_UPDATE (SPEC section 10): a manifest under the node's key starts a download
    assert caps & 64
    message = hostupdate.manifest(KEY, 0x0102, 1, b"image", (0, 1, 1), 0)
    node.on_downlink("lw/3/0102/down/update", message)
    assert node._power[6] is not None and node._power[6][0] == 1 and node.refused_commands == 0
