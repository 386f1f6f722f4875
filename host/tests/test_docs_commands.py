"""Every command line in README.md, docs/*.md, firmware/README.md and protocol/SPEC.md works as
written.

Each one (in code blocks and in backquotes in the prose, continuation lines joined, `sudo`
and the path to the program dropped) is checked by the program's own parser, exactly as
written: `linewatch ...` by the real command-line parser, `python -m lwtools...` by the
module's argparse (run up to its parse, no further), `pytest ...` by pytest collecting what it
names (its options, paths and `-k`), `make X` against the Makefile (also wherever the tree names
one in backquotes: comments, messages, pyproject.toml). An option the command does
not take, a missing argument, a wrong id form, a module or test that is not there fails here.
A shape (`[--opt]`, `a|b`) is checked in each of its forms; a shape's placeholder (`N`, `NAME`)
takes a sample value; `...` and `<x>` are shapes only. Every other command line of a code
block is one this machine cannot run in a test (a board's esptool, the Pi's apt-get and
systemctl) and is listed in NOT_RUN with the reason, so a new one cannot slip in unchecked.

What can run in a test runs for real, as written, in a fresh folder: the aggregator guide's
"Running it" block against a private Mosquitto (the aggregator.toml the guide starts from,
docs/aggregator.toml, with the broker's port changed), and the README's `nodes init-key`.
The rest run for real elsewhere: demo and emulate (test_cli_behaviour.py, test_e2e.py),
provision, broker install, frames tail and sniff against the provisioned broker
(tools/tests/test_broker_setup.py), build and flash, and the field guide's virtual-board path
with the commission after it (tools/tests/test_build.py, test_flash_firmware.py).
"""
from __future__ import annotations

import argparse
import itertools
import json
import queue
import re
import runpy
import shlex
import shutil
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
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "firmware" / "README.md",
        REPO / "protocol" / "SPEC.md"]
LINEWATCH = str(Path(sys.executable).parent / "linewatch")
PROGRAMS = r"(?:linewatch|python3?|pytest|make|mosquitto)"
PROGRAM = re.compile(r"^(?:sudo\s+(?:-u\s+\S+\s+)?)?(?:\S*/)?%s\s" % PROGRAMS)
INLINE = re.compile(r"`((?:sudo\s+)?(?:\S*/)?%s\s[^`]+)`" % PROGRAMS)
CONSOLE = re.compile(r"^linewatch node 0x")        # what a board prints (firmware/README.md), no command
PLACEHOLDER = re.compile(r"\.\.\.|<|>")
SAMPLES = {"N": "1", "NAME": "ana", "RUN_DIR": "run", "TRUTH": "truth.json", "INCIDENTS": "incidents.jsonl",
           "FILE": "out.jsonl"}

# Command lines of code blocks no test runs, by program, and why (each still read by a person).
NOT_RUN = {
    "esptool.py": "writes MicroPython onto a real board (field guide step 1)",
    "mpremote": "talks to a real board; linewatch flash runs the real mpremote against the virtual board",
    "socat": "what `linewatch virtual-board` runs (tools/virtual_board.py, test_flash_firmware.py)",
    "apt-get": "the Pi's system packages (tools/setup.sh installs the same ones)",
    "useradd": "the Pi's service user", "mkdir": "the Pi's folders", "cp": "the Pi's files",
    "pip": "an install into the Pi's venv", "python3": "`python3 -m venv` on the Pi",
    "systemctl": "the Pi's systemd", "journalctl": "the Pi's journal",
}


