"""The signed evidence head (issue 12, defect 2): the service publishes (row count, last hash)
signed under the commission's key, retained on the broker and to a file; a later `evidence
verify` against a published head catches a truncation of the newest rows and a rewrite with
the chain rebuilt, which the chain alone cannot. And verify names a row stored with the wrong
column type instead of crashing."""
from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from dataclasses import replace

import pytest

from lwnode.mqtt import MQTTClient
from lwproto import const, frame as wire, topic as topics
from linewatch import cli, keys
from linewatch.broker import BrokerAccess, Subscription
from linewatch.commission import evidencehead
from linewatch.commission.config import AcksConfig, Config, EvidenceConfig, StoreConfig
from linewatch.commission.evidence import commission_entry
from linewatch.commission.registry import Registry
from linewatch.commission.service import Aggregator
from linewatch.commission.store import Batch, canonical, open_store

SEGMENT, NODE = 3, 0x0102
T0 = 1795000000000000


def event(key, seq):
    return wire.encode(key, const.EVENT, NODE, 1, seq, T0 + seq, const.CLOCK_GPS_PPS, 3,
                       {"event_class": 1, "confidence": 0.9, "onset_offset_us": 0, "peak_db": -10.0,
                        "duration_ms": 100, "frequency_hz": 90, "snr_db": 20.0})


@pytest.fixture
def served(tmp_path, mosquitto):
    """Ten frames through the real service against a real Mosquitto, then a clean stop: the
    evidence log, its head file, and the head retained on the broker."""
    master_path = tmp_path / "master.key"
    master = keys.create_master_key(master_path)
    db = str(tmp_path / "lw.db")
    store = open_store(db)
    Registry(store).add(NODE, SEGMENT, 48.0, 37.0)
    head_file = tmp_path / "evidence-head.json"
    config = Config()
    config = replace(config, broker=replace(config.broker, host=mosquitto.host, port=mosquitto.port,
                                            client_id="agg-head", connect_retries=0),
                     store=StoreConfig(path=db), keys=replace(config.keys, master_key_file=str(master_path)),
                     acks=AcksConfig(interval_ms=50),
                     evidence=EvidenceConfig(head_file=str(head_file), head_interval_s=0.2))

    async def run():
        stop = asyncio.Event()
        aggregator = Aggregator(config, master, store)
        await aggregator.start()
        task = asyncio.create_task(aggregator.serve(stop))
        node = MQTTClient("node-0102", mosquitto.host, mosquitto.port)
        await node.connect()
        key = keys.derive(master, NODE)
        for seq in range(1, 11):
            await node.publish(topics.uplink(SEGMENT, NODE, const.EVENT), event(key, seq), 1)
        for _ in range(500):
            if store.last_evidence_id() >= 10 and head_file.exists() \
                    and json.loads(head_file.read_text())["rows"] >= 10:
                break
            await asyncio.sleep(0.02)
        await node.disconnect()
        stop.set()
        await task
        await aggregator.shutdown()
    asyncio.run(run())
    rows = store.last_evidence_id()
    store.close()
    argv = ["evidence", "--db", db, "--master-key", str(master_path), "verify"]
    return {"master": master, "db": db, "head_file": head_file, "rows": rows, "argv": argv,
            "broker": mosquitto, "tmp": tmp_path}


def tamper(db: str, *statements: str) -> None:
    """What an intruder with the database file could do (the triggers dropped first)."""
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER IF EXISTS evidence_no_update")
    con.execute("DROP TRIGGER IF EXISTS evidence_no_delete")
    for sql in statements:
        con.execute(sql)
    con.commit()
    con.close()


def test_head_file_and_retained_head_name_the_whole_log(served):
    head = evidencehead.parse(served["head_file"].read_text())
    assert head.rows == served["rows"] >= 10
    assert evidencehead.signature_ok(head, served["master"])
    access = BrokerAccess(served["broker"].host, served["broker"].port)
    with Subscription(access, [(topics.EVIDENCE_HEAD, 1)], "lw-head-test").open() as sub:
        message = sub.get(timeout=10)
    assert message is not None and message[0] == topics.EVIDENCE_HEAD
    assert evidencehead.parse(message[1].decode()) == head


