"""`linewatch flash`: against the virtual board (the unix port behind a PTY, driven by the real
mpremote) for copying, only-what-changed, stale modules and the architecture check; against a
fake transport for what the unix port cannot do (hard reset and its console, a full flash,
mip on a board with network)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lwtools import build
from lwtools.build import Package
from lwtools.flash import BOARD_CONFIG, BOARD_MANIFEST, FlashError, Options, flash
from lwtools.remote import Mpremote, NoMicroPython, NoSuchPort, OutOfSpace

LINEWATCH = str(Path(sys.executable).parent / "linewatch")
QUIET = lambda *_: None  # noqa: E731
MAIN = """import json
import lwnode.core
from lwproto import frame
c = json.load(open('config.json'))
print('linewatch node 0x%04x self-test ok (virtual, core %d, frame %d)' % (c['node'], lwnode.core.X, frame.MAX_FRAME_SIZE))
"""


def firmware(root, version=1, extra_module=True):
    fw = root / "fw"
    fw.mkdir(exist_ok=True)
    (fw / "__init__.py").write_text("")
    (fw / "core.py").write_text(f"X = {version}\n")
    if extra_module:
        (fw / "spare.py").write_text("Y = 2\n")
    elif (fw / "spare.py").exists():
        (fw / "spare.py").unlink()
    (fw / "main.py").write_text(MAIN)
    return fw


def make_build(root, target="unix", **kw):
    fw = firmware(root, **kw)
    packages = (Package("lwnode", fw), Package("lwproto", build.REPO / "protocol"))
    build.build(target, out=root / target, packages=packages, main=fw / "main.py", progress=QUIET)
    return root / target


def node_config(root, node=0x0102):
    path = root / ("node-%04x.json" % node)
    path.write_text(json.dumps({"node": node, "segment": 3, "key": "00" * 32, "board": "unix",
                                "position": {"lat": 48.5, "lon": 37.9},
                                "broker": {"host": "127.0.0.1", "port": 1}}))
    return path


# ---------------------------------------------------------------- virtual board (real mpremote)

def test_flash_copies_the_build_then_only_what_changed(virtual_board, tmp_path):
    remote = Mpremote(virtual_board.port)
    config = node_config(tmp_path)
    out = make_build(tmp_path)
    first = flash(remote, out, config, 0x0102, Options(reset="virtual", self_test_timeout=20), progress=QUIET)
    fs = virtual_board.fs
    assert (fs / "lib/lwnode/core.mpy").exists() and (fs / "lib/lwproto/frame.mpy").exists()
    assert (fs / BOARD_CONFIG).read_bytes() == config.read_bytes()
    assert json.loads((fs / BOARD_MANIFEST).read_text())["target"] == "unix"
    assert first["copied"][-1] == BOARD_MANIFEST
    assert first["self_test"].startswith("linewatch node 0x0102 self-test ok (virtual, core 1, frame ")

    again = flash(remote, out, config, 0x0102, Options(reset="none"), progress=QUIET)
    assert again["copied"] == [] and again["removed"] == []

    out = make_build(tmp_path, version=2, extra_module=False)
    changed = flash(remote, out, config, 0x0102, Options(reset="virtual", self_test_timeout=20), progress=QUIET)
    assert changed["copied"] == ["lib/lwnode/core.mpy", BOARD_MANIFEST]
    assert changed["removed"] == ["lib/lwnode/spare.mpy"] and not (fs / "lib/lwnode/spare.mpy").exists()
    assert "core 2" in changed["self_test"]


def test_a_build_for_another_architecture_is_refused_before_copying(virtual_board, tmp_path):
    out = make_build(tmp_path, target="esp32")
    with pytest.raises(FlashError, match=r"wrong architecture: the build is for esp32 \(xtensawin\), the board is x64"):
        flash(Mpremote(virtual_board.port), out, node_config(tmp_path), 0x0102, Options(reset="none"),
              progress=QUIET)
    assert list(virtual_board.fs.iterdir()) == []


def test_the_flash_command_on_the_virtual_board(virtual_board, tmp_path):
    out = make_build(tmp_path)
    config = node_config(tmp_path)
    cmd = [LINEWATCH, "flash", "--port", virtual_board.port, "--node", "0x0102", "--build", str(out),
           "--config", str(config), "--virtual", "--self-test-timeout", "20"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flash: copied" in result.stdout and "self-test ok" in result.stdout
    assert "broker 127.0.0.1:1 not reachable" in result.stdout
    wrong_node = subprocess.run(cmd[:5] + ["0x0103"] + cmd[6:], capture_output=True, text=True, timeout=60)
    assert wrong_node.returncode == 1 and "not 0x0103" in wrong_node.stderr


def test_no_such_port_is_named(tmp_path):
    with pytest.raises(NoSuchPort, match="no such port /dev/ttyNOPE9"):
        Mpremote("/dev/ttyNOPE9").probe()
    result = subprocess.run([LINEWATCH, "flash", "--port", "/dev/ttyNOPE9", "--node", "0x0102",
                             "--build", str(make_build(tmp_path)), "--config", str(node_config(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no such port /dev/ttyNOPE9" in result.stderr


def test_a_serial_device_without_micropython_is_named(tmp_path):
    """A PTY to `cat`: it echoes, but there is no raw REPL behind it (mpremote gives up after ~10 s)."""
    tty = tmp_path / "tty"
    proc = subprocess.Popen(["socat", f"PTY,link={tty},raw,echo=0", "EXEC:cat,pty,raw,echo=0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(50):
            if tty.exists():
                break
            subprocess.run(["sleep", "0.1"])
        with pytest.raises(NoMicroPython, match="does not answer like MicroPython"):
            Mpremote(str(tty), timeout=30).probe()
    finally:
        proc.terminate()
        proc.wait(5)


# ---------------------------------------------------------------- fake transport

class FakeBoard:
    """Stands in for Mpremote: an in-memory filesystem and a scripted console."""

    def __init__(self, free=1 << 20, network=False, mpy=2822, console=()):
        self.port = "/dev/fake"
        self.files: dict[str, bytes] = {}
        self.free, self.network, self.mpy = free, network, mpy
        self.console_lines = list(console)
        self.calls: list[str] = []

    def probe(self):
        return {"mpy": self.mpy, "platform": "esp32", "version": "1.29.0", "free": self.free, "network": self.network}

    def hashes(self, paths, roots):
        import hashlib
        present = [p for p in self.files if any(p.startswith(r + "/") for r in roots)]
        return {"hashes": {p: hashlib.sha256(self.files[p]).hexdigest() if p in self.files else None for p in paths},
                "present": present}

    def make_dirs(self, dirs):
        pass

    def remove(self, paths):
        for p in paths:
            del self.files[p]

    def copy(self, pairs):
        for local, remote in pairs:
            data = Path(local).read_bytes()
            if len(data) > self.free:
                raise OutOfSpace("the board on /dev/fake is out of space ([Errno 28] ENOSPC)")
            self.files[remote] = data
            self.calls.append(f"cp {remote}")

    def mip_install(self, package):
        self.calls.append(f"mip {package}")

    def lines(self, timeout, start=b""):
        self.calls.append(f"console {start!r}")
        yield None
        yield from self.console_lines


def esp32_board(**kw):
    return FakeBoard(mpy=6 | 3 << 8 | 10 << 10, **kw)


def test_hard_reset_then_the_self_test_line_from_the_console(tmp_path):
    board = esp32_board(console=["ets Jun  8 2016 00:22:57", "rst:0x1 (POWERON_RESET)",
                                 "linewatch node 0x0102 self-test ok (mic, accel, battery 3950 mV)"])
    summary = flash(board, make_build(tmp_path, target="esp32"), node_config(tmp_path), 0x0102,
                    Options(reset="hard"), console=board, progress=QUIET)
    assert "machine.reset()" in board.calls[-1] and summary["self_test"].endswith("battery 3950 mV)")


@pytest.mark.parametrize("console, message", [
    (["Traceback (most recent call last):", '  File "main.py", line 3', "ImportError: no module named 'lwnode'"],
     "(?s)stopped with an error before its self-test:.*ImportError"),
    (["linewatch node 0x0102 self-test FAILED: OSError(19,)"], "self-test failed"),
    (["linewatch node 0x0777 self-test ok ()"], "not node 0x0102"),
    (["boot..."], "no self-test line from the board within"),
])
def test_what_the_console_says_when_the_board_does_not_come_up(tmp_path, console, message):
    board = esp32_board(console=console)
    with pytest.raises(FlashError, match=message):
        flash(board, make_build(tmp_path, target="esp32"), node_config(tmp_path), 0x0102,
              Options(reset="hard", self_test_timeout=1), console=board, progress=QUIET)


def test_a_board_out_of_space_is_refused_before_copying(tmp_path):
    board = esp32_board(free=4000)
    with pytest.raises(FlashError, match="out of space: .* bytes to copy"):
        flash(board, make_build(tmp_path, target="esp32"), node_config(tmp_path), 0x0102,
              Options(reset="none"), progress=QUIET)
    assert board.files == {}


def test_requirements_come_with_mip_when_the_board_has_network(tmp_path, monkeypatch):
    out = make_build(tmp_path, target="esp32")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["requires"] = ["aioble"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    online = esp32_board(network=True)
    flash(online, out, node_config(tmp_path), 0x0102, Options(reset="none"), progress=QUIET)
    assert "mip aioble" in online.calls
    with pytest.raises(FlashError, match="no network for mip and the build folder has no lib/aioble"):
        flash(esp32_board(), out, node_config(tmp_path), 0x0102, Options(reset="none"), progress=QUIET)


def test_an_old_micropython_is_named(tmp_path):
    with pytest.raises(FlashError, match=r"\.mpy files are v6\.3, the board's MicroPython 1\.29\.0 loads v5"):
        flash(FakeBoard(mpy=5 | 10 << 10), make_build(tmp_path, target="esp32"), node_config(tmp_path), 0x0102,
              Options(reset="none"), progress=QUIET)
