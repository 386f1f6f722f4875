"""Cars and tractors of the background (background.py "vehicle": passing 20-300 m from a node)
are real vehicles: the truth lists them, and the score counts a vehicle incident about one as
background traffic, neither a hit nor false (docs/scenarios.md "Score")."""
from dataclasses import replace

from linewatch.emulator import profiles as pr
from linewatch.emulator import scenario as sc
from linewatch.emulator.background import Background
from linewatch.emulator.score import format_text, score
from linewatch.emulator.truth import build_truth
from linewatch.emulator.world import offset_latlon

T0 = 1_800_000_000_000_000
S = 1_000_000
NODE = (48.0, 37.8)


def truth_with_a_passing_car():
    return {"scenario": "hand", "seed": 1, "start_utc_us": T0, "duration_s": 3600.0,
            "nodes": [{"id": 1, "lat": NODE[0], "lon": NODE[1], "clock_source": "gps_pps",
                       "reported_clock_error_us": 2}],
            "sources": [],
            "background": [{"kind": "vehicle", "class": "vehicle", "node": 1, "lat": NODE[0],
                            "lon": NODE[1], "range_m": 300.0, "level_db": 60.0,
                            "time_utc_us": T0 + 100 * S, "end_utc_us": T0 + 130 * S}]}


def vehicle_incident(ident, t_s, east_m, cls="vehicle"):
    lat, lon = offset_latlon(NODE[0], NODE[1], east_m, 0.0)
    return {"id": ident, "class": cls, "time_utc_us": T0 + int(t_s * S), "fix": "detection",
            "lat": lat, "lon": lon, "nodes": [1], "reports": [1, 2], "provisional": False,
            "status": "new", "track": [[T0 + int(t_s * S), lat, lon]]}


def test_a_vehicle_incident_on_a_background_car_is_neither_hit_nor_false():
    t = truth_with_a_passing_car()
    result = score(t, [vehicle_incident("I-1", 110, 0.0)])
    assert result["background"] == {"count": 1, "ids": ["I-1"]}
    assert result["false"]["count"] == 0
    assert "background traffic  1 incidents" in format_text(result)
    # not when it was elsewhere, at another time, or named another class
    for other in (vehicle_incident("I-2", 110, 3000.0), vehicle_incident("I-3", 400, 0.0),
                  vehicle_incident("I-4", 110, 0.0, cls="drone")):
        result = score(t, [other])
        assert result["background"]["count"] == 0 and result["false"]["count"] == 1, other["id"]


def test_the_truth_lists_the_background_cars_the_nodes_hear():
    scenario = sc.generate(1, hours=1, line_km=20)
    world = scenario.build_world()
    listed = build_truth(scenario, world)["background"]
    back = Background(world, scenario.seed)
    passes = [(tr.node_id, tr.start_s) for n in world.nodes
              for tr in back.transients(n.id, 0.0, 3600.0) if tr.kind == "vehicle" and tr.start_s < 3600.0]
    assert len(listed) == len(passes) > 5
    assert {(b["node"], b["time_utc_us"]) for b in listed} == \
        {(n, world.start_utc_us + int(round(s * 1e6))) for n, s in passes}
    quiet = replace(scenario, profile=pr.profile("ideal"))
    assert build_truth(quiet, quiet.build_world())["background"] == []
