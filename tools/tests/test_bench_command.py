"""`linewatch bench` collects what the benches print into JSON and a markdown table with the
machine's description (the quickest bench only: the others are long runs, never tests)."""
from __future__ import annotations

import json

from linewatch.cli import main


def test_bench_writes_json_and_markdown_with_the_machine(tmp_path, capsys):
    assert main(["bench", "--only", "frame_sizes", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["machine"]["cores"] >= 1 and data["machine"]["python"]
    [result] = data["results"]
    assert result["exit"] == 0 and result["command"].startswith("python -m lwtools.bench.frame_sizes")
    assert result["figures"][0]["value"] == "42"
    md = (tmp_path / "bench.md").read_text()
    assert "| event frame (bytes, tag included) | 42 | <= 48 |" in md
    assert "cores" in md


def test_unknown_bench_is_refused(tmp_path, capsys):
    assert main(["bench", "--only", "no_such", "--out", str(tmp_path)]) == 2
    assert "no_such" in capsys.readouterr().err
