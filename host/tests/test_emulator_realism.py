"""Realism profiles: what reaches the commission, the field's air, clocks and the observe API."""
import math

import numpy as np
import pytest

from linewatch.emulator import profiles as pr
from linewatch.emulator import scenario as sc
from linewatch.emulator.air import iso9613_absorption_db_per_km
from linewatch.emulator.commission import met_lines
from linewatch.emulator.met import read_met
from linewatch.emulator.observe import bench_world, observe
from linewatch.emulator.sources import Impulse
from linewatch.geo import LocalFrame, haversine_m

SMALL = """
[scenario]
name = "small"
seed = 5
duration_s = 60
start_utc = "2026-07-01T09:00:00Z"
%s
[line]
vertices = [[48.0, 37.8], [48.2, 38.0]]
[nodes]
row_offsets_m = [-300, -900]
spacing_m = 1000
clock_sources = { gps_pps = 0.5, ntp = 0.4, none = 0.1 }
[environment]
temperature_c = 20
wind = { speed_mps = 6, from_deg = 250 }
%s
"""


def small(head: str = "", tail: str = "") -> sc.Scenario:
    return sc.loads(SMALL % (head, tail), "small.toml")


def test_field_is_the_default_and_a_scenario_or_the_cli_picks_another():
    assert small().profile == pr.FIELD
    assert small('profile = "ideal"').profile == pr.IDEAL
    assert small('profile = "ideal"').with_profile("field").profile == pr.FIELD
    assert sc.generate(7, hours=0.1, line_km=20).profile == pr.FIELD
    assert sc.generate(7, hours=0.1, line_km=20, profile="ideal").profile == pr.IDEAL


def test_realism_overrides_single_values_and_refuses_typos():
    s = small(tail="[realism.met]\nmode = \"none\"\n[realism.air]\njitter_ms_per_sqrt_km = 2\n")
    assert s.profile.met.mode == "none" and s.profile.air.jitter_ms_per_sqrt_km == 2.0
    assert s.profile.board == pr.FIELD.board
    assert pr.describe(s.profile) == "field (met.mode='none', air.jitter_ms_per_sqrt_km=2.0)"
    with pytest.raises(sc.ScenarioError, match=r"realism\.met\.mood: unknown key"):
        small(tail="[realism.met]\nmood = 1\n")
    with pytest.raises(sc.ScenarioError, match=r"realism\.met\.mode: 'guess' is not one of"):
        small(tail="[realism.met]\nmode = \"guess\"\n")
    with pytest.raises(sc.ScenarioError, match=r"realism\.air\.gust_share: expected a number"):
        small(tail="[realism.air]\ngust_share = \"strong\"\n")
    with pytest.raises(sc.ScenarioError, match=r"scenario\.profile: 'lab' is not one of"):
        small('profile = "lab"')


def test_the_commission_gets_a_met_reading_not_the_worlds_truth():
    ideal = small('profile = "ideal"').build_world()
    exact = read_met(ideal)
    assert (exact.wind_speed_mps, exact.wind_from_deg, exact.temperature_c) == (6.0, 250.0, None)
    readings = []
    for seed in range(30):
        world = sc.parse({**_raw(), "scenario": {**_raw()["scenario"], "seed": seed}}).build_world()
        met = read_met(world)
        lat, lon = met.where
        readings.append((met.temperature_c - float(world.air.temperature_at(lat, lon, 0.0)),
                         met.wind_speed_mps, met.wind_from_deg))
    errors, speeds, directions = (np.array(x) for x in zip(*readings))
    assert 0.1 < np.std(errors) < 2.0 and abs(np.mean(errors) - 0.5) < 0.7      # bias 0.5, sd 1
    assert all(d % 22.5 == 0 for d in directions)                              # a 16-point vane
    assert 2.0 < np.median(speeds) < 10.0 and len(set(speeds)) > 5
    assert "temperature_c" in met_lines(met) and "wind_speed_mps" in met_lines(met)
    none = read_met(small(tail="[realism.met]\nmode = \"none\"\n").build_world())
    assert "wind" not in met_lines(none).split("#", 1)[0] and "temperature_c =" not in met_lines(none)


def _raw() -> dict:
    import tomllib
    return tomllib.loads(SMALL % ("", ""))


