"""Faults a scenario sets per node: a node that goes silent while connected (node_silent), and
the other per-node faults' keys, errors and truth entries."""

import numpy as np
import pytest

from linewatch.emulator import feedplan
from linewatch.emulator import scenario as sc
from linewatch.emulator.sources import NodeFault
from linewatch.emulator.truth import build_truth

BASE = """
[scenario]
name = "faults"
seed = 4
duration_s = 120
[line]
vertices = [[48.000, 37.800], [48.030, 37.850]]
segment_length_m = 5000
[nodes]
row_offsets_m = [-300]
spacing_m = 1000
end_m = 4000
[environment]
noise_floor_db = 40
"""


def load(events: str):
    return sc.loads(BASE + events)


def test_every_per_node_fault_has_its_keys_and_its_truth_entry():
    s = load("""
[[event]]
type = "node_silent"
time_s = 10
node = 0x0102
duration_s = 30
[[event]]
type = "node_silent"
time_s = 50
node = 0x0103
[[event]]
type = "node_failure"
time_s = 20
node = 0x0104
[[event]]
type = "tamper"
time_s = 5
node = 0x0101
[[event]]
type = "clock_fault"
time_s = 40
node = 0x0101
fault = "false_lock"
""")
    silent = [f for f in s.faults if isinstance(f, NodeFault) and f.kind == "silent"]
    assert [(f.node_id, f.time_s, f.duration_s) for f in silent] == [(0x0102, 10.0, 30.0), (0x0103, 50.0, None)]
    truth = build_truth(s, s.build_world())
    kinds = {(f["kind"], f["node"]) for f in truth["faults"]}
    assert kinds >= {("node_silent", 0x0102), ("node_silent", 0x0103), ("node_failure", 0x0104),
                     ("clock_false_lock", 0x0101)}
    first = next(f for f in truth["faults"] if f["kind"] == "node_silent" and f["node"] == 0x0102)
    assert first["end_utc_us"] - first["time_utc_us"] == 30_000_000
    assert next(f for f in truth["faults"] if f["node"] == 0x0103 and f["kind"] == "node_silent")["end_utc_us"] is None


@pytest.mark.parametrize("event,problem", [
    ('type = "node_silent"\ntime_s = 1\nnode = 0x0102\nlength_s = 3', "length_s: unknown key"),
    ('type = "node_silent"\ntime_s = 1\nnode = 0x0999', "no node 0x0999"),
    ('type = "node_silent"\ntime_s = 1\nnode = 0x0102\nduration_s = -2', "duration_s"),
    ('type = "node_silent"\ntime_s = 1', "node"),
])
def test_a_bad_silent_fault_is_refused_by_its_key(event, problem):
    with pytest.raises(sc.ScenarioError) as err:
        load("[[event]]\n" + event + "\n")
    assert problem in str(err.value)


def test_a_silent_node_hears_nothing_while_silent():
    s = load("""
[[event]]
id = "near"
type = "small_arms"
time_s = 20
at = { along_m = 1000, offset_m = -250 }
level_db = 120
[[event]]
type = "node_silent"
time_s = 10
node = 0x0102
duration_s = 30
""")
    truth = build_truth(s, s.build_world())
    near = next(x for x in truth["sources"] if x["id"] == "near")
    assert 0x0102 not in near["heard_by"] and near["heard_by"]


def test_silence_is_digital_zeros_over_the_fault_only():
    faults = [NodeFault(0x0102, 2.0, "silent", 1.0)]
    samples = np.full(4 * 16000, 7, dtype=np.int16)
    out = feedplan.silenced(samples, 16000, faults, 0x0102)
    assert (out[:16000] == 7).all() and (out[16000:32000] == 0).all() and (out[32000:] == 7).all()
    assert feedplan.silenced(samples, 16000, faults, 0x0103) is samples