def test_truncation_of_the_newest_rows_is_caught_by_the_published_head(served, capsys):
    assert cli.main(served["argv"] + ["--head", str(served["head_file"])]) == 0
    assert "signed head" in capsys.readouterr().out
    copy = served["tmp"] / "head-copy.json"            # what the operator keeps elsewhere
    copy.write_text(served["head_file"].read_text())
    tamper(served["db"], "DELETE FROM evidence WHERE id > 6")
    assert cli.main(served["argv"]) == 0               # the chain alone cannot tell
    capsys.readouterr()
    assert cli.main(served["argv"] + ["--head", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "truncated" in out and f"{served['rows']} rows" in out, out
    access = f"{served['broker'].host}:{served['broker'].port}"
    assert cli.main(served["argv"] + ["--head-from-broker", "--broker", access]) == 1
    assert "truncated" in capsys.readouterr().out


def test_a_rewrite_with_the_chain_rebuilt_is_caught_by_the_head(served, capsys):
    """An intruder without the master key edits a commission row (no tag to break) and
    recomputes every hash after it: the chain verifies, the signed head does not match."""
    con = sqlite3.connect(served["db"])
    rows = con.execute("SELECT id, kind, type, node, boot, seq, topic, received_us, raw, verified, note "
                       "FROM evidence ORDER BY id").fetchall()
    con.close()
    rows[3] = rows[3][:7] + (rows[3][7] + 1,) + rows[3][8:]         # row 4 received a microsecond later
    statements, prev = [], bytes(32)
    for r in rows:
        digest = hashlib.sha256(prev + canonical(*r[:8], bytes(r[8]), r[9], r[10])).digest()
        statements.append(f"UPDATE evidence SET received_us={r[7]}, prev_hash=x'{prev.hex()}', "
                          f"hash=x'{digest.hex()}' WHERE id={r[0]}")
        prev = digest
    tamper(served["db"], *statements)
    assert cli.main(served["argv"] + ["--no-head"]) == 0            # chain and tags: fine
    capsys.readouterr()
    assert cli.main(served["argv"] + ["--head", str(served["head_file"])]) == 1
    assert "differs from the signed head" in capsys.readouterr().out


def test_a_forged_head_is_refused(served, capsys):
    head = evidencehead.parse(served["head_file"].read_text())
    forged = evidencehead.make(head.rows - 3, bytes(32), head.made_us, bytes(range(32)))
    path = served["tmp"] / "forged.json"
    path.write_text(evidencehead.dumps(forged))
    assert cli.main(served["argv"] + ["--head", str(path)]) == 1
    assert "signature does not verify" in capsys.readouterr().out


@pytest.mark.parametrize("edit", ["UPDATE evidence SET boot='x' WHERE id=3",
                                  "UPDATE evidence SET raw='text' WHERE id=3",
                                  "UPDATE evidence SET note=x'00ff' WHERE id=3",
                                  "UPDATE evidence SET hash=5 WHERE id=3",
                                  "UPDATE evidence SET note=CAST(x'fffe' AS TEXT) WHERE id=3",
                                  "UPDATE evidence SET seq=1e30 WHERE id=3"])
def test_verify_names_a_row_stored_with_the_wrong_type(tmp_path, capsys, edit):
    master_path = tmp_path / "master.key"
    keys.create_master_key(master_path)
    db = str(tmp_path / "lw.db")
    store = open_store(db)
    store.commit(Batch(evidence=[commission_entry("note", 0, {"n": n}) for n in range(5)]))
    store.close()
    tamper(db, edit)
    assert cli.main(["evidence", "--db", db, "--master-key", str(master_path), "verify", "--no-head"]) == 1
    out = capsys.readouterr().out
    assert "BROKEN at row 3" in out, out


def test_the_reports_statement_says_whether_the_signed_head_verified(served):
    from linewatch.commission.evidence import statement
    store = open_store(served["db"], readonly=True)
    good = statement(store, served["master"], str(served["head_file"]))
    store.close()
    assert good.ok and good.head_checked and "signed head" in good.text, good
    tamper(served["db"], "DELETE FROM evidence WHERE id > 6")
    store = open_store(served["db"], readonly=True)
    bad = statement(store, served["master"], str(served["head_file"]))
    none = statement(store, served["master"], None)
    store.close()
    assert not bad.ok and "truncated" in bad.text, bad
    assert none.ok and not none.head_checked and "no signed head" in none.text
