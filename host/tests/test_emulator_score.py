"""The strict scorer, rule by rule, on hand-made truths and incidents (docs/scenarios.md "Score").

The line runs west to east through BASE, so north is its left (L) and south its right (R).
Nodes 1-4 sit 300 m south of the line; node 5 has no time source (it claims 60 s).
"""
import json

import pytest

from linewatch.cli import main
from linewatch.emulator import gates
from linewatch.emulator.score import format_text, load_incidents, score
from linewatch.emulator.world import offset_latlon

BASE = (48.0, 37.8)
T0 = 1_800_000_000_000_000
S = 1_000_000


def at(east_m, north_m=0.0):
    return offset_latlon(BASE[0], BASE[1], east_m, north_m)


def node(ident, east_m, clock="gps_pps", claimed_us=2):
    lat, lon = at(east_m, -300)
    return {"id": ident, "lat": lat, "lon": lon, "clock_source": clock, "reported_clock_error_us": claimed_us}


NODES = [node(1, -1000), node(2, 0), node(3, 1000), node(4, 2000), node(5, 3000, "none", 60_000_000)]


def src(ident, cls, t_s, where, heard, side=None, dist=None, **extra):
    lat, lon = where
    if side is None:
        side = "L" if where[0] > BASE[0] else "R"
    out = {"id": ident, "class": cls, "time_utc_us": T0 + int(t_s * S), "lat": lat, "lon": lon,
           "side": side, "distance_from_line_m": 1000.0 if dist is None else dist,
           "heard_by": heard, "reached_by": [], "not_heard": None if heard else "out of range"}
    out.update(extra)
    return out


def inc(ident, cls, t_s, where=None, fix="tdoa", nodes=(1, 2, 3), side=None, ellipse=None, **extra):
    out = {"id": ident, "class": cls, "time_utc_us": T0 + int(t_s * S), "fix": fix, "side": side,
           "nodes": nodes if isinstance(nodes, (str, type(None))) else list(nodes), "formed_at_us": T0 + int((t_s + 3) * S), "reports": [1],
           "provisional": False, "status": "new", "ellipse_95": ellipse}
    if where:
        out["lat"], out["lon"] = where
    out.update(extra)
    return out


def truth(*sources, duration_s=3600.0):
    return {"scenario": "hand", "seed": 1, "start_utc_us": T0, "duration_s": duration_s,
            "nodes": NODES, "sources": list(sources)}


BLAST = src("B", "explosion", 100, at(0, 1000), [1, 2, 3, 4])


def test_a_fix_in_the_gates_locates_its_source():
    result = score(truth(BLAST), [inc("I", "explosion", 100.3, at(20, 1000), side="L")])
    assert result["recall"]["reported"] == result["recall"]["eligible"] == 1
    loc = result["localization_error_m"]
    assert loc["located"] == 1 and loc["median"] == pytest.approx(20, abs=0.5)
    assert loc["within_25m"] == 1.0 and loc["unlocated"] == 0.0
    assert result["false"]["count"] == 0 and result["side"]["right"] == 1


def test_a_fix_beyond_250_m_is_misplaced_false_and_its_source_unlocated():
    far = inc("I", "explosion", 100.0, at(400, 1000), ellipse={"major_m": 900, "minor_m": 900, "angle_deg": 0})
    result = score(truth(BLAST), [far])
    assert result["recall"]["reported"] == 0 and result["missed"] == ["B"] and result["unlocated"] == ["B"]
    assert result["false"]["by_class"] == {"explosion": {"phantom": 0, "misplaced": 1, "duplicate": 0}}
    # the error figure still shows how far off the fix was
    assert result["localization_error_m"]["median"] == pytest.approx(400, abs=1)
    assert result["localization_error_m"]["unlocated"] == 1.0


