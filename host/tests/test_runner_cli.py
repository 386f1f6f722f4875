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
    withdrawn = {"class": "small_arms", "fix": "detection", "provisional": False, "reports": [], "nodes": []}
    located = {"class": "explosion", "fix": "tdoa", "provisional": True, "reports": [4, 5, 6],
               "nodes": [1, 2, 3], "lat": 48.0, "lon": 37.0, "side": "L"}
    assert "withdrawn" in describe_incident(withdrawn)
    assert describe_incident(located) == "explosion, fix tdoa, at 48.00000, 37.00000, side of the line: left, 3 nodes"
