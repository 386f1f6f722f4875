"""`linewatch demo` and its desk, as the README promises them: the demo prints the desk's
address at the start, the desk answers there while the demo runs, the end says how to keep it
open, and `--stay` keeps it open afterwards on the demo's database until Ctrl-C; its first line
counts the segments that have nodes. A short
scenario of its own (3 nodes, one blast, 4 s) through the real command, as a real process."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

LINEWATCH = str(Path(sys.executable).parent / "linewatch")
SCENARIO = """
[scenario]
name = "desk-demo"
seed = 3
duration_s = 4
start_utc = "2026-11-25T06:00:00Z"
heartbeat_s = 10

[line]
vertices = [[48.000, 37.800], [48.020, 37.830]]
segment_length_m = 2500          # the line (3.2 km) has 2 segments, its nodes are all in the first

[nodes]
row_offsets_m = [-300]
spacing_m = 1000
start_m = 0
end_m = 2500

[[event]]
id = "blast"
type = "explosion"
time_s = 1
at = { along_m = 1200, offset_m = 600 }
"""


def _nodes(url: str) -> list[int]:
    with urllib.request.urlopen(url + "api/nodes", timeout=15) as r:
        assert r.status == 200
        return [n["id"] for n in json.loads(r.read())["nodes"]]


def _line(proc, pattern: str) -> re.Match:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError("no %r in the demo's output:\n%s" % (pattern, "".join(seen)))


@pytest.mark.timeout(240)
def test_the_demo_prints_its_desk_keeps_it_open_and_stay_keeps_it_after(tmp_path):
    scenario = tmp_path / "desk-demo.toml"
    scenario.write_text(SCENARIO)
    proc = subprocess.Popen([LINEWATCH, "demo", "--scenario", str(scenario), "--stay", "--keep", str(tmp_path / "run")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        # what it runs, not every segment the line is cut into (the README's demo: 2 of 3)
        _line(proc, r"^LineWatch demo: scenario 'desk-demo', 3 nodes in 1 segment, 4 s in real time$")
        url = _line(proc, r"^The desk \(map, incidents, nodes; live\): (http://127\.0\.0\.1:\d+/)$").group(1)
        _line(proc, r"^  open it now; it stays open while the demo runs$")
        assert len(_nodes(url)) == 3                          # while the demo runs
        _line(proc, r"^Score against the scenario's ground truth")
        stays = _line(proc, r"^The desk stays open at (\S+) with the demo's database").group(1)
        assert stays == url and len(_nodes(url)) == 3         # after it, on the same address
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 128 + signal.SIGINT
    finally:
        _stop(proc, tmp_path / "run")


def _stop(proc, folder: Path) -> None:
    """The demo ended and every process it started with it, also when the test failed midway:
    Ctrl-C first (the demo stops its broker and aggregator, which run in sessions of their
    own), then SIGKILL for the demo and for anything still running from its folder."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(folder) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue

