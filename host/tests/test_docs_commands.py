"""Every `linewatch` command line in README.md and docs/ works as written.

Each one (in code blocks and in backquotes in the prose, continuation lines joined, `sudo`
and the path to the program dropped) is parsed by the real command-line parser exactly as
written: an option the command does not take, a missing argument or a wrong id form fails
here. Lines with placeholders (`...`, `[--opt]`, `a|b`, `<x>`) are shapes, not commands.

What can run in a test runs for real, as written, in a fresh folder: the aggregator guide's
"Running it" block against a private Mosquitto (the aggregator.toml the guide starts from,
docs/aggregator.toml, with the broker's port changed), and the README's `nodes init-key`.
The rest run for real elsewhere: demo and emulate (test_cli_behaviour.py, test_e2e.py),
provision, broker install, frames tail and sniff against the provisioned broker
(tools/tests/test_broker_setup.py), build and flash (tools/tests/test_build.py,
test_flash_firmware.py, test_first_hour.py).
"""
from __future__ import annotations

import json
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.publish as publish
import pytest

from linewatch import cli, keys
from linewatch.commission.store import Batch, open_store
from lwproto import const, frame, topic

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINEWATCH = str(Path(sys.executable).parent / "linewatch")
PROGRAM = re.compile(r"^(?:sudo\s+(?:-u\s+\S+\s+)?)?(?:\S*/)?linewatch\s")
INLINE = re.compile(r"`((?:sudo\s+)?linewatch\s[^`]+)`")
PLACEHOLDER = re.compile(r"\.\.\.|\[|\||<|>")


