import json

import pytest

from linewatch.cli import main
from linewatch.emulator.score import load_incidents, score
from linewatch.emulator.world import offset_latlon

BASE = (48.0, 37.8)
T0 = 1_800_000_000_000_000
S = 1_000_000


def at(east_m, north_m=0.0):
    return offset_latlon(BASE[0], BASE[1], east_m, north_m)


def src(ident, cls, t_s, where, side, dist, heard, **extra):
    lat, lon = where
    out = {"id": ident, "class": cls, "time_utc_us": T0 + int(t_s * S), "lat": lat, "lon": lon,
           "side": side, "distance_from_line_m": dist, "heard_by": heard}
    out.update(extra)
    return out


def inc(ident, cls, t_s, where=None, fix="detection", side=None, formed_s=None, **extra):
    out = {"id": ident, "class": cls, "time_utc_us": T0 + int(t_s * S), "fix": fix, "side": side,
           "formed_at_us": None if formed_s is None else T0 + int(formed_s * S)}
    if where:
        out["lat"], out["lon"] = where
    out.update(extra)
    return out


TRUTH = {"scenario": "hand", "seed": 1, "start_utc_us": T0, "line": [list(at(-5000)), list(at(5000))],
         "nodes": [], "sources": [
             src("S1", "explosion", 100, at(0, 1500), "L", 1500, [1, 2, 3]),
             src("S2", "small_arms", 200, at(1000, -100), "R", 100, [1], end_utc_us=T0 + 201 * S),
             src("S3", "drone", 300, at(0, 3000), "L", 3000, [2], end_utc_us=T0 + 400 * S,
                 first_heard_utc_us=T0 + 320 * S,
                 path=[[T0 + 300 * S, *at(0, 3000)], [T0 + 400 * S, *at(0, -1000)]]),
             src("S4", "explosion", 500, at(3000, 50), "L", 50, []),
             src("S5", "tamper", 600, at(2000, -300), "R", 300, [3], end_utc_us=T0 + 605 * S),
             src("S6", "small_arms", 700, at(-2000, 400), "L", 400, [1, 2]),
         ]}
INCIDENTS = [
    inc("I1", "explosion", 100.4, at(2000, 1500), "tdoa", "R", 101),        # replaced below
    inc("I2", "small_arms", 200.5, at(1000, -150), "detection", "R", 202),
    inc("I3", "drone", 350, at(300, 1000), "hyperbola", "R", 330),          # track at (0, 1000)
    inc("I4", "explosion", 1000, at(0), "tdoa", "L", 1001),                 # nothing happened
    inc("I1", "artillery", 100.5, at(100, 1500), "tdoa", "L", 103),
    inc("I5", "tamper", 601, None, "detection", None, 606),
    inc("I6", "explosion", 500.2, at(3000), "detection", "L", 505),         # unheard source
    inc("I7", "small_arms", 700, at(-2000, 400), "tdoa", "L", 701, status="dismissed"),
]


@pytest.fixture
def files(tmp_path):
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps(TRUTH))
    incidents = tmp_path / "incidents.jsonl"
    incidents.write_text("\n".join(json.dumps(i) for i in INCIDENTS) + "\n\n")
    return truth, incidents


def test_scores_a_hand_made_case(files):
    result = score(TRUTH, load_incidents(files[1]))
    assert (result["heard"], result["detected"]) == (5, 4)
    assert result["detection_rate"] == pytest.approx(0.8) and result["missed"] == ["S6"]
    assert result["by_class"]["small_arms"] == {"heard": 2, "detected": 1, "rate": 0.5}
    assert result["incidents"] == 6 and result["false_incidents"] == 1 and result["false"] == ["I4"]
    loc = result["localization_error_m"]
    assert loc["count"] == 2
    assert loc["median"] == pytest.approx(200, abs=1) and loc["p90"] == pytest.approx(280, abs=1)
    assert result["side"] == {"eligible": 3, "correct": 1, "wrong": 1, "undecided": 1, "accuracy": 0.5}
    lat = result["alert_latency_s"]
    assert lat["count"] == 5
    assert lat["median"] == pytest.approx(5.0) and lat["p90"] == pytest.approx(8.4)


def test_later_line_replaces_earlier_and_order_is_kept(files):
    incidents = load_incidents(files[1])
    assert [i["id"] for i in incidents] == ["I2", "I3", "I4", "I1", "I5", "I6", "I7"]
    assert next(i for i in incidents if i["id"] == "I1")["class"] == "artillery"


def test_outside_the_window_or_other_class_is_false():
    result = score(TRUTH, [inc("X", "explosion", 115, at(0, 1500), "tdoa", "L", 116),
                           inc("Y", "vehicle", 100, at(0, 1500), "tdoa", "L", 101)])
    assert result["detected"] == 0 and result["false_incidents"] == 2


def test_one_source_matches_one_incident_nearest_first():
    near = inc("near", "explosion", 101, at(0, 1500), "tdoa", "L", 102)
    far = inc("far", "explosion", 101, at(0, 4500), "tdoa", "L", 102)
    result = score(TRUTH, [far, near])
    assert result["false"] == ["far"] and result["localization_error_m"]["median"] < 1


def test_cli_text_and_json(files, capsys):
    assert main(["score", str(files[0]), str(files[1])]) == 0
    text = capsys.readouterr().out
    assert "detection rate      80.0 %" in text and "false incidents     1 of 6" in text
    assert "median 200.0 m" in text and "50.0 %" in text
    assert main(["score", str(files[0]), str(files[1]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["false_incidents"] == 1


def test_cli_reports_bad_input_clearly(files, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(INCIDENTS[0]) + "\n{broken\n")
    assert main(["score", str(files[0]), str(bad)]) == 2
    assert "bad.jsonl:2: not JSON" in capsys.readouterr().err
    bad.write_text('{"id": "a", "class": "drone"}\n')
    assert main(["score", str(files[0]), str(bad)]) == 2
    assert "bad.jsonl:1: incident without 'time_utc_us'" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing.json"), str(files[1])]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_withdrawn_incidents_are_neither_hits_nor_false(tmp_path):
    from linewatch.emulator.score import load_incidents
    path = tmp_path / "incidents.jsonl"
    base = {"class": "small_arms", "time_utc_us": 1, "status": "new", "fix": "detection"}
    lines = [dict(base, id="I-1", provisional=True, reports=[7]),
             dict(base, id="I-1", provisional=False, reports=[]),       # withdrawn
             dict(base, id="I-2", provisional=False, reports=[8])]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    truth = {"sources": []}
    assert score(truth, load_incidents(path))["false_incidents"] == 1     # I-2 only