def command_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, command) for every command line of a Markdown file whose program is
    linewatch, python, pytest, make or mosquitto."""
    found = []
    lines = path.read_text().splitlines()
    fenced = False
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.strip().startswith("```"):
            fenced = not fenced
        code = fenced or line.startswith("    ")
        if code and PROGRAM.match(line.strip()) and not CONSOLE.match(line.strip()):
            start, text = k + 1, line.strip()
            while _continued(text) and k + 1 < len(lines):
                k += 1
                text = _joined(text, lines[k].strip())
            found.append((start, text))
        elif not code:
            found += [(k + 1, m) for m in INLINE.findall(line)
                      if len(m.split()) > (2 if m.split()[0].endswith("linewatch") else 1)]
        k += 1
    return found


def _continued(text: str) -> bool:
    return text.endswith("\\")


def _joined(text: str, more: str) -> str:
    return text[:-1] + " " + more


def words_of(text: str) -> list[str]:
    """The command's words, `sudo` and the program's folder dropped, a trailing `&` too."""
    words = shlex.split(text.replace("'...'", "'x'"), comments=True)
    if words[0] == "sudo":
        words = words[3:] if words[1] == "-u" else words[1:]
    if words[-1] == "&":
        words.pop()                    # started in the background
    return [words[0].rsplit("/", 1)[-1], *words[1:]]


def forms(words: list[str]) -> list[list[str]] | None:
    """Each form of a shape: optional parts `[--opt x]` in, alternatives `a|b` one by one (the
    k-th form takes each word's k-th choice, or its last); placeholders get a sample. None for
    a shape with no runnable form (`...`, `<x>`, an unknown placeholder)."""
    if PLACEHOLDER.search(" ".join(words)):
        return None
    choices = []
    for w in words:
        w = w.replace("[", "").replace("]", "")
        if not w:
            continue
        if re.fullmatch(r"[A-Z][A-Z_]*", w):
            if w not in SAMPLES:
                return None
            w = SAMPLES[w]
        choices.append(w.split("|") if "|" in w and not w.startswith("-") else [w])
    widest = max(len(c) for c in choices)
    return [[c[min(k, len(c) - 1)] for c in choices] for k in range(widest)]


def argv_of(text: str) -> list[str] | None:
    """The arguments after `linewatch` (the first form), or None for a shape with no form."""
    found = forms(words_of(text))
    return found[0][1:] if found else None


ALL_COMMANDS = [(path.relative_to(REPO), number, text) for path in DOCS for number, text in command_lines(path)]
ALL = [c for c in ALL_COMMANDS if words_of(c[2])[0] == "linewatch"]


def kind(text: str) -> str:
    """linewatch, module (python -m lwtools...), pytest, make or mosquitto."""
    words = words_of(text)
    if words[0] in ("python", "python3") and words[1:2] == ["-m"] and words[2] == "pytest":
        return "pytest"
    if words[0] in ("python", "python3") and words[1:2] == ["-m"] and words[2].startswith("lwtools."):
        return "module"
    return words[0]


def _ids(rows):
    return [f"{w}:{n}" for w, n, _ in rows]


def test_the_docs_have_command_lines_to_check():
    checked = [t for _, _, t in ALL if argv_of(t) is not None]
    assert len(checked) >= 25, checked
    assert any("aggregator --config aggregator.toml -v" in t for t in checked)
    assert any("set-status I-000001" in t for t in checked)


@pytest.mark.parametrize("where, number, text", ALL, ids=_ids(ALL))
def test_every_documented_command_line_is_accepted_as_written(where, number, text, capsys):
    for argv in forms(words_of(text)) or []:       # none: a shape like `linewatch emulate ...`
        try:
            args = cli.build_parser().parse_args(argv[1:])
        except SystemExit as exc:
            pytest.fail(f"{where}:{number}: `{text}` is refused as `{' '.join(argv)}`: "
                        f"{capsys.readouterr().err.strip()} (exit {exc.code})")
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


# ---------------------------------------------------------------- the other programs

MODULES = [c for c in ALL_COMMANDS if kind(c[2]) == "module"]
PYTESTS = [c for c in ALL_COMMANDS if kind(c[2]) == "pytest"]
MAKES = [c for c in ALL_COMMANDS if kind(c[2]) == "make"]


class _Parsed(Exception):
    """Raised by argparse's parse_args once it accepted the arguments: the module stops there."""


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")   # runpy: imported before, run again
@pytest.mark.parametrize("where, number, text", MODULES, ids=_ids(MODULES))
def test_every_documented_python_module_takes_its_arguments_as_written(where, number, text, monkeypatch, capsys):
    original = argparse.ArgumentParser.parse_args
    for words in forms(words_of(text)) or []:
        module, args = words[2], words[3:]
        if re.search(r"\.[A-Z][A-Z_]*$", module):
            return                        # `python -m lwtools.bench.NAME`: a shape
        source = REPO / "tools" / (module.split(".", 1)[1].replace(".", "/") + ".py")
        assert source.exists(), f"{where}:{number}: `{text}`: no module {module}"
        # a module that does not read its arguments with argparse would run here, and would take
        # a mistyped option in silence
        assert "parse_args(" in source.read_text(), f"{module} reads no arguments with argparse"

        def parse(self, argv=None, namespace=None):
            raise _Parsed(original(self, argv, namespace))
        monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse)
        monkeypatch.setattr(sys, "argv", [module, *args])
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=False)
        except _Parsed:
            continue
        except SystemExit as exc:
            pytest.fail(f"{where}:{number}: `{text}` is refused as `{' '.join(words)}`: "
                        f"{capsys.readouterr().err.strip()} (exit {exc.code})")
        except ImportError as exc:
            pytest.fail(f"{where}:{number}: `{text}`: {exc}")
        pytest.fail(f"{where}:{number}: {module} ran without reading its arguments with argparse")


@pytest.mark.parametrize("where, number, text", PYTESTS, ids=_ids(PYTESTS))
def test_every_documented_pytest_line_collects_tests_as_written(where, number, text):
    words = forms(words_of(text))
    if words is None:
        return                            # `pytest hil-tests --port ...`: the shape of the line below it
    args = words[0][3:] if words[0][0].startswith("python") else words[0][1:]
    result = subprocess.run([sys.executable, "-m", "pytest", *args, "--collect-only", "-p", "no:cacheprovider"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    # 0: it collected tests; 4: an option or path it does not know; 5: nothing selected
    assert result.returncode == 0, f"{where}:{number}: `{text}`: exit {result.returncode}\n" \
                                   f"{result.stdout[-2000:]}{result.stderr[-2000:]}"


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))


