"""lwtools.bench.source_diagnosis: the mirror image across a row and the cause it names."""
from types import SimpleNamespace

import pytest

from linewatch.emulator.world import offset_latlon
from lwtools.bench import source_diagnosis as sd

BASE = (48.0, 37.8)


def _world(row_north_m=0.0):
    """Nodes every 1 km along a west-east row `row_north_m` north of BASE."""
    nodes = {n: SimpleNamespace(**dict(zip(("lat", "lon"), offset_latlon(*BASE, 1000.0 * n, row_north_m))))
             for n in range(1, 6)}
    return SimpleNamespace(node=nodes.__getitem__)


def _at(east_m, north_m):
    lat, lon = offset_latlon(*BASE, east_m, north_m)
    return {"lat": lat, "lon": lon}


def test_a_fix_at_the_sources_reflection_across_the_row_is_its_mirror_image():
    world = _world(-300.0)
    src = _at(2500.0, 1500.0)                       # 1.8 km north of the row
    mirror = {**_at(2500.0, -2100.0), "nodes": [1, 2, 3, 4, 5]}
    assert sd.mirror_error(mirror, src, world) == pytest.approx(0.0, abs=1.0)
    right = {**_at(2510.0, 1500.0), "nodes": [1, 2, 3, 4, 5]}
    assert sd.mirror_error(right, src, world) == pytest.approx(3600.0, abs=15.0)
    assert sd.mirror_error(None, src, world) is None


def test_the_cause_follows_the_trace():
    cause = sd._cause
    assert cause("located", 20.0, 9, 20.0, 5.0, 3.0, 3000.0, 0, 1, {}) == "ok"
    assert cause("missed", None, 2, None, None, None, None, 0, 0, None).startswith("detectors")
    assert cause("misplaced", 3000.0, 9, 3000.0, 3000.0, 3000.0, 20.0, 0, 1, {}) == "mirror image"
    assert cause("misplaced", 900.0, 9, 30.0, 20.0, 10.0, 5000.0, 2, 1, {}).startswith("association")
    assert cause("misplaced", 900.0, 9, 900.0, 40.0, 10.0, 5000.0, 0, 1, {}).startswith("timing")
    assert cause("misplaced", 900.0, 9, 900.0, 800.0, 40.0, 5000.0, 0, 1, {}).startswith("air")
    assert cause("misplaced", 900.0, 9, 900.0, 800.0, 700.0, 5000.0, 0, 1, {}).startswith("geometry")
    assert cause("misplaced", 240.0, 9, 200.0, 20.0, 10.0, 5000.0, 0, 1, {}).startswith("gates")


def test_a_mirror_fix_is_as_near_as_its_nearer_place_and_named_as_such():
    src = _at(2500.0, 1500.0)
    inc = {**_at(2500.0, -2100.0), "fix": "mirror", "mirror": _at(2520.0, 1500.0), "nodes": [1, 2, 3]}
    assert sd.fix_error(inc, src) == pytest.approx(20.0, abs=1.0)
    assert sd.fix_error({**inc, "fix": "tdoa"}, src) == pytest.approx(3600.0, abs=15.0)
    assert sd._cause("heard", None, 9, 20.0, 20.0, 20.0, 3600.0, 0, 1, inc).startswith("mirror image (said")
