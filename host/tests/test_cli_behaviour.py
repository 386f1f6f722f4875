"""The `linewatch` command as a newcomer meets it: -v before or after the subcommand, a closed
pipe ends a listing quietly, and SIGTERM or SIGINT to demo/emulate stops every child they
started (private Mosquitto, aggregator), run as real processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linewatch import cli
from linewatch.commission.store import Batch, open_store

LINEWATCH = str(Path(sys.executable).parent / "linewatch")


@pytest.mark.parametrize("argv, level", [
    (["aggregator", "--config", "my.toml"], 0),
    (["aggregator", "--config", "my.toml", "-v"], 1),
    (["-v", "aggregator", "--config", "my.toml"], 1),
    (["-v", "aggregator", "-v", "--config", "my.toml"], 2),
    (["nodes", "--config", "my.toml", "status", "-v"], 1),
    (["nodes", "-v", "--config", "my.toml", "status"], 1),
])
def test_verbose_is_accepted_before_and_after_the_subcommand(argv, level):
    assert cli.verbosity(cli.build_parser().parse_args(argv)) == level


def test_a_listing_into_a_closed_pipe_ends_quietly(tmp_path):
    """`linewatch incidents list | head`: the reader goes away, no traceback."""
    db = str(tmp_path / "lw.db")
    store = open_store(db)
    rows = {}
    for n in range(1, 3000):
        body = {"id": "I-%06d" % n, "class": "explosion", "time_utc_us": 1_795_000_000_000_000 + n,
                "fix": "tdoa", "lat": 48.0, "lon": 37.0, "side": "L", "nodes": [1, 2, 3], "provisional": False,
                "reports": [1, 2, 3]}
        rows["I-%06d" % n] = ("new", n, json.dumps(body))
    store.commit(Batch(incidents=rows))
    store.close()
    for argv in (["incidents", "--db", db, "list"], ["incidents", "--db", db, "export", "-"],
                 ["nodes", "--db", db, "list"]):
        proc = subprocess.Popen([LINEWATCH, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.readline()
        proc.stdout.close()            # like `head -1`
        err = proc.stderr.read().decode()
        assert proc.wait(30) == 0, err
        assert "Traceback" not in err and "BrokenPipe" not in err, err


def _children_of_run(folder: Path) -> list[int]:
    """Processes whose command line names the run's folder (its Mosquitto, its aggregator)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("command, sig", [("demo", signal.SIGTERM), ("demo", signal.SIGINT),
                                          ("emulate", signal.SIGTERM)])
def test_a_signal_stops_the_run_and_every_child_it_started(tmp_path, command, sig):
    folder = tmp_path / "run"
    argv = ["demo", "--keep", str(folder)] if command == "demo" else ["emulate", "demo", "--out", str(folder)]
    proc = subprocess.Popen([LINEWATCH, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)
    try:
        log = folder / "commission" / "aggregator.log"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (log.exists() and b"listening on" in log.read_bytes()):
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
        children = _children_of_run(folder)
        assert len(children) >= 3, children        # linewatch itself, its Mosquitto and aggregator
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=40)
        assert proc.returncode == 128 + sig
        time.sleep(0.2)
        left = [pid for pid in children if _alive(pid)]
        assert left == [], [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left]
        if command == "demo":   # its header: the sides by the config's names, the fix words once
            assert "the line   side A: north-west of the line, side B: south-east" in out, out
            assert out.count("How each incident was placed:") == 1 and out.count("on a curve heard by 2 nodes") == 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in _children_of_run(folder):
            os.kill(pid, signal.SIGKILL)


def _parsers(parser, path=("linewatch",)):
    import argparse
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, path + (name,))


def test_every_option_and_argument_has_help_text():
    import argparse
    missing = [(" ".join(path), action.option_strings or action.dest)
               for path, parser in _parsers(cli.build_parser()) for action in parser._actions
               if not isinstance(action, argparse._SubParsersAction)
               and not action.help]          # argparse.SUPPRESS: hidden on purpose, not forgotten
    assert missing == []


def test_the_aggregator_creates_the_master_key_only_for_a_new_commission(tmp_path, mosquitto):
    (tmp_path / "my.toml").write_text(f'[broker]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\n')
    service = subprocess.Popen([LINEWATCH, "aggregator", "--config", "my.toml"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        err = ""
        deadline = time.monotonic() + 30
        while "listening on" not in err and time.monotonic() < deadline:
            err += service.stderr.readline()
        assert "created" in err and "listening on" in err, err
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(20) == 0
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    # a commission with nodes whose keys came from a key that is now missing: an error, no new key
    added = subprocess.run([LINEWATCH, "nodes", "--config", "my.toml", "add", "0x0102", "--segment", "3",
                            "--lat", "48.0", "--lon", "37.0"], cwd=tmp_path, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    (tmp_path / "master.key").unlink()
    result = subprocess.run([LINEWATCH, "aggregator", "--config", "my.toml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "master key" in result.stderr and "no such file" in result.stderr
    assert not (tmp_path / "master.key").exists()


def test_a_stop_while_the_broker_is_away_is_clean(tmp_path, mosquitto):
    """SIGTERM between reconnect tries: exit 0 and no traceback in the journal (gmqtt's cancelled
    reconnect task logged one)."""
    (tmp_path / "my.toml").write_text(f'[broker]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\n'
                                      'retry_delay_s = 10.0\n[desk]\nlisten = ""\n')
    service = subprocess.Popen([LINEWATCH, "aggregator", "--config", "my.toml"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        err = ""
        deadline = time.monotonic() + 30
        while "listening on" not in err and time.monotonic() < deadline:
            err += service.stderr.readline()
        assert "listening on" in err, err
        mosquitto.stop()
        while "lost the broker" not in err and time.monotonic() < deadline + 30:
            err += service.stderr.readline()
        assert "lost the broker" in err, err
    finally:
        service.send_signal(signal.SIGTERM)
        err += service.stderr.read()
        assert service.wait(20) == 0, err
    assert "Traceback" not in err and "stopped cleanly" in err, err


def test_emulate_by_default_is_what_the_readme_says_a_newcomer_waits_for():
    """`linewatch emulate --seed 7` took ~40 min when it ran the whole line for a day."""
    args = cli.build_parser().parse_args(["emulate", "--seed", "7"])
    assert (args.hours, args.line_km) == (0.5, 10.0)
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert "`linewatch emulate --seed 7` (half an hour generated on 10 km of the line, 10 nodes" in readme


def test_emulate_rows_puts_a_second_row_of_nodes_on_a_generated_line():
    from linewatch.commands.emulate import load_scenario
    one = load_scenario(cli.build_parser().parse_args(["emulate", "--seed", "3", "--line-km", "4"]))
    two = load_scenario(cli.build_parser().parse_args(["emulate", "--seed", "3", "--line-km", "4", "--rows", "2"]))
    assert len(one.layout.row_offsets_m) == 1 and len(two.layout.row_offsets_m) == 2
    assert len(two.build_world(None).nodes) == 2 * len(one.build_world(None).nodes)