@pytest.mark.parametrize("where, number, text", MAKES, ids=_ids(MAKES))
def test_every_documented_make_target_exists(where, number, text):
    target = words_of(text)[1]
    if target.startswith("bench-"):       # `bench-%`: python -m lwtools.bench.<name>
        assert (REPO / "tools" / "bench" / f"{target[6:]}.py").exists(), f"{where}:{number}: `{text}`"
    else:
        assert target in _make_targets(), f"{where}:{number}: `{text}`: no such target in the Makefile"


# `make X` in backquotes anywhere in the tree (comments, docstrings, messages, pyproject.toml),
# a line break and the comment's `#` inside the backquotes too: a newcomer reads those as well
MAKE_NAMED = re.compile(r"`make(?:\s|#)+([a-z][\w-]*)[^`]*`")


def _make_targets_named_anywhere() -> list[tuple[str, int, str]]:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    found = []
    for name in tracked.split():
        path = REPO / name
        if name.startswith("docs/unlanded/") or path.suffix in (".png", ".mpy", ".bin", ".gz") or not path.is_file():
            continue                      # unlanded/: patches kept as they were, not the product
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found += [(name, text.count("\n", 0, m.start()) + 1, m.group(1)) for m in MAKE_NAMED.finditer(text)
                  if m.group(1) != "X"]
    return found


def test_every_make_target_named_anywhere_in_the_tree_exists():
    named = _make_targets_named_anywhere()
    assert any(name == "pyproject.toml" and target == "typecheck" for name, _, target in named), named
    missing = [f"{name}:{number}: make {target}" for name, number, target in named
               if not (target in _make_targets() or target.startswith("bench-")
                       and (REPO / "tools" / "bench" / f"{target[6:]}.py").exists())]
    assert missing == []


def _code_command_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, first word) of every line of a code block that starts with a program this
    machine has or one NOT_RUN names, continuation lines left out."""
    found, fenced, continued = [], False, False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip().startswith("```"):
            fenced, continued = not fenced, False
            continue
        if not (fenced or line.startswith("    ")) or not line.strip():
            continued = False
            continue
        text = line.strip()
        if not continued and not CONSOLE.match(text) and not re.match(r"^[\w.-]+\s*=", text):   # TOML
            first = text.split()[0]
            if first == "sudo":
                first = text.split()[3 if text.split()[1] == "-u" else 1]
            first = first.rsplit("/", 1)[-1]
            if first in NOT_RUN or (re.fullmatch(r"[\w.-]+", first) and shutil.which(first)) \
                    or re.fullmatch(PROGRAMS, first):
                found.append((number, first))
        continued = text.endswith("\\")
    return found


MOSQUITTOS = [c for c in ALL_COMMANDS if kind(c[2]) == "mosquitto"]
PROVISIONED_CONF = "provisioned/broker/mosquitto.conf"


@pytest.mark.parametrize("where, number, text", MOSQUITTOS, ids=_ids(MOSQUITTOS))
def test_every_documented_mosquitto_line_is_the_one_the_virtual_board_test_runs(where, number, text):
    guide = (REPO / "docs" / "field-guide.md").read_text()
    block = guide[guide.index("## The virtual board"):]
    run_by_the_test = block[:block.index("```", block.index("```sh") + 5)]
    assert str(where) == "docs/field-guide.md" and words_of(text) == ["mosquitto", "-c", PROVISIONED_CONF] \
        and "/usr/sbin/mosquitto -c %s &" % PROVISIONED_CONF in run_by_the_test, "run it in a test"


def test_every_command_line_of_a_code_block_is_checked_or_named_as_not_run():
    checked = {(str(w), n) for w, n, t in ALL_COMMANDS if kind(t) in ("linewatch", "module", "pytest", "make",
                                                                        "mosquitto")}
    unchecked = [f"{path.relative_to(REPO)}:{n}: {first}" for path in DOCS for n, first in _code_command_lines(path)
                 if (str(path.relative_to(REPO)), n) not in checked and first not in NOT_RUN]
    assert unchecked == []


def test_no_documented_command_runs_a_venv_program_under_sudo_by_its_bare_name():
    """sudo's secure_path (Debian's default) leaves the venv out of PATH: `sudo linewatch ...`
    is "command not found" even with the venv active. Under sudo a venv program is named by
    its path ($VIRTUAL_ENV/bin/linewatch, /opt/linewatch/.venv/bin/linewatch)."""
    bare = [f"{w}:{n}: {t}" for w, n, t in ALL_COMMANDS
            if re.match(r"sudo\s+(?:-u\s+\S+\s+)?(?:linewatch|pytest)\s", t)]
    assert bare == []


def test_the_docs_have_commands_of_every_kind_to_check():
    assert len(MODULES) >= 40 and len(PYTESTS) >= 8 and len(MAKES) >= 8, (len(MODULES), len(PYTESTS), len(MAKES))
    assert any("node_memory --no-acks 128K 120K" in t for _, _, t in MODULES)
    assert any("hil-tests --port /dev/ttyUSB0" in t and "--feed-on-board" in t for _, _, t in PYTESTS)