def test_a_fix_outside_its_own_ellipse_plus_margin_is_misplaced():
    tight = {"major_m": 10.0, "minor_m": 5.0, "angle_deg": 0.0}      # grown: 35 m east-west, 30 m north-south
    inside = inc("I", "explosion", 100, at(33, 1000), ellipse=tight)
    outside = inc("J", "explosion", 100, at(0, 1032), ellipse=tight)
    assert score(truth(BLAST), [inside])["localization_error_m"]["located"] == 1
    result = score(truth(BLAST), [outside])
    assert result["localization_error_m"]["located"] == 0
    assert result["false"]["by_class"]["explosion"]["misplaced"] == 1


def test_inside_ellipse_follows_its_angle():
    where = at(0, 0)
    e = {"major_m": 100.0, "minor_m": 10.0, "angle_deg": 90.0}      # long axis north-south
    i = {"lat": where[0], "lon": where[1], "ellipse_95": e}
    assert gates.inside_ellipse(i, *at(0, 120))
    assert not gates.inside_ellipse(i, *at(40, 0))
    assert gates.inside_ellipse({**i, "ellipse_95": None}, *at(5000, 0))


def test_the_time_gate_is_two_seconds_around_the_sources_span():
    burst = src("F", "small_arms", 200, at(0, 500), [1, 2, 3], end_utc_us=T0 + 203 * S)
    for t, hit in ((198.5, True), (203.0, True), (204.9, True), (205.5, False), (197.5, False)):
        result = score(truth(burst), [inc("I", "small_arms", t, at(0, 500))])
        assert (result["recall"]["reported"] == 1) is hit, t
    # out of the time gate it is no misplaced fix either: a phantom
    assert score(truth(burst), [inc("I", "small_arms", 210, at(0, 500))])["false"]["by_class"] == \
        {"small_arms": {"phantom": 1, "misplaced": 0, "duplicate": 0}}


def test_a_burst_is_one_incident_a_second_one_is_a_duplicate():
    burst = src("F", "small_arms", 200, at(0, 500), [1, 2, 3], end_utc_us=T0 + 203 * S)
    result = score(truth(burst), [inc("I", "small_arms", 200.1, at(5, 500)),
                                  inc("J", "small_arms", 202.0, at(30, 500))])
    assert result["recall"]["reported"] == 1 and result["localization_error_m"]["median"] < 6
    assert result["false"]["ids"] == ["J"]
    assert result["false"]["by_class"]["small_arms"]["duplicate"] == 1


def test_class_families_must_agree():
    result = score(truth(BLAST), [inc("I", "small_arms", 100, at(0, 1000)),
                                  inc("U", "unknown", 100, at(0, 1000)),
                                  inc("A", "artillery", 100, at(0, 1010))])
    assert result["recall"]["reported"] == 1
    assert result["false"]["by_class"] == {"small_arms": {"phantom": 1, "misplaced": 0, "duplicate": 0},
                                           "unknown": {"phantom": 1, "misplaced": 0, "duplicate": 0}}


def test_a_detection_is_heard_not_located_within_the_travel_time():
    # node 4 is ~1.3 km from the blast: its arrival is ~4 s after the blast
    detection = inc("D", "explosion", 103.9, at(2000, -300), fix="detection", nodes=[4])
    result = score(truth(BLAST), [detection])
    assert result["recall"]["reported"] == 1 and result["localization_error_m"]["located"] == 0
    assert result["localization_error_m"]["unlocated"] == 1.0 and result["false"]["count"] == 0
    # a node that did not hear the blast, or an arrival long after, is no detection of it
    assert score(truth(BLAST), [{**detection, "nodes": [5]}])["false"]["count"] == 1
    assert score(truth(BLAST), [{**detection, "time_utc_us": T0 + 120 * S}])["false"]["count"] == 1