def test_board_thermometers_read_warmer_than_the_air_in_the_day():
    world = small().build_world()
    air = world.air
    noon_s = 3 * 3600.0                     # 12:00 UTC, ~14:30 local solar time
    diffs = []
    for n in world.nodes:
        reading = n.board.thermometer.reading_c(float(air.temperature_at(n.lat, n.lon, noon_s)),
                                                float(air.sun(noon_s, n.lon)), 1)
        diffs.append(reading - float(air.temperature_at(n.lat, n.lon, noon_s)))
    assert 3.0 < np.median(diffs) < 15.0 and np.std(diffs) > 1.0
    ideal = small('profile = "ideal"').build_world()
    n = ideal.nodes[0]
    assert n.board.thermometer.reading_c(12.5, 1.0, 3) == 12.5


def test_surveyed_positions_have_the_profiles_error_and_a_few_blunders():
    s = sc.generate(3, hours=0.1, line_km=400, spacing_m=1000)
    errors = np.array([haversine_m(n.lat, n.lon, n.reported_lat, n.reported_lon)
                       for n in s.build_world().nodes])
    sigma = pr.FIELD.board.survey_error_m
    assert 0.8 * sigma < np.median(errors[errors < 15]) / math.sqrt(2 * math.log(2)) < 1.25 * sigma
    blunders = np.mean(errors > 15)
    assert 0.003 < blunders < 0.05
    # a scenario that states its survey error keeps it
    explicit = sc.load("demo").build_world()
    assert max(haversine_m(n.lat, n.lon, n.reported_lat, n.reported_lon)
               for n in explicit.nodes) < 5 * 3 + pr.FIELD.board.survey_blunder_m


def test_field_clocks_are_honest_about_their_error():
    world = sc.generate(5, hours=0.1, line_km=200).build_world()
    start = world.start_utc_us
    worst = {}
    for n in world.nodes:
        for hours in (0.2, 0.9, 1.5, 7.99):
            t = start + hours * 3600e6
            source, error = n.clock.reported(t)
            synced = n.clock.synced_true_us(t)
            allowance = error + (0 if synced is None else (t - synced) * 50e-6)
            ratio = abs(n.clock.offset_at(t)) / allowance
            worst[source] = max(worst.get(source, 0.0), ratio)
    assert worst["gps_pps"] <= 1.0 and worst["ntp"] <= 1.0
    gps = [n for n in world.nodes if n.clock.source == "gps_pps"]
    esp32 = [n.clock.offset_at(start + 7e6) for n in gps if n.board.kind == "esp32"]
    rp2 = [n.clock.offset_at(start + 7e6) for n in gps if n.board.kind == "rp2"]
    assert esp32 and rp2 and all(-2000 <= x <= 0 for x in esp32) and all(-20 <= x <= 0 for x in rp2)


def test_iso_9613_1_absorption_at_its_reference_points():
    # ISO 9613-1 Table 1 (20 °C, 70 %): 1 kHz 4.98, 4 kHz 23.1 dB/km; at 10 °C the
    # octave table of ISO 9613-2 the ideal air uses: 1 kHz 3.66 (3.7), 8 kHz 118 (117)
    assert iso9613_absorption_db_per_km(1000.0, 20.0, 70.0) == pytest.approx(4.98, abs=0.05)
    assert iso9613_absorption_db_per_km(4000.0, 20.0, 70.0) == pytest.approx(23.1, abs=0.2)
    assert iso9613_absorption_db_per_km(1000.0, 10.0, 70.0) == pytest.approx(3.7, abs=0.1)
    assert iso9613_absorption_db_per_km(8000.0, 10.0, 70.0) == pytest.approx(117.0, rel=0.02)
    # a drone's tone fades far slower than a shot's crack
    assert iso9613_absorption_db_per_km(180.0) < 1.0 < 10.0 < iso9613_absorption_db_per_km(4000.0)


def test_field_air_varies_in_space_and_time_and_gusts():
    world = small().build_world()
    air = world.air
    lats = np.linspace(47.8, 48.4, 200)
    lons = np.linspace(37.6, 38.2, 200)
    spread = np.std(air.temperature_at(lats, lons, 0.0))
    assert 0.3 < spread < 3.0
    t = np.arange(0.0, 600.0, 1.0)
    east, north = air.wind_at(48.1, 37.9, t)
    speed = np.hypot(east, north)
    assert 3.0 < np.mean(speed) < 9.0 and 0.5 < np.std(speed) < 3.5
    ideal = small('profile = "ideal"').build_world().air
    assert np.all(ideal.temperature_at(lats, lons, 0.0) == 20.0)


