"""On the unix port, with the real firmware build: a node whose every session runs out of memory
(here a 40 KB broker password its CONNECT cannot be built for) says so and exits 4, instead of
running on with nothing but log lines. A small heap does the same (116K, firmware/README.md
"Memory": `python -m lwtools.bench.node_memory`), but that window moves with the firmware's size;
the password does not."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest


def test_a_unix_node_that_cannot_publish_exits_4(board_build, tmp_path, mosquitto):
    from linewatch.testing import micropython as mp
    if board_build is None:
        pytest.skip("the virtual board's test: a real board shows it with its LED")
    fs = tmp_path / "fs"
    shutil.copytree(board_build, fs)
    config = {"node": 0x0102, "segment": 3, "key": "00" * 32, "board": "unix", "storage": "data",
              "position": {"lat": 48.0, "lon": 37.7},
              "broker": {"host": mosquitto.host, "port": mosquitto.port, "user": "node-0102",
                         "password": "x" * 40000}}
    (fs / "config.json").write_text(json.dumps(config))
    result = subprocess.run(mp.command(fs / "main.py", "config.json", heap="192K"), cwd=fs,
                            env=mp.environment(fs / "lib"), capture_output=True, text=True, timeout=60)
    out = result.stdout + result.stderr
    assert "self-test ok" in out, out
    assert result.returncode == 4, out
    assert "DEGRADED: 3 sessions in a row ran out of memory" in out and "cannot publish: exit 4" in out