def test_a_node_without_time_gets_the_error_it_claims():
    blast = src("B", "explosion", 100, at(3000, 200), [4, 5])
    late = T0 + 140 * S                         # 40 s off: within 60 s claimed by node 5 only
    assert score(truth(blast), [inc("D", "explosion", 0, fix="detection", nodes=[5],
                                    time_utc_us=late)])["false"]["count"] == 0
    assert score(truth(blast), [inc("D", "explosion", 0, fix="detection", nodes=[4],
                                    time_utc_us=late)])["false"]["count"] == 1


def test_a_mirror_incident_is_heard_and_its_places_are_counted():
    """A straight row's two places (fix "mirror"): matched as heard, not located, and the
    score says whether one of its places holds the source (its other place 1.6 km away)."""
    beyond = inc("I1", "explosion", 100, at(0, -1600), fix="mirror", side=None,
                 mirror={"lat": BLAST["lat"], "lon": BLAST["lon"], "ellipse_95": None, "side": "L",
                         "distance_from_line_m": 1000.0})
    elsewhere = inc("I2", "explosion", 100.5, at(3000, -1600), fix="mirror", nodes=(2, 3, 4),
                    mirror={"lat": at(3000, 1000)[0], "lon": at(3000, 1000)[1], "ellipse_95": None, "side": "L",
                            "distance_from_line_m": 1000.0})
    result = score(truth(BLAST), [beyond, elsewhere])
    assert result["recall"]["reported"] == 1 and result["localization_error_m"]["located"] == 0
    assert result["mirror"] == {"incidents": 2, "at_a_source": 1, "sources_placed": 1}
    assert "mirror places       1 of 1 blasts heard by >= 3 nodes have one" in format_text(result)
    assert "mirror places" not in format_text(score(truth(BLAST), [inc("I3", "explosion", 100, at(0, 1000))]))


def test_a_located_fix_beats_a_detection_for_the_match():
    fix = inc("F", "explosion", 100.2, at(10, 1000))
    detection = inc("D", "explosion", 102.5, at(0, -300), fix="detection", nodes=[2])
    result = score(truth(BLAST), [detection, fix])
    assert result["localization_error_m"]["located"] == 1
    assert result["false"]["ids"] == ["D"] and result["false"]["by_class"]["explosion"]["duplicate"] == 1


def test_matching_gives_as_many_sources_their_incident_as_the_gates_allow():
    # D1 is the nearer in time for both blasts; D2 (4.3 s before the first blast's arrival at
    # node 2, within its gate) is in the first blast's gates only. Cheapest pair first gave
    # D1 to the first blast and left the second without a match.
    first = src("B1", "explosion", 100, at(0, 1000), [1, 2, 3, 4])
    second = src("B2", "explosion", 102, at(0, 1000), [1, 2, 3, 4])
    d1 = inc("D1", "explosion", 104.0, fix="detection", nodes=[2])
    d2 = inc("D2", "explosion", 99.5, fix="detection", nodes=[2])
    result = score(truth(first, second), [d1, d2])
    assert result["recall"]["reported"] == 2 and result["missed"] == []
    assert result["false"]["count"] == 0


def test_a_heard_incident_goes_to_the_source_whose_arrival_at_its_nodes_it_is():
    # Two blasts, one north and one south of nodes 2 and 4, each heard by both; each pair of
    # arrivals (a hyperbola, dated by its node 2 arrival) says its own side. Ranked by the time
    # of the farthest node's arrival (node 4), the northern blast's pair went to the southern
    # blast and the other way round: both sides wrong.
    north = src("N", "explosion", 100.0, at(0, 3000), [1, 2, 3, 4], side="L", dist=3000.0)
    south = src("S", "explosion", 100.5, at(0, -3000), [1, 2, 3, 4], side="R", dist=3000.0)
    at_node2 = lambda s, d_m: s["time_utc_us"] / S - T0 / S + d_m / gates.TYPICAL_SOUND_MPS
    h_north = inc("HN", "explosion", at_node2(north, 3300), fix="hyperbola", nodes=[2, 4], side="L")
    h_south = inc("HS", "explosion", at_node2(south, 2700), fix="hyperbola", nodes=[2, 4], side="R")
    result = score(truth(north, south), [h_north, h_south])
    assert result["recall"]["reported"] == 2
    assert result["side"]["right"] == 2 and result["side"]["wrong"] == 0