FRAME = LocalFrame(48.0, 37.0)
POSITIONS = [FRAME.to_latlon(x, y) for x in range(0, 12001, 1000) for y in (-300.0, -1300.0)]
SOURCE = Impulse("s1", "explosion", "explosion", 10.0, *FRAME.to_latlon(6000.0, 800.0), 150.0, 80.0)


def test_observe_ideal_is_distance_over_c_on_gps_clocks():
    world = bench_world(POSITIONS, "ideal", seed=1, temperature_c=15.0)
    obs = observe(SOURCE, world, np.random.default_rng(0))
    c = 331.3 * math.sqrt(1 + 15 / 273.15)
    for o, node in zip(obs, world.nodes):
        expected = world.start_utc_us + 10e6 + haversine_m(SOURCE.lat, SOURCE.lon, node.lat, node.lon) / c * 1e6
        assert o.heard and o.true_arrival_utc_us == pytest.approx(expected, abs=1)
        assert abs(o.reported_utc_us - o.true_arrival_utc_us) < 10 and o.error_us == 2


def test_observe_field_is_off_the_straight_ray_but_within_what_the_nodes_state():
    world = bench_world(POSITIONS, "field", seed=1, temperature_c=15.0, wind=(5.0, 270.0),
                        clock_mix=(("gps_pps", 0.7), ("ntp", 0.3)))
    first = observe(SOURCE, world, np.random.default_rng(0))
    again = observe(SOURCE, world, np.random.default_rng(0))
    assert first == again
    c = 331.3 * math.sqrt(1 + 15 / 273.15)
    model_error = []
    for o, node in zip(first, world.nodes):
        straight = world.start_utc_us + 10e6 + o.distance_m / c * 1e6
        model_error.append(o.true_arrival_utc_us - straight)
        # the timing error is within a few of what the node states (pick error: 1 ms)
        assert abs(o.reported_utc_us - o.true_arrival_utc_us) < 3 * o.error_us + 5_000
    assert np.std(model_error) > 1_000          # the air is not fusion's straight-ray model


def test_clock_faults_go_wrong_from_their_time_and_the_node_does_not_know():
    events = """
[[event]]
type = "clock_fault"
time_s = 10
node = 0x0102
fault = "step"
offset_ms = -80
[[event]]
type = "clock_fault"
time_s = 0
node = 0x0103
fault = "false_lock"
[[event]]
type = "clock_fault"
time_s = 20
node = 0x0104
fault = "drift"
drift_ppm = 1000
"""
    s = small(tail=events)
    world = s.build_world()
    plain = small().build_world()
    start = world.start_utc_us
    step = world.node(0x0102).clock
    before, after = start + 9e6, start + 11e6
    assert step.offset_at(before) == plain.node(0x0102).clock.offset_at(before)
    assert step.offset_at(after) - plain.node(0x0102).clock.offset_at(after) == pytest.approx(-80_000)
    assert step.reported(after) == plain.node(0x0102).clock.reported(after)     # it does not know
    liar = world.node(0x0103).clock
    source, error = liar.reported(start + 30e6)
    assert source == "gps_pps" and error in (20, 2000) and liar.source_code == 2
    assert abs(liar.offset_at(start + 30e6)) > 900_000
    drift = world.node(0x0104).clock
    extra = drift.offset_at(start + 120e6) - plain.node(0x0104).clock.offset_at(start + 120e6)
    assert extra == pytest.approx(100_000, rel=1e-3)                       # 1000 ppm for 100 s
    from linewatch.emulator.truth import build_truth
    kinds = {f["kind"]: f for f in build_truth(s, world)["faults"]}
    assert kinds["clock_step"]["offset_us"] == -80_000 and kinds["clock_false_lock"]["node"] == 0x0103
    with pytest.raises(sc.ScenarioError, match=r"event\[0\]\.fault: 'late' is not one of"):
        small(tail='[[event]]\ntype = "clock_fault"\ntime_s = 1\nnode = 0x0102\nfault = "late"\n')


def test_generated_field_days_have_clock_faults_and_ideal_ones_none():
    field = sc.generate(4, hours=6, line_km=400)
    ideal = sc.generate(4, hours=6, line_km=400, profile="ideal")
    faults = [f for f in field.faults if type(f).__name__ == "ClockFault"]
    assert faults and not [f for f in ideal.faults if type(f).__name__ == "ClockFault"]
    assert {f.fault for f in faults} <= {"step", "drift", "false_lock", "offset"}
    assert field.build_world().nodes
