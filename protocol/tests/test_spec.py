"""SPEC.md stays true: its size table is the benchmark's output and its example is a vector."""
import contextlib
import io
import json
from pathlib import Path

from lwproto import frame
from lwtools.bench import frame_sizes

PROTOCOL = Path(__file__).parents[1]
SPEC = (PROTOCOL / "SPEC.md").read_text()


def test_size_table_is_the_benchmark_output():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        frame_sizes.main(["--markdown"])
    table = [line for line in out.getvalue().splitlines() if line.startswith("|")]
    assert "\n".join(table) in SPEC


def test_worked_example_is_the_event_vector():
    event = json.loads((PROTOCOL / "vectors" / "v1.json").read_text())["valid"][0]
    assert f"`{event['hex']}`" in SPEC
    assert event["key"] in SPEC


def test_every_payload_field_is_documented_at_its_offset():
    import struct
    for ftype, fields in frame.PAYLOADS.items():
        offset = 20
        for name, code, *_ in fields:
            assert f"| {offset} | {name} |" in SPEC, (name, offset)
            offset += struct.calcsize(">" + code)
