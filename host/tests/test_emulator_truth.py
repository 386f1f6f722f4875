import json

import numpy as np
import pytest

from linewatch.emulator import propagation as p
from linewatch.emulator import scenario as sc
from linewatch.emulator.truth import build_truth, dumps, load_truth, write_truth


@pytest.fixture(scope="module")
def demo():
    s = sc.load("demo")
    world = s.build_world()
    return s, world, build_truth(s, world)


def test_same_seed_same_truth_bytes():
    def truth(seed):
        s = sc.generate(seed, hours=1, line_km=60)
        return dumps(build_truth(s, s.build_world()))
    assert truth(5) == truth(5)
    assert truth(5) != truth(6)


def test_truth_shape(demo):
    s, world, truth = demo
    assert truth["scenario"] == "demo" and truth["seed"] == 7
    assert truth["start_utc_us"] == s.start_utc_us and len(truth["line"]) == 3
    node = truth["nodes"][0]
    assert set(node) >= {"id", "segment", "lat", "lon", "clock_source"}
    for src in truth["sources"]:
        assert set(src) >= {"id", "class", "time_utc_us", "lat", "lon", "side",
                            "distance_from_line_m", "heard_by"}
        assert src["class"] in ("explosion", "small_arms", "drone", "vehicle", "tamper")
    mortar = next(x for x in truth["sources"] if x["id"] == "mortar-1")
    assert mortar["side"] == "L" and mortar["distance_from_line_m"] == pytest.approx(1500, abs=1)
    assert mortar["time_utc_us"] == s.start_utc_us + 3_000_000
    tamper = next(x for x in truth["sources"] if x["class"] == "tamper")
    assert tamper["heard_by"] == [0x0103] and tamper["node"] == 0x0103
    drone = next(x for x in truth["sources"] if x["class"] == "drone")
    assert drone["path"][0][0] == drone["time_utc_us"] and drone["end_utc_us"] > drone["time_utc_us"]


def test_heard_by_is_snr_above_threshold():
    s = sc.load("demo").with_profile("ideal")          # the air of propagation.py's formulas
    world = s.build_world()
    truth = build_truth(s, world)
    impulse = next(x for x in s.sources if x.id == "rifles-1")
    heard = set(next(x for x in truth["sources"] if x["id"] == "rifles-1")["heard_by"])
    dist = p.distances_m(impulse.lat, impulse.lon, world.node_lats, world.node_lons)
    snr = p.received_level_db(impulse.level_db, dist, impulse.dominant_hz) - world.noise_floors_db
    expected = {int(i) for i, v in zip(world.node_ids, snr) if v >= p.DETECTION_SNR_DB}
    assert heard == expected and 0 < len(heard) < len(world.nodes)


def test_a_rebooting_node_hears_nothing(demo):
    s, world, truth = demo
    by_id = {x["id"]: x for x in truth["sources"]}
    # 0x0202 reboots from 30 s to 38 s; the howitzer's impact reaches it then.
    assert 0x0202 not in by_id["howitzer-1-impact"]["heard_by"]
    assert 0x0202 in by_id["mortar-3"]["heard_by"]


def test_write_and_load(tmp_path, demo):
    path = tmp_path / "truth.json"
    write_truth(path, demo[2])
    assert load_truth(path) == json.loads(dumps(demo[2]))
    (tmp_path / "bad.json").write_text('{"sources": [{"id": 1}]}')
    with pytest.raises(ValueError, match=r"sources\[0\]: missing 'class'"):
        load_truth(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="cannot read"):
        load_truth(tmp_path / "none.json")


QUIET = """
[scenario]
name = "quiet"
seed = 3
duration_s = 120
[line]
vertices = [[48.000, 37.800], [48.000, 37.900]]
[nodes]
row_offsets_m = [-300, -900]
spacing_m = 1000
end_m = 6000
[environment]
noise_floor_db = 42
noise_floor_spread_db = 0
"""


def _truth_of(events: str):
    s = sc.loads(QUIET + events)
    return {x["id"]: x for x in build_truth(s, s.build_world())["sources"]}


def test_unheard_sources_say_why():
    by_id = _truth_of("""
[[event]]
id = "far"
type = "small_arms"
time_s = 5
at = { along_m = 3000, offset_m = 5000 }
level_db = 100
[[event]]
id = "faint"
type = "small_arms"
time_s = 10
at = { along_m = 3000, offset_m = 700 }
level_db = 108
[[event]]
id = "beside-a-dead-node"
type = "small_arms"
time_s = 30
at = { along_m = 2000, offset_m = -320 }
level_db = 95
[[event]]
type = "node_failure"
time_s = 20
node = 0x0103
""")
    assert by_id["far"]["heard_by"] == [] and by_id["far"]["not_heard"] == "out of range"
    assert by_id["far"]["best_snr_db"] is None
    faint = by_id["faint"]
    assert faint["heard_by"] == [] and faint["not_heard"] == "below the noise"
    assert 0 <= faint["best_snr_db"] < 10 and faint["reached_by"]
    dead = by_id["beside-a-dead-node"]
    assert dead["heard_by"] == [] and dead["not_heard"] == "nodes down" and dead["best_snr_db"] > 10


def test_artillery_halves_name_each_other_and_nodes_carry_their_claimed_clock_error(demo):
    s, world, truth = demo
    by_id = {x["id"]: x for x in truth["sources"]}
    assert by_id["howitzer-1-launch"]["partner"] == "howitzer-1-impact"
    assert by_id["howitzer-1-impact"]["partner"] == "howitzer-1-launch"
    assert "partner" not in by_id["mortar-1"]
    ideal = sc.load("demo").with_profile("ideal")
    claimed = {n["reported_clock_error_us"] for n in build_truth(ideal, ideal.build_world())["nodes"]}
    assert claimed <= {2} | set(range(2_000, 20_001))
    # field: the largest each node states in the run, never less than its clock is really off
    start, end = truth["start_utc_us"], truth["start_utc_us"] + int(truth["duration_s"] * 1e6)
    for n in truth["nodes"]:
        clock = world.node(n["id"]).clock
        assert 1_000 < n["reported_clock_error_us"] <= 65_535
        assert all(abs(clock.offset_at(t)) <= n["reported_clock_error_us"]
                   for t in range(start + 10_000_000, end, 5_000_000))


def test_crossings_are_in_the_truth_with_whether_nodes_could_hear_both_sides():
    by_id = _truth_of("""
[[event]]
id = "loud"
type = "drone"
time_s = 5
path = [{ along_m = 3000, offset_m = 600 }, { along_m = 3000, offset_m = -1500 }]
speed_mps = 20
altitude_m = 60
level_db = 95
[[event]]
id = "quiet"
type = "drone"
time_s = 5
path = [{ along_m = 1000, offset_m = 600 }, { along_m = 1200, offset_m = -1500 }]
speed_mps = 20
altitude_m = 100
level_db = 75
""")
    loud, quiet = by_id["loud"]["crossings"], by_id["quiet"]["crossings"]
    assert len(loud) == len(quiet) == 1
    c = loud[0]
    assert (c["from"], c["to"]) == ("L", "R") and c["in_hearing_range"]
    # 600 m at 20 m/s: the line is crossed 30 s after the start
    assert c["time_utc_us"] - by_id["loud"]["time_utc_us"] == pytest.approx(30e6, abs=0.1e6)
    # a 75 dB drone is not heard 350 m from the first row: the crossing is out of range
    assert quiet[0]["heard_before"] == 0 and not quiet[0]["in_hearing_range"]