def test_one_to_one_is_an_optimal_assignment():
    c = gates.Candidate
    # greedy takes (0, 0) at 0.1 and then only (1, 1) at 0.9 is left: 1.0 in all; (0, 1) + (1, 0)
    # is 0.4 + 0.4; and a third source with no free incident stays unmatched
    cands = [c(0, 0, "located", 0.1, 1.0), c(0, 1, "located", 0.4, 1.0), c(1, 0, "located", 0.4, 1.0),
             c(1, 1, "located", 0.9, 1.0), c(2, 1, "heard", 1.5, None), c(3, 7, "misplaced", 2.5, 900.0)]
    hits = gates.one_to_one(cands)
    assert {s: h.incident for s, h in hits.items()} == {0: 1, 1: 0}
    assert gates.one_to_one([]) == {}


def test_unheard_sources_stay_in_the_report_with_the_reason():
    unheard = src("Q", "explosion", 300, at(0, 30000), [], not_heard="below the noise", best_snr_db=4.2,
                  reached_by=[2])
    down = src("W", "small_arms", 400, at(0, 200), [], not_heard="nodes down")
    few = src("P", "small_arms", 500, at(1000, 100), [3])
    result = score(truth(BLAST, unheard, down, few),
                   [inc("D", "explosion", 390, at(0, -300), fix="detection", nodes=[2])])
    hearing = result["hearing"]
    assert (hearing["heard_by_3_or_more"], hearing["heard_by_1_or_2"], hearing["not_heard"]) == (1, 1, 2)
    assert hearing["not_heard_by_reason"] == {"below the noise": 1, "nodes down": 1}
    assert {"id": "Q", "class": "explosion", "reason": "below the noise", "best_snr_db": 4.2} in \
        hearing["not_heard_sources"]
    # a node it reached below the detection threshold may still have reported it: not false
    assert hearing["not_heard_reported"] == 1 and result["false"]["count"] == 0
    assert result["recall"]["eligible"] == 1 and result["missed"] == ["B"]
    assert "by none 2 (below the noise 1, nodes down 1)" in format_text(result)


def test_side_undecided_wrong_or_without_incident_is_not_right():
    near_line = src("N", "explosion", 50, at(-3000, 150), [1, 2, 3], dist=150.0)
    others = [src("B%d" % k, "explosion", 100 * k, at(0, 1000), [1, 2, 3], side="L") for k in range(1, 5)]
    incidents = [inc("I1", "explosion", 100, at(0, 1000), side="L"),
                 inc("I2", "explosion", 200, at(0, 1000), side="R"),
                 inc("I3", "explosion", 300, at(0, 1000), side=None),
                 inc("IN", "explosion", 50, at(-3000, 150), side="R")]
    side = score(truth(near_line, *others), incidents)["side"]
    assert side == {"eligible": 4, "right": 1, "wrong": 1, "undecided": 1, "no_incident": 1, "rate": 0.25}


def test_launch_and_impact_are_two_sources_and_their_pairing_is_counted():
    launch = src("A-launch", "explosion", 100, at(0, 5000), [1, 2, 3], kind="launch", partner="A-impact")
    impact = src("A-impact", "explosion", 120, at(500, -800), [1, 2, 3], kind="impact", partner="A-launch")
    incidents = [inc("L", "explosion", 100, at(0, 5010), impact_id="M"),
                 inc("M", "explosion", 120, at(500, -800), launch_id="L")]
    result = score(truth(launch, impact), incidents)
    assert result["recall"]["reported"] == 2 and result["artillery_pairs"] == {"both_located": 1, "linked": 1}
    unpaired = [{**i, "impact_id": None, "launch_id": None} for i in incidents]
    assert score(truth(launch, impact), unpaired)["artillery_pairs"]["linked"] == 0


