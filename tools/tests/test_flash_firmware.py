"""The field guide's virtual-board path, run as written: `linewatch nodes init-key`, `provision
--board unix` (no feed: the board hears a quiet field), Mosquitto started from the provisioned
mosquitto.conf, the aggregator with the commission's credentials file, `build --target unix`,
`virtual-board`, `frames tail` with the commission's credentials, and `flash --virtual` with
the REAL firmware onto the unix port (192 KB: a node over TLS plus what the REPL keeps,
docs/field-guide.md): the self-test line, the birth frame verified by the flash tool with the
config's key and by `frames tail` with the key derived from the master key; then the
commission's side: `nodes status` shows the node online, `evidence verify` its frames,
`incidents list` none."""
from __future__ import annotations

import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from linewatch.mosquitto import free_port, wait_for_port
from lwtools.remote import Mpremote

REPO = Path(__file__).resolve().parents[2]
LINEWATCH = str(Path(sys.executable).parent / "linewatch")


def guide_block() -> list[str]:
    """The command lines of the first code block under "## The virtual board"."""
    text = (REPO / "docs" / "field-guide.md").read_text()
    section = text[text.index("## The virtual board"):]
    block = section[section.index("```sh\n") + 6:]
    block = block[:block.index("```")]
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_the_guides_virtual_board_path_works_as_written(micropython):
    if not shutil.which("socat"):
        pytest.skip("socat not installed (tools/setup.sh test installs it)")
    lines = guide_block()
    assert [[Path(w).name for w in shlex.split(line, comments=True)[:2]] for line in lines] == [
        ["linewatch", "nodes"], ["linewatch", "provision"], ["mosquitto", "-c"], ["linewatch", "aggregator"],
        ["linewatch", "build"], ["linewatch", "virtual-board"], ["linewatch", "frames"], ["linewatch", "flash"],
        ["linewatch", "nodes"], ["linewatch", "evidence"], ["linewatch", "incidents"]]
    port, desk, web = free_port(), free_port(), free_port()
    # a folder the `mosquitto` user may enter (a root-started broker drops to it)
    folder = Path(tempfile.mkdtemp(prefix="lw-guide-"))
    folder.chmod(0o755)
    background: list[subprocess.Popen] = []
    tail_lines: queue.Queue = queue.Queue()
    commission_log: queue.Queue = queue.Queue()
    said: dict[str, str] = {}
    try:
        for line in lines:
            words = shlex.split(line.replace("1884", str(port)).replace("1885", str(desk)).replace("8470", str(web)),
                                comments=True)
            in_background = words[-1] == "&"
            words = [w for w in words if w != "&"]
            program = LINEWATCH if words[0] == "linewatch" else words[0]     # /usr/sbin/mosquitto, as written
            words[0] = Path(words[0]).name
            if in_background:
                proc = subprocess.Popen([program, *words[1:]], cwd=folder, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
                background.append(proc)
                if words[0] == "mosquitto":
                    wait_for_port("127.0.0.1", port)
                    wait_for_port("127.0.0.1", desk)
                elif words[1] == "aggregator":
                    threading.Thread(target=lambda p=proc: [commission_log.put(x) for x in p.stdout],
                                     daemon=True).start()
                    _wait_for(commission_log, "listening on")
                elif words[1] == "virtual-board":
                    assert "virtual board on" in proc.stdout.readline()
                elif words[1] == "frames":
                    threading.Thread(target=lambda p=proc: [tail_lines.put(x) for x in p.stdout],
                                     daemon=True).start()
                    _wait_for(tail_lines, "listening on")
                continue
            if words[1:3] == ["nodes", "status"]:
                _wait_for(commission_log, "node 0x0102 born")   # stored by the time a person types it
            result = subprocess.run([program, *words[1:]], cwd=folder, capture_output=True, text=True,
                                    timeout=240)
            assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
            said[" ".join(words[1:3])] = result.stdout + result.stderr
        flashed = said["flash --port"]
        assert "linewatch node 0x0102 self-test ok (board unix" in flashed, flashed
        assert "birth of node 0x0102 verified: firmware" in flashed and "board unix, boot 1" in flashed, flashed
        birth = _wait_for(tail_lines, "birth node=0x0102")
        assert "boot=1 seq=1" in birth and "tag_ok" in birth, birth   # master key -> node key: verified
        # the commission stored the birth: the node online, its frames in the evidence log
        status = said["nodes status"]
        assert "0x0102" in status and "online" in status, status
        assert "evidence: OK" in said["evidence verify"], said["evidence verify"]
        assert "no incidents" in said["incidents list"], said["incidents list"]
        fs = folder / "board" / "fs"
        assert (fs / "lib/lwnode/node.mpy").exists() and (fs / "lw-manifest.json").exists()
        assert (fs / "lib/lwnode/hal/quiet.mpy").exists()
        # a node that fails its self-test (its feed file is missing) stops, and the board stays
        # at its REPL: the unix port and its PTY live on for the next flash
        config = json.loads((folder / "provisioned" / "node-0102.json").read_text())
        (folder / "bad.json").write_text(json.dumps({**config, "feed": {"audio": "missing.raw"}}))
        failed = subprocess.run([LINEWATCH, "flash", "--port", "board/tty", "--node", "0x0102", "--build",
                                 "build/unix", "--virtual", "--config", "bad.json"], cwd=folder,
                                capture_output=True, text=True, timeout=240)
        assert failed.returncode == 1 and "self-test failed" in failed.stderr and "microphone" in failed.stderr
        assert Mpremote(str(folder / "board" / "tty")).exec("print(6 * 7)").strip() == "42"
    finally:
        for proc in reversed(background):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for(lines: queue.Queue, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no {text!r} within {timeout:.0f} s: {seen}")


