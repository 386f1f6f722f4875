"""The serial DUT's logic without hardware: a socat PTY pair, one end the DUT's port, the other
a fake board that answers a reset on its console with boot noise and a self-test line."""
import json
import shutil
import subprocess
import threading
import time

import pytest

import dut as duts

CONFIG = {"node": 0x0102, "segment": 3, "key": "11" * 32, "board": "esp32",
          "position": {"lat": 48.5, "lon": 37.9}, "broker": {"host": "10.3.0.1", "port": 1883}}


class FakeBoard:
    """Reads what the DUT types; a soft (Ctrl-D) or hard (machine.reset()) reset prints a boot."""

    def __init__(self, port: str, node: int = 0x0102, fail: bool = False, after_boot: bytes = b""):
        import serial
        self.after_boot = after_boot
        self.link = serial.serial_for_url(port, timeout=0.1)
        self.node, self.fail = node, fail
        self.typed = b""
        self.boots = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            got = self.link.read(64)
            self.typed += got
            if b"\x04" in got or b"machine.reset()" in self.typed.split(b"\x03")[-1] and got.endswith(b"\r\n"):
                self.typed += b"|"   # one boot per reset
                self.boots += 1
                self._boot()

    def _boot(self):
        state = "FAILED: microphone: OSError(19,)" if self.fail else "ok (board esp32, fw 1.0.0, boot %d, 16000 Hz)" % self.boots
        self.link.write(b"MPY: soft reboot\r\nrst:0x1 (POWERON_RESET)\r\n")
        self.link.write(b"linewatch node 0x%04x self-test %s\r\n" % (self.node, state.encode()))
        self.link.write(b"uplink: connected\r\n")
        self.link.write(self.after_boot)

    def close(self):
        self.running = False
        self.thread.join(2)
        self.link.close()