def command_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, command) for every linewatch command line of a Markdown file."""
    found = []
    lines = path.read_text().splitlines()
    fenced = False
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.strip().startswith("```"):
            fenced = not fenced
        code = fenced or line.startswith("    ")
        if code and PROGRAM.match(line.strip()):
            start, text = k + 1, line.strip()
            while text.endswith("\\") and k + 1 < len(lines):
                k += 1
                text = text[:-1] + " " + lines[k].strip()
            found.append((start, text))
        elif not code:
            found += [(k + 1, m) for m in INLINE.findall(line) if len(m.split()) > 2]
        k += 1
    return found


def argv_of(text: str) -> list[str] | None:
    """The arguments after the program, or None for a shape with placeholders."""
    text = text.replace("'...'", "'x'")
    words = shlex.split(text, comments=True)
    if PLACEHOLDER.search(" ".join(words)) or any(re.fullmatch(r"[A-Z][A-Z_]*", w) for w in words):
        return None                    # ..., [--opt], a|b, <x>, N, FILE
    if words[0] == "sudo":
        words = words[3:] if words[1] == "-u" else words[1:]
    if words[-1] == "&":
        words.pop()                    # started in the background
    return words[1:]


ALL = [(path.relative_to(REPO), number, text) for path in DOCS for number, text in command_lines(path)]


def test_the_docs_have_command_lines_to_check():
    checked = [t for _, _, t in ALL if argv_of(t) is not None]
    assert len(checked) >= 25, checked
    assert any("aggregator --config aggregator.toml -v" in t for t in checked)
    assert any("set-status I-000001" in t for t in checked)


@pytest.mark.parametrize("where, number, text", ALL, ids=[f"{w}:{n}" for w, n, _ in ALL])
def test_every_documented_command_line_is_accepted_as_written(where, number, text, capsys):
    argv = argv_of(text)
    if argv is None:
        return                                     # a shape: `linewatch score TRUTH INCIDENTS [--json]`
    try:
        args = cli.build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}:{number}: `{text}` is refused: {capsys.readouterr().err.strip()} (exit {exc.code})")
    assert getattr(args, "func", None), f"{where}:{number}: `{text}` names no command"


def _block(path: Path, first: str) -> list[str]:
    """The commands of the code block whose first command starts with `first`, in order."""
    commands = [t for _, t in command_lines(path)]
    start = next(k for k, t in enumerate(commands) if t.startswith(first))
    block = [commands[start]]
    for t in commands[start + 1:]:
        if not t.startswith("linewatch ") or "--config aggregator.toml" not in t:
            break
        block.append(t)
    return block


def run(text: str, cwd: Path, **kw):
    return subprocess.run([LINEWATCH, *argv_of(text)], cwd=cwd, capture_output=True, text=True, timeout=60, **kw)


def test_the_aggregator_guide_runs_as_written(tmp_path, mosquitto):
    """docs/aggregator.md "Running it", line by line, from the documented aggregator.toml."""
    block = _block(REPO / "docs" / "aggregator.md", "linewatch nodes --config aggregator.toml init-key")
    assert len(block) == 9, block
    init_key, add, aggregator, status, tail, stats, verify, export, set_status = block
    config = (REPO / "docs" / "aggregator.toml").read_text().replace("port = 1883", f"port = {mosquitto.port}", 1)
    (tmp_path / "aggregator.toml").write_text(config)
    assert run(init_key, tmp_path).returncode == 0
    result = run(add, tmp_path)
    assert result.returncode == 0 and "node 0x0102 segment 3" in result.stdout, result.stderr
    service = subprocess.Popen([LINEWATCH, *argv_of(aggregator)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    watcher = None
    try:
        err = ""
        deadline = time.monotonic() + 30
        while "listening on" not in err and time.monotonic() < deadline and service.poll() is None:
            err += service.stderr.readline()
        assert "listening on" in err, err
        watcher = subprocess.Popen([LINEWATCH, *argv_of(tail)], cwd=tmp_path, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        key = keys.derive(keys.load_master_key(tmp_path / "master.key"), 0x0102)
        beat = {"battery_mv": 3900, "temperature_c": 9.5, "uptime_s": 5, "rssi_dbm": -60, "queue_depth": 0,
                "free_memory": 40000, "detections": 0, "dropped": 0, "reconnects": 0, "refused_commands": 0,
                "radio_ms": 0, "slept_s": 0, "heartbeat_s": 60, "power": 0}
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in watcher.stdout], daemon=True).start()
        seq, line = 0, ""
        deadline = time.monotonic() + 30
        while "heartbeat node=0x0102" not in line and time.monotonic() < deadline:
            seq += 1           # published until the tail, subscribing meanwhile, shows one
            data = frame.encode(key, const.HEARTBEAT, 0x0102, 1, seq, time.time_ns() // 1000, const.CLOCK_NTP,
                                900, beat)
            publish.single(topic.uplink(3, 0x0102, const.HEARTBEAT), data, qos=1, hostname=mosquitto.host,
                           port=mosquitto.port)
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                pass
        assert "heartbeat node=0x0102" in line and "tag_ok" in line, (line, watcher.poll())
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(10) == 128 + signal.SIGINT
        time.sleep(0.5)                               # the service commits what it received
        result = run(status, tmp_path)
        assert result.returncode == 0 and "0x0102" in result.stdout and "online" in result.stdout, result.stderr
        result = run(stats, tmp_path)
        assert result.returncode == 0 and "heartbeat" in result.stdout, result.stderr
        result = run(verify, tmp_path)
        assert result.returncode == 0 and "evidence: OK" in result.stdout, result.stdout + result.stderr
        store = open_store(str(tmp_path / "linewatch.db"))
        body = {"id": "I-000001", "class": "explosion", "fix": "tdoa", "provisional": False, "reports": [1, 2, 3],
                "nodes": [0x0102, 0x0103, 0x0104], "lat": 48.0, "lon": 37.0, "side": "L", "time_utc_us": 1}
        store.commit(Batch(incidents={"I-000001": ("new", 1, json.dumps(body))}))
        store.close()
        result = run(export, tmp_path)
        assert result.returncode == 0 and (tmp_path / "incidents.jsonl").exists(), result.stderr
        result = run(set_status, tmp_path)
        assert result.returncode == 0 and "I-000001: new -> confirmed" in result.stdout, result.stderr
    finally:
        for proc in (watcher, service):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
    assert service.returncode == 0


def test_the_readme_first_key(tmp_path):
    text = next(t for _, _, t in ALL if t == "linewatch nodes init-key")
    result = run(text, tmp_path)
    assert result.returncode == 0 and (tmp_path / "master.key").exists(), result.stderr
