"""`linewatch emulate` refuses bad input with a clear line and exit 2; --prepare writes the run."""
from __future__ import annotations

import json
import stat

import pytest

from linewatch.cli import main


def test_scenario_and_seed_are_exclusive(capsys):
    assert main(["emulate", "demo", "--seed", "3"]) == 2
    assert "give a scenario file or --seed N" in capsys.readouterr().err
    assert main(["emulate"]) == 2


def test_bad_broker_and_missing_scenario(capsys, tmp_path):
    assert main(["emulate", "demo", "--broker", "nohost"]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err
    assert main(["emulate", str(tmp_path / "none.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_prepare_writes_key_registry_config_and_truth(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["emulate", "demo", "--broker", "127.0.0.1:1", "--out", str(out), "--prepare"]) == 0
    key = out / "commission" / "master.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    truth = json.loads((out / "truth.json").read_text())
    assert truth["scenario"] == "demo" and len(truth["nodes"]) == 12
    assert "[fusion]" in (out / "commission" / "aggregator.toml").read_text()
    from linewatch.commission.registry import Registry
    registry = Registry.open(out / "commission" / "linewatch.db")
    assert sorted(n.id for n in registry.list()) == sorted(n["id"] for n in truth["nodes"])


def test_profile_picks_what_the_commission_is_told_about_the_air(tmp_path, capsys):
    configs = {}
    for profile in ("ideal", "field"):
        out = tmp_path / profile
        assert main(["emulate", "demo", "--broker", "127.0.0.1:1", "--out", str(out), "--prepare",
                     "--profile", profile]) == 0
        assert "(profile %s)" % profile in capsys.readouterr().out
        configs[profile] = (out / "commission" / "aggregator.toml").read_text()
    # ideal: the world's true wind (3 m/s from 270), no temperature; field: a station's reading
    assert "wind_speed_mps = 3.0\nwind_from_deg = 270.0" in configs["ideal"]
    assert "temperature_c" not in configs["ideal"]
    assert "met station" in configs["field"] and "temperature_c = " in configs["field"]
    with pytest.raises(SystemExit) as exit_:
        main(["emulate", "demo", "--profile", "lab"])
    assert exit_.value.code == 2 and "invalid choice: 'lab'" in capsys.readouterr().err


def test_the_demo_names_a_withdrawn_incident_instead_of_an_unknown_position():
    from linewatch.emulator.demo import describe_incident
    withdrawn = {"id": "I-000002", "class": "small_arms", "fix": "detection", "provisional": False,
                 "reports": [], "nodes": [], "time_utc_us": 1_795_586_412_000_000}
    located = {"id": "I-000001", "class": "explosion", "fix": "tdoa", "provisional": True, "reports": [4, 5, 6],
               "nodes": [1, 2, 3], "lat": 48.0, "lon": 37.0, "side": "L", "side_probability": 0.97,
               "distance_from_line_m": 1512.0, "ellipse_95": {"major_m": 41.2, "minor_m": 9.0, "angle_deg": 3},
               "time_utc_us": 1_795_586_403_000_000}
    assert "withdrawn: its reports joined other incidents" in describe_incident(withdrawn)
    assert describe_incident(located, ("Party A", "Party B")) == (
        "I-000001 06:00:03 UTC explosion, located at 48.00000, 37.00000 +-41 m, 3 nodes, "
        "Party A 1.5 km from the line (p 0.97)")


def test_the_demo_tells_each_incident_once_formed_and_once_settled():
    import io
    import time
    from linewatch.emulator.demo import FORM_DELAY_S, Viewer
    out = io.StringIO()
    viewer = Viewer(("127.0.0.1", 1), b"k" * 32, out, time.monotonic(), ("Party A", "Party B"))
    t = 1_795_586_403_000_000
    first = {"kind": "incident", "id": "I-000001", "class": "explosion", "fix": "detection", "provisional": True,
             "reports": [1], "nodes": [0x0101], "time_utc_us": t}
    located = {**first, "fix": "tdoa", "reports": [1, 2, 3], "nodes": [0x0101, 0x0102, 0x0103],
               "lat": 48.0, "lon": 37.0, "side": "R", "side_probability": 0.9, "distance_from_line_m": 800.0}
    phantom = {**first, "id": "I-000002", "class": "small_arms"}
    for alert in (first, phantom, located, {**phantom, "provisional": False, "reports": [], "nodes": []}):
        viewer._alert("lw/alerts/incident", json.dumps(alert).encode())
    viewer._announce(time.monotonic())
    assert out.getvalue() == ""                       # not yet: it may still be merged
    viewer._announce(time.monotonic() + FORM_DELAY_S)
    viewer._alert("lw/alerts/incident", json.dumps({**located, "provisional": False}).encode())
    viewer._announce(time.monotonic() + FORM_DELAY_S)
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "formed: I-000001 06:00:03 UTC explosion, located at 48.00000, 37.00000, 3 nodes, "
        "Party B 800 m from the line (p 0.90)",
        "settled: I-000001 06:00:03 UTC explosion, located at 48.00000, 37.00000, 3 nodes, "
        "Party B 800 m from the line (p 0.90)"]
    summary = viewer.summary(60)
    assert "1 incident (1 located); 1 more was withdrawn" in summary and "0 nodes reporting" in summary
    assert "I-000002" not in summary and "still open" not in summary
