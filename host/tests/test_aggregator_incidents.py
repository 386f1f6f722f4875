"""Incidents: export (what the scorer reads), status changes in the evidence log, fusion hook."""
from __future__ import annotations

import json
from dataclasses import replace

from linewatch import cli, keys
from linewatch.commission.fusionhook import FusionHook, make_fusion
from linewatch.commands.evidence import verify
from linewatch.commission.config import Config, FusionConfig
from linewatch.commission.store import Batch, open_store


def test_export_and_set_status_recorded_as_evidence(tmp_path, capsys):
    db = str(tmp_path / "lw.db")
    master = keys.create_master_key(tmp_path / "master.key")
    store = open_store(db)
    body = {"id": "INC-1", "class": "explosion", "lat": 48.0, "lon": 37.0, "side": "L", "status": "new"}
    store.commit(Batch(incidents={"INC-1": ("new", 1, json.dumps(body))}))
    assert cli.main(["incidents", "--db", db, "set-status", "INC-1", "confirmed", "--note", "two fixes",
                     "--who", "observer-7"]) == 0
    assert cli.main(["incidents", "--db", db, "set-status", "INC-9", "confirmed"]) == 1
    out = tmp_path / "incidents.jsonl"
    assert cli.main(["incidents", "--db", db, "export", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(d["id"], d["status"], d["side"]) for d in lines] == [("INC-1", "confirmed", "L")]
    entries = [r for r in store.evidence() if r.type == "incident_status"]
    assert len(entries) == 1 and entries[0].verified == "observer-7"
    assert json.loads(entries[0].note) == {"incident": "INC-1", "old": "new", "new": "confirmed", "note": "two fixes"}
    assert verify(store, master) == (1, None)


def test_list_speaks_the_operators_words_and_exports_mark_withdrawn_incidents(tmp_path, capsys):
    db = str(tmp_path / "lw.db")
    (tmp_path / "my.toml").write_text('[store]\npath = "lw.db"\n[fusion]\nsides = ["Party A", "Party B"]\n')
    store = open_store(db)
    located = {"id": "I-000001", "class": "explosion", "fix": "tdoa", "provisional": False, "reports": [1, 2, 3],
               "nodes": [0x0101, 0x0102, 0x0103], "lat": 48.0, "lon": 37.0, "side": "R", "side_probability": 0.93,
               "distance_from_line_m": 420.0, "ellipse_95": {"major_m": 30.4, "minor_m": 8.0, "angle_deg": 1.0},
               "time_utc_us": 1_795_586_403_000_000}
    merged = {"id": "I-000002", "class": "small_arms", "fix": "detection", "provisional": False, "reports": [],
              "nodes": [], "time_utc_us": 1_795_586_404_000_000}
    store.commit(Batch(incidents={"I-000001": ("new", 1, json.dumps(located)),
                                  "I-000002": ("new", 1, json.dumps(merged))}))
    assert cli.main(["incidents", "--config", str(tmp_path / "my.toml"), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "time", "(UTC)", "class", "how", "placed", "nodes", "side", "of", "the",
                                "line", "status"]
    assert lines[1:] == ["I-000001  2026-11-25 06:00:03  explosion  located at 48.00000, 37.00000 +-30 m  3"
                         "      Party B 420 m from the line (p 0.93)  new"]
    assert cli.main(["incidents", "--config", str(tmp_path / "my.toml"), "list", "--all"]) == 0
    assert "I-000002  2026-11-25 06:00:04  small_arms  withdrawn: its reports joined other incidents" \
        in capsys.readouterr().out
    assert cli.main(["incidents", "--db", db, "export", "-"]) == 0
    exported = {d["id"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert exported["I-000002"]["status"] == "withdrawn" and exported["I-000001"]["status"] == "new"
    assert cli.main(["incidents", "--db", db, "set-status", "I-000002", "confirmed"]) == 1
    assert "withdrawn" in capsys.readouterr().err


def test_fusion_hook_is_built_only_with_a_line():
    assert make_fusion(Config()) is None
    config = replace(Config(), fusion=FusionConfig(line=((48.0, 37.0), (48.1, 37.1))))
    hook = make_fusion(config)
    assert isinstance(hook, FusionHook) and hook.engine.defer_wide   # the serve loop settles wide searches
    assert not hook.engine._ctx.config.publish_pairs


def test_publishing_pairs_is_the_operators_choice(tmp_path):
    from linewatch.commission.config import load
    toml = tmp_path / "c.toml"
    toml.write_text("[fusion]\nline = [[48.0, 37.0], [48.1, 37.1]]\npublish_pairs = true\n")
    assert make_fusion(load(toml)).engine._ctx.config.publish_pairs


def test_a_restarted_service_names_new_incidents_after_the_stored_ones(tmp_path):
    """The fusion engine starts its numbering at 1; a service restarted over a store that
    holds I-000007 must not name its next incident I-000001 (it overwrote the stored one's
    body and recorded no new incident in the evidence log)."""
    from linewatch.commission.service import Aggregator
    store = open_store(str(tmp_path / "lw.db"))
    body = {"id": "I-000007", "class": "explosion", "reports": [1]}
    store.commit(Batch(incidents={"I-000007": ("new", 1, json.dumps(body))}))
    config = replace(Config(), fusion=FusionConfig(line=((48.0, 37.0), (48.1, 37.1))))
    service = Aggregator(config, bytes(32), store)
    service._setup()
    assert service.fusion.engine._ledger.last_public == 7
