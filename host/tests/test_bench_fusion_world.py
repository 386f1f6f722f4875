"""The fusion benchmarks draw their reports from the emulator's world and tell the commission
only what a field commission has (tools/bench/fusion_goals.py, fusion_accuracy.py)."""
import numpy as np
from linewatch.emulator.generator import generate_scenario
from linewatch.emulator.met import read_met
from linewatch.emulator.sources import Impulse
from lwtools.bench import fusion_goals

QUIET = dict(fusion_goals.QUIET, artillery=0.0, small_arms=0.0, clock_fault=0.0)


def scenario(profile: str):
    return generate_scenario(3, hours=0.1, line_km=12, rates_per_hour=QUIET, profile=profile)


def test_field_commission_gets_the_met_station_reading_not_the_world():
    world = scenario("field").build_world()
    config = fusion_goals.commission_config(world)
    met = read_met(world)
    assert met.source == "station"
    assert (config.temperature_c, config.wind_speed_mps, config.wind_from_deg) == \
        (met.temperature_c, met.wind_speed_mps, met.wind_from_deg)


def test_ideal_commission_gets_the_true_wind_and_the_air_from_the_thermometers():
    world = scenario("ideal").build_world()
    config = fusion_goals.commission_config(world)
    env = world.environment
    assert config.wind_speed_mps == env.wind_speed_mps and config.wind_from_deg == env.wind_from_deg
    assert abs(config.temperature_c - env.temperature_c) < 1e-9


def test_reports_come_from_the_world_surveyed_positions_and_board_clocks():
    sc = scenario("field")
    world = sc.build_world()
    node = world.nodes[len(world.nodes) // 2]
    blast = Impulse("b1", "explosion", "explosion", 60.0, node.lat + 0.003, node.lon, 150.0, 80.0)
    sc = type(sc)(**{**sc.__dict__, "sources": (blast,), "_line": []})
    reports = fusion_goals.reports_of(sc, world, np.random.default_rng(1), 0.0)
    assert len(reports) >= 3
    nodes = {n.id: n for n in world.nodes}
    for delivered, r in reports:
        n = nodes[r.node_id]
        assert (r.lat, r.lon) == (n.reported_lat, n.reported_lon)      # surveyed, not true
        assert r.clock_source in ("gps_pps", "ntp", "none")
        assert delivered > r.onset_utc_us - 60e6
    # the board's dating and the air, not distance / c: onsets are not exact
    assert len({r.clock_error_us for _, r in reports}) > 1 or reports[0][1].clock_error_us > 1000
