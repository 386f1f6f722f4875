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


def test_fusion_hook_is_built_only_with_a_line():
    assert make_fusion(Config()) is None
    config = replace(Config(), fusion=FusionConfig(line=((48.0, 37.0), (48.1, 37.1))))
    hook = make_fusion(config)
    assert isinstance(hook, FusionHook) and hook.engine.defer_wide   # the serve loop settles wide searches
