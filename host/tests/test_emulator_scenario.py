import pytest

from linewatch.emulator import scenario as sc
from linewatch.emulator.sources import Impulse, NodeFault, Outage, Tamper, Track

MINIMAL = """
[scenario]
name = "t"
duration_s = 60
[line]
vertices = [[48.0, 37.8], [48.05, 37.9]]
[nodes]
spacing_m = 2000
"""


def test_bundled_scenarios_load():
    names = sorted(p.stem for p in sc.SCENARIO_DIR.glob("*.toml"))
    assert "demo" in names and len(names) >= 3
    for name in names:
        scenario = sc.load(name)
        assert scenario.sources and scenario.build_world().nodes


def test_demo_is_small_and_short():
    demo = sc.load("demo")
    world = demo.build_world()
    assert 10 <= len(world.nodes) <= 14 and 40 <= demo.duration_s <= 60
    assert len({n.row for n in world.nodes}) == 2
    kinds = {type(s) for s in demo.sources} | {type(f) for f in demo.faults}
    assert {Impulse, Track, Tamper, NodeFault} <= kinds
    assert {s.event_class for s in demo.sources} >= {"explosion", "small_arms", "drone", "tamper"}


def test_places_can_be_line_coordinates_or_latlon():
    text = MINIMAL + """
[[event]]
type = "explosion"
time_s = 1
at = { along_m = 1000, offset_m = 500 }
[[event]]
type = "artillery"
time_s = 2
launch = { lat = 48.1, lon = 37.8 }
impact = { along_m = 3000, offset_m = -200 }
"""
    s = sc.loads(text, "x.toml")
    boom, launch, impact = s.sources
    pos = s.line.locate(boom.lat, boom.lon)
    assert pos.side == "L" and pos.distance_m == pytest.approx(500, abs=1)
    assert (launch.kind, impact.kind) == ("launch", "impact")
    assert impact.time_s > launch.time_s + 10       # flight time at ~300 m/s over > 5 km


@pytest.mark.parametrize("extra, key, problem", [
    ('[[event]]\ntype = "nuke"\ntime_s = 1\n', "event[0].type", "'nuke' is not one of"),
    ('[[event]]\ntype = "explosion"\ntime_s = 1\nat = { along_m = 100, offset_m = "far" }\n',
     "event[0].at.offset_m", "expected a number, got 'far'"),
    ('[[event]]\ntype = "explosion"\ntime_s = 99\nat = { along_m = 100 }\n',
     "event[0].time_s", "after the scenario's end"),
    ('[[event]]\ntype = "explosion"\ntime_s = 1\n', "event[0].at", "missing"),
    ('[[event]]\ntype = "tamper"\ntime_s = 1\nnode = 0x0999\n', "event[0].node", "no node 0x0999"),
    ('[[event]]\ntype = "drone"\ntime_s = 1\npath = [{ along_m = 1 }]\n', "event[0].path",
     "at least two"),
    ('[[event]]\ntype = "explosion"\ntime_s = 1\nat = { along_m = 1 }\nlevle_db = 3\n',
     "event[0].levle_db", "unknown key"),
    ('[environment]\ntemperature_c = 90\n', "environment.temperature_c", "must be <= 60"),
    ('[radio]\nloss_probability = 1.5\n', "radio.loss_probability", "must be <= 1"),
])
def test_validation_names_file_key_and_problem(extra, key, problem):
    with pytest.raises(sc.ScenarioError) as err:
        sc.loads(MINIMAL + extra, "bad.toml")
    assert err.value.origin == "bad.toml" and err.value.key == key
    assert problem in err.value.problem
    assert str(err.value).startswith("bad.toml: %s: " % key)


@pytest.mark.parametrize("text, key", [
    (MINIMAL.replace("duration_s = 60\n", ""), "scenario.duration_s"),
    (MINIMAL.replace("[[48.0, 37.8], [48.05, 37.9]]", "[[48.0, 37.8]]"), "line.vertices"),
    (MINIMAL.replace("[[48.0, 37.8], [48.05, 37.9]]", "[[48.0, 37.8], [95, 1]]"), "line.vertices[1]"),
    (MINIMAL + '[nodes.clock_sources]\nsundial = 1\n', "nodes.clock_sources.sundial"),
    ('this is = not toml', ""),
])
def test_structural_errors(text, key):
    with pytest.raises(sc.ScenarioError) as err:
        sc.loads(text, "f.toml")
    assert err.value.key == key


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(sc.ScenarioError, match="cannot read"):
        sc.load(tmp_path / "nope.toml")


def test_generator_is_deterministic_per_seed():
    a = sc.generate(11, hours=2, line_km=150)
    b = sc.generate(11, hours=2, line_km=150)
    c = sc.generate(12, hours=2, line_km=150)
    assert a == b and a.build_world().nodes == b.build_world().nodes
    assert a.sources != c.sources
    assert a.duration_s == 7200 and a.line.length_m == pytest.approx(150_000, rel=0.01)
    classes = {s.event_class for s in a.sources}
    assert {"explosion", "small_arms"} <= classes
    ids = {n.id for n in a.build_world().nodes}
    for f in a.faults:
        assert isinstance(f, Outage) or f.node_id in ids
    assert all(0 <= s.time_s < a.duration_s for s in a.sources)


def test_generator_refuses_bad_arguments():
    with pytest.raises(sc.ScenarioError, match="hours"):
        sc.generate(1, hours=0)
    with pytest.raises(sc.ScenarioError, match="rates_per_hour.meteor"):
        sc.generate(1, hours=1, line_km=20, rates_per_hour={"meteor": 1})