def drone(crossings=(), heard=(2,)):
    # flies from 1 km north to 1 km south over 100 s
    a, b = at(0, 1000), at(0, -1000)
    return src("D1", "drone", 0, a, list(heard), end_utc_us=T0 + 100 * S,
               path=[[T0, *a], [T0 + 100 * S, *b]], crossings=list(crossings))


def crossing(t_s=50, frm="L", to="R", in_range=True):
    lat, lon = at(0, 0)
    return {"time_utc_us": T0 + int(t_s * S), "lat": lat, "lon": lon, "from": frm, "to": to,
            "heard_before": 1, "heard_after": 1, "in_hearing_range": in_range}


def track_incident(ident, times_s, north_m, **extra):
    points = [[T0 + int(t * S), *at(0, n)] for t, n in zip(times_s, north_m)]
    return inc(ident, "drone", times_s[0], points[-1][1:], fix="detection", nodes=[2], track=points, **extra)


def test_a_track_is_compared_with_where_it_was_at_the_incidents_times():
    near = track_incident("T", [40, 50, 60], [250, 50, -250])      # the drone: 200, 0, -200
    result = score(truth(drone()), [near])
    assert result["tracks"]["drone"] == {"sources": 1, "heard": 1, "tracked": 1, "rate": 1.0}
    far = track_incident("T", [40, 50, 60], [2200, 2000, 1800])
    result = score(truth(drone()), [far])
    assert result["tracks"]["drone"]["tracked"] == 0 and result["false"]["by_class"]["drone"]["phantom"] == 1
    # a second track incident for the same drone is a duplicate
    result = score(truth(drone()), [near, track_incident("U", [70, 80], [-400, -600])])
    assert result["false"]["by_class"]["drone"]["duplicate"] == 1


def test_crossings_count_only_in_hearing_range_and_with_the_right_direction():
    truth_ = truth(drone([crossing(50), crossing(90, "R", "L", in_range=False)]))
    right = track_incident("C", [45, 55], [150, -150], crossing={"from": "L", "to": "R"})
    row = score(truth_, [right])["crossings"]["drone"]
    assert row == {"crossings": 2, "in_hearing_range": 1, "reported": 1, "direction_right": 1, "rate": 1.0}
    wrong = {**right, "crossing": {"from": "R", "to": "L"}}
    row = score(truth_, [wrong])["crossings"]["drone"]
    assert (row["reported"], row["direction_right"], row["rate"]) == (1, 0, 0.0)
    # a crossing where none happened is a false drone incident
    ghost = track_incident("G", [10, 12], [900, 880], crossing={"from": "L", "to": "R"})
    ghost["time_utc_us"] = T0 + 10 * S
    result = score(truth_, [ghost])
    assert result["crossings"]["drone"]["reported"] == 0 and result["false"]["ids"] == ["G"]


def test_tamper_is_matched_by_node_and_time():
    tamper = {"id": "X", "class": "tamper", "time_utc_us": T0 + 600 * S, "end_utc_us": T0 + 605 * S,
              "node": 3, "heard_by": [3], "lat": NODES[2]["lat"], "lon": NODES[2]["lon"]}
    ok = inc("K", "tamper", 606, fix="detection", nodes=[3])
    result = score(truth(tamper), [ok, inc("L", "tamper", 606, fix="detection", nodes=[1])])
    assert result["tamper"] == {"sources": 1, "heard": 1, "reported": 1}
    assert result["false"]["ids"] == ["L"] and result["recall"]["eligible"] == 0


def test_withdrawn_incidents_are_not_scored_dismissed_ones_are():
    withdrawn = inc("W", "explosion", 100, at(0, 1000), reports=[], provisional=False)
    dismissed = inc("X", "explosion", 900, at(0, 1000), status="dismissed")
    result = score(truth(BLAST), [withdrawn, dismissed])
    assert (result["incidents"], result["withdrawn"], result["dismissed"]) == (1, 1, 1)
    assert result["false"]["ids"] == ["X"] and result["recall"]["reported"] == 0


