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


def test_heard_by_is_snr_above_threshold(demo):
    s, world, truth = demo
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
