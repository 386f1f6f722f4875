"""Read-only commands open the database read-only and refuse one that does not exist: a
mistyped --db must not read as a clean, empty evidence log (issue 12, defect 3)."""
from __future__ import annotations

import pytest

from linewatch import cli, keys
from linewatch.commission.registry import Registry
from linewatch.commission.store import Batch, open_store
from linewatch.commission.evidence import commission_entry

READ_ONLY = [["evidence", "verify"], ["stats"], ["nodes", "status"], ["nodes", "list"],
             ["incidents", "list"], ["incidents", "export", "-"]]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_missing_database_is_refused_and_not_created(tmp_path, capsys, command):
    keys.create_master_key(tmp_path / "master.key")
    missing = tmp_path / "mistyped.db"
    code = cli.main([command[0], "--db", str(missing), "--master-key", str(tmp_path / "master.key"),
                     *command[1:]])
    err = capsys.readouterr()
    assert code != 0
    assert str(missing) in err.err and "does not exist" in err.err, err
    assert "OK" not in err.out
    assert not missing.exists() and not list(tmp_path.glob("mistyped.db*"))


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_work_on_a_real_database(tmp_path, capsys, command):
    keys.create_master_key(tmp_path / "master.key")
    db = tmp_path / "lw.db"
    store = open_store(str(db))
    Registry(store).add(0x0102, 3, 48.0, 37.0)
    store.commit(Batch(evidence=[commission_entry("note", 0, {"n": 1})]))
    store.close()
    assert cli.main([command[0], "--db", str(db), "--master-key", str(tmp_path / "master.key"),
                     *command[1:]]) == 0