def test_false_incidents_per_node_day():
    phantoms = [inc("P%d" % k, "explosion", 1000 + 10 * k, at(0, 9000)) for k in range(3)]
    result = score(truth(BLAST, duration_s=86_400 / 5), phantoms)       # 5 nodes for a fifth of a day
    assert result["false"]["count"] == 3 and result["false"]["per_node_day"] == pytest.approx(3.0)


def test_alert_latency_only_for_incidents_formed_during_the_run():
    ok = inc("I", "explosion", 100, at(0, 1000))
    result = score(truth(BLAST), [ok])
    assert result["alert_latency_s"]["median"] == pytest.approx(3.0, abs=0.01)
    wall = {**ok, "formed_at_us": T0 + 30 * 86_400 * S}      # a virtual-time run's wall clock
    virtual = score(truth(BLAST), [wall])
    assert virtual["alert_latency_s"]["not_comparable"] == 1
    # the text prints no figure that means nothing (it printed "median 2592003.0 s")
    line = next(x for x in format_text(virtual).splitlines() if x.startswith("alert latency"))
    assert line.startswith("alert latency       not measured: a virtual-time run") and "median" not in line


# ------------------------------------------------------------------ files and the command

@pytest.fixture
def files(tmp_path):
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(truth(BLAST)))
    incidents = tmp_path / "incidents.jsonl"
    lines = [inc("I1", "explosion", 100.2, at(900, 1000)), inc("I2", "explosion", 500, at(0, 0)),
             inc("I1", "artillery", 100.5, at(12, 1000), side="L")]     # replaces the first I1
    incidents.write_text("\n".join(json.dumps(i) for i in lines) + "\n\n")
    return path, incidents


def test_later_line_replaces_earlier_and_order_is_kept(files):
    incidents = load_incidents(files[1])
    assert [i["id"] for i in incidents] == ["I2", "I1"] and incidents[1]["class"] == "artillery"


def test_cli_text_and_json(files, capsys):
    assert main(["score", str(files[0]), str(files[1])]) == 0
    text = capsys.readouterr().out
    assert "recall              100.0 %" in text and "false incidents     1 of 2" in text
    assert "median 12.0 m" in text and "within 25 m 100.0 %" in text
    assert main(["score", str(files[0]), str(files[1]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["false"]["count"] == 1


def test_cli_reports_bad_input_clearly(files, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(inc("I", "explosion", 1)) + "\n{broken\n")
    assert main(["score", str(files[0]), str(bad)]) == 2
    assert "bad.jsonl:2: not JSON" in capsys.readouterr().err
    bad.write_text('{"id": "a", "class": "drone"}\n')
    assert main(["score", str(files[0]), str(bad)]) == 2
    assert "bad.jsonl:1: incident without 'time_utc_us'" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing.json"), str(files[1])]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_odd_incident_fields_do_not_break_the_score():
    odd = [inc("A", "explosion", 100, at(0, 1000), nodes="1,2", ellipse="big", track=5),
           inc("B", "drone", 50, at(0, 0), fix="detection", track=[[1, 2], "x", [True, 1.0, 2.0]],
               crossing={"from": "up", "to": "R"}),
           inc("C", "tamper", 600, fix="detection", nodes=None),
           inc("D", 7, 100, at(0, 1000), lat=True)]
    result = score(truth(BLAST, drone([crossing()])), odd)
    assert result["recall"]["reported"] == 1          # A: a fix in the gates, odd fields aside
    # B: no usable track points, so its own place at its time (over the drone): tracked
    assert result["tracks"]["drone"]["tracked"] == 1 and result["crossings"]["drone"]["reported"] == 0
    assert result["false"]["ids"] == ["C", "D"]