@pytest.fixture
def pty_pair(tmp_path):
    if not shutil.which("socat"):
        pytest.skip("socat not installed (tools/setup.sh test installs it)")
    dut_end, board_end = tmp_path / "dut", tmp_path / "board"
    proc = subprocess.Popen(["socat", f"PTY,link={dut_end},raw,echo=0", f"PTY,link={board_end},raw,echo=0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 5
    while not (dut_end.exists() and board_end.exists()):
        assert time.monotonic() < deadline and proc.poll() is None, "socat gave no PTY pair"
        time.sleep(0.05)
    yield str(dut_end), str(board_end)
    proc.terminate()
    proc.wait(5)


def test_a_soft_reset_is_typed_and_the_self_test_read_and_a_restart_reads_the_next_boot(pty_pair):
    port, board_end = pty_pair
    board = FakeBoard(board_end)
    dut = duts.SerialDut(port, CONFIG, self_test_timeout=10)
    try:
        dut.start()
        assert dut.console.count(r"self-test ok \(board esp32, fw 1.0.0, boot 1,") == 1
        assert board.typed.startswith(b"\r\x03\x03\x02\x04")
        dut.console.wait_for("uplink: connected")
        dut.stop()
        dut.start()                                   # a reboot: waits for the NEXT self-test
        assert dut.console.count(r"self-test ok") == 2 and dut.console.count(r"self-test ok .*boot 2,") == 1
        assert (dut.node, dut.segment, dut.board_name, dut.rate) == (0x0102, 3, "esp32", 16000)
    finally:
        dut.stop()
        board.close()


def test_a_hard_reset_is_typed_as_machine_reset(pty_pair):
    port, board_end = pty_pair
    board = FakeBoard(board_end)
    dut = duts.SerialDut(port, CONFIG, reset="hard", self_test_timeout=10)
    try:
        dut.start()
        assert b"import machine\r\nmachine.reset()\r\n" in board.typed and b"\x04" not in board.typed
    finally:
        dut.stop()
        board.close()


@pytest.mark.parametrize("node, fail, message", [(0x0777, False, "another node"), (0x0102, True, "FAILED")])
def test_a_failed_self_test_or_another_node_fails_the_start(pty_pair, node, fail, message):
    port, board_end = pty_pair
    board = FakeBoard(board_end, node=node, fail=fail)
    dut = duts.SerialDut(port, CONFIG, self_test_timeout=10)
    try:
        with pytest.raises(AssertionError, match=message):
            dut.start()
    finally:
        dut.stop()
        board.close()


def test_a_silent_board_times_out_with_the_last_lines(pty_pair):
    port, _ = pty_pair
    dut = duts.SerialDut(port, CONFIG, self_test_timeout=1.5)
    try:
        with pytest.raises(AssertionError, match="no console line matching .* within 2 s"):
            dut.start()
    finally:
        dut.stop()


def test_a_loop_url_is_a_port_too():
    """Any pyserial URL: loop:// echoes what is typed, so the typed hard reset comes back as lines."""
    dut = duts.SerialDut("loop://", CONFIG, reset="hard")
    try:
        dut.start(wait=False)
        dut.console.wait_for(r"^machine\.reset\(\)$", timeout=5)
        assert dut.console.count(r"^import machine$") == 1
    finally:
        dut.stop()


def test_what_a_real_board_cannot_do_is_skipped_with_the_setup_it_needs():
    assert duts.skip_reason(("feed",), serial=False) is None
    reason = duts.skip_reason(("feed", "broker_control"), serial=True)
    assert reason.startswith("real board: ") and "live microphone" in reason and "stops and restarts" in reason
    assert duts.skip_reason((), serial=True) is None
    with pytest.raises(ValueError, match="unknown hil need"):
        duts.skip_reason(("speaker",), serial=True)


def test_the_commission_side_of_a_real_board_comes_from_its_config(tmp_path):
    target = duts.Target.real_board(CONFIG, "192.168.1.5:1884", {"username": "commission", "password": "pw"})
    assert (target.node, target.segment, target.broker_host, target.broker_port) == (0x0102, 3, "192.168.1.5", 1884)
    assert target.key == bytes.fromhex("11" * 32) and target.username == "commission"
    assert target.first_counter > duts.Target.real_board(CONFIG).first_counter - 64   # from the clock
    assert duts.Target.real_board(CONFIG).broker_host == "10.3.0.1"
    path = tmp_path / "node.json"
    path.write_text(json.dumps({"node": 1}))
    with pytest.raises(ValueError, match="has no 'segment'"):
        duts.load_board_config(str(path))
    with pytest.raises(ValueError, match="--port needs --board-config"):
        duts.load_board_config(None)


def test_a_feed_is_needed_from_a_real_board_only_without_feed_on_board():
    assert duts.skip_reason(("feed",), serial=True, feed_on_board=True) is None
    reason = duts.skip_reason(("feed", "broker_control"), serial=True, feed_on_board=True)
    assert "stops and restarts" in reason and "live microphone" not in reason
    assert "--feed-on-board" in duts.skip_reason(("feed",), serial=True)


@pytest.fixture
def mpremote_board(tmp_path):
    """The unix port behind a PTY, driven by the real mpremote (tools/tests/conftest.py's)."""
    import importlib.util
    from pathlib import Path
    from linewatch.testing import micropython as mp
    if not shutil.which("socat"):
        pytest.skip("socat not installed (tools/setup.sh test installs it)")
    try:
        binary = mp.find_micropython()
    except mp.MicroPythonMissing as exc:
        pytest.skip(str(exc))
    from lwtools.virtual_board import VirtualBoard
    board = VirtualBoard(tmp_path / "vboard", "2M", binary).start()
    yield board
    board.stop()


def test_feed_on_board_copies_the_feed_and_a_config_playing_it_then_puts_the_board_back(
        mpremote_board, tmp_path):
    from lwnode import config as node_config
    own = dict(CONFIG, wifi={"ssid": "bench"}, feed={"audio": "stale.raw"})  # an interrupted run's
    (mpremote_board.fs / "config.json").write_text(json.dumps(own))
    dut = duts.SerialDut(mpremote_board.port, CONFIG, feed_on_board=True, workdir=tmp_path / "work",
                         start_us=1795000000000000)
    audio = bytes(range(256)) * 8
    written = dut.configure(audio, plays=3)
    on_board = json.loads((mpremote_board.fs / "config.json").read_text())
    assert on_board == written and (mpremote_board.fs / "feed.raw").read_bytes() == audio
    assert written["feed"] == {"audio": "feed.raw", "realtime": False, "start_us": 1795000000000000,
                               "exit_at_end": False, "plays": 3}
    assert written["wifi"] == {"ssid": "bench"} and written["heartbeat_s"] == 1   # the board's own, fed
    node_config.parse(written)                                   # the firmware takes it
    dut.configure(b"\x00\x01" * 100, exit_at_end=True)          # a second test: the same own config
    assert (mpremote_board.fs / "feed.raw").read_bytes() == b"\x00\x01" * 100
    assert dut.feed_seconds == pytest.approx(100 / 16000)
    dut.restore()
    own.pop("feed")
    assert json.loads((mpremote_board.fs / "config.json").read_text()) == own
    assert not (mpremote_board.fs / "feed.raw").exists()
    dut.restore()                                                # twice: nothing more to do


def test_a_real_board_exits_only_on_a_feed_that_ends_the_node(tmp_path):
    dut = duts.SerialDut("loop://", CONFIG)
    with pytest.raises(AssertionError, match="does not exit"):
        dut.wait_exit(1)
    with pytest.raises(ValueError, match="needs a workdir"):
        duts.SerialDut("loop://", CONFIG, feed_on_board=True)


class FakeRemote:
    """mpremote's calls as SerialDut makes them, on a dict standing in for the board's flash."""

    def __init__(self, files):
        self.files = files

    def run(self, *args):
        assert args[:2] == ("fs", "cp") and args[2].startswith(":")
        import pathlib
        pathlib.Path(args[3]).write_bytes(self.files[args[2][1:]])

    def copy(self, pairs):
        for local, remote in pairs:
            self.files[remote] = local.read_bytes()

    def remove(self, paths):
        for path in paths:
            del self.files[path]


def test_a_feed_that_ends_the_node_is_waited_for_until_main_py_returns(pty_pair, tmp_path):
    port, board_end = pty_pair
    board = FakeBoard(board_end, after_boot=b"audio feed ended after 600 samples (0 s); heap peak 1\r\n"
                                            b"MicroPython v1.24.1 on 2024-11-29; Generic ESP32 module\r\n")
    flash = {"config.json": json.dumps(CONFIG).encode()}
    dut = duts.SerialDut(port, CONFIG, self_test_timeout=10, feed_on_board=True, workdir=tmp_path,
                         remote=FakeRemote(flash))
    try:
        dut.configure(b"\0\0" * 600, exit_at_end=True)
        assert json.loads(flash["config.json"])["feed"]["exit_at_end"] is True
        dut.start()
        assert dut.wait_exit(timeout=10) == 0
        board.after_boot = b"Traceback (most recent call last):\r\n" + board.after_boot
        dut.start()
        assert dut.wait_exit(timeout=10) == 1
    finally:
        dut.stop()
        dut.restore()
        board.close()
    assert flash == {"config.json": json.dumps(CONFIG).encode()}
