"""The storage suite: every test runs against SQLite AND a real PostgreSQL (`store_target`, in
linewatch.testing.plugin: a SQLite file, then a fresh database on a private server the session
starts from Debian's binaries, never the machine's own).

Adding a store method? Add it to both store_sqlite.py and store_postgres.py, and its test here:
the aggregator, the CLI and the desk must behave the same on either backend.
"""
from __future__ import annotations

import concurrent.futures
import json
import sqlite3

import pytest

from lwproto import const
from lwproto import frame as wire
from lwproto import topic as topics

from linewatch import keys
from linewatch.commands.evidence import verify
from linewatch.commission.evidence import commission_entry
from linewatch.commission.incidents import incident_dicts, set_status
from linewatch.commission.store import (
    FRAME,
    GENESIS,
    Batch,
    EvidenceRow,
    HealthChange,
    NodeHealth,
    NodeRecord,
    Refusal,
    StoreError,
    open_store,
)

MASTER = bytes(range(32))
SEGMENT = 3
T0 = 1795000000000000


def frame_row(node: int, boot: int, seq: int, ftype: int = const.EVENT, at: int = 0) -> EvidenceRow:
    key = keys.derive(MASTER, node)
    if ftype == const.EVENT:
        values = {"event_class": const.EXPLOSION, "confidence": 0.9, "onset_offset_us": -100, "peak_db": -10.0,
                  "duration_ms": 100, "frequency_hz": 90, "snr_db": 20.0}
    elif ftype == const.BIRTH:
        values = {"fw_major": 0, "fw_minor": 1, "fw_patch": 0, "board": 4, "segment": SEGMENT, "lat": 48.0,
                  "lon": 37.0, "alt_m": 100, "position_error_m": 5, "sensors": 15, "capabilities": 16,
                  "sample_rate_hz": 16000}
    else:
        values = {"reason": const.DEATH_LOST}
    raw = wire.encode(key, ftype, node, boot, seq, T0 + seq * 1000, const.CLOCK_GPS_PPS, 3, values)
    return EvidenceRow(0, FRAME, const.TYPE_NAMES[ftype], node, boot, seq, topics.uplink(SEGMENT, node, ftype),
                       at or T0 + seq, raw, "tag_ok", "")


@pytest.fixture
def store(store_target):
    s = open_store(store_target)
    yield s
    s.close()


def test_opens_twice_and_boot_counts_up(store_target):
    first = open_store(store_target)
    assert first.bump_boot() == 1
    again = open_store(store_target)     # the schema is created once, kept
    assert again.bump_boot() == 2
    assert first.bump_boot() == 3
    first.close()
    again.close()


def test_unreachable_database_is_a_store_error(tmp_path, store_target):
    target = str(tmp_path / "no" / "such" / "folder.db") if not store_target.startswith("postgresql") \
        else store_target.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StoreError, match="database"):
        open_store(target)


def test_a_read_only_store_reads_and_cannot_write(store_target):
    writer = open_store(store_target)
    writer.commit(Batch(evidence=[frame_row(0x0102, 1, 1)]))
    store = open_store(store_target, readonly=True)
    try:
        assert [r.seq for r in store.evidence()] == [1]
        with pytest.raises(StoreError, match="read-only"):
            store.commit(Batch(evidence=[frame_row(0x0102, 1, 2)]))
        with pytest.raises(StoreError):
            store.node_put(NodeRecord(0x0102, 3, 48.0, 37.0))
    finally:
        store.close()
    assert writer.nodes() == [] and [r.seq for r in writer.evidence()] == [1]
    writer.close()


def test_a_missing_database_opened_read_only_is_an_error_not_created(tmp_path, store_target):
    target = str(tmp_path / "mistyped.db") if not store_target.startswith("postgresql") \
        else store_target.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StoreError, match="database"):
        open_store(target, readonly=True)
    assert not list(tmp_path.glob("mistyped.db*"))


def test_refusals_not_kept_are_still_counted(store):
    kept = Refusal(T0, "lw/3/0102/event", b"\x01" * 5, "bad_tag", "bad tag", 0x0102)
    store.commit(Batch(refusals=[kept], refusals_dropped={("bad_tag", 0x0102): 7, ("bad_topic", -1): 3}))
    store.commit(Batch(refusals_dropped={("bad_tag", 0x0102): 2}))
    assert store.refusals_by_reason() == {"bad_tag": 10, "bad_topic": 3}
    assert store.quarantine_dropped() == {"bad_tag": 9, "bad_topic": 3}
    assert store.quarantine_counts() == [("bad_tag", "lw/3/0102/event", 1)]


def test_chain_ids_and_every_tag_verify(store):
    rows = [frame_row(0x0102, 1, 1, const.BIRTH)] + [frame_row(0x0102, 1, s) for s in range(2, 7)]
    ids = store.commit(Batch(evidence=rows[:3]))
    ids += store.commit(Batch(evidence=rows[3:] + [commission_entry("lost", 0x0102, {
        "boot": 1, "first_seq": 7, "last_seq": 9, "why": "test"})]))
    assert ids == list(range(1, 8))
    stored = list(store.evidence())
    assert [r.id for r in stored] == ids
    assert stored[0].prev_hash == GENESIS
    for before, row in zip(stored, stored[1:]):
        assert row.prev_hash == before.hash and row.digest(before.hash) == row.hash
    assert [r.raw for r in stored[:6]] == [r.raw for r in rows]
    assert list(store.evidence(after_id=5))[0].id == 6
    assert verify(store, MASTER) == (7, None)
    assert store.last_evidence_id() == 7


def test_evidence_cannot_be_edited_through_the_database(store, store_target):
    store.commit(Batch(evidence=[frame_row(0x0102, 1, 1)]))
    if store_target.startswith("postgresql"):
        import psycopg
        with psycopg.connect(store_target, autocommit=True) as db:
            for sql in ("UPDATE evidence SET seq = 9", "DELETE FROM evidence", "TRUNCATE evidence"):
                with pytest.raises(psycopg.Error, match="append-only"):
                    db.execute(sql)
    else:
        db = sqlite3.connect(store_target)
        for sql in ("UPDATE evidence SET seq = 9", "DELETE FROM evidence"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(sql)
        db.close()
    assert verify(store, MASTER) == (1, None)


def test_stream_queries(store):
    node = 0x0102
    store.commit(Batch(evidence=[frame_row(node, 1, 1, const.BIRTH), frame_row(node, 1, 2), frame_row(node, 1, 4),
                                 frame_row(node, 1, 1, const.DEATH), frame_row(node, 2, 1, const.BIRTH),
                                 frame_row(node, 3, 1, const.BIRTH), frame_row(0x0103, 7, 1)]))
    store.commit(Batch(evidence=[commission_entry("lost", node, {"boot": 1, "first_seq": 3, "last_seq": 3,
                                                                 "why": "gave up"})]))
    assert store.stream_seqs(node, 1) == [1, 2, 4]
    assert store.recent_boots(node, 2) == [2, 3]
    assert store.recent_boots(node, 9) == [1, 2, 3]
    assert store.lost_ranges() == [(node, 1, 3, 3)]
    assert store.last_birth(node) == (3, 1)
    assert store.last_birth(0x0999) is None
    assert store.deaths(node) == [(1, 1)]
    assert store.counts_by_type() == {"birth": 3, "event": 3, "death": 1}
    assert store.frames_since(T0 + 2) == 2            # received_us = T0 + seq: seq >= 2
    assert [r.seq for r in store.frames_after(2, [node])] == [4, 1, 1, 1]
    assert [r.node for r in store.frames_after(0, [0x0103])] == [0x0103]
    assert store.frames_after(0, []) == []
    assert store.evidence_id_at(T0 + 2) == 7         # the last row received before T0 + 2 (seq 1)
    assert store.evidence_id_at(T0) == 0
    # what the daily report reads: frames of some types received in a window, oldest first
    assert store.frame_times(("birth", "death"), T0, T0 + 2) == [(node, T0 + 1, "birth"), (node, T0 + 1, "death"),
                                                                (node, T0 + 1, "birth"), (node, T0 + 1, "birth")]
    assert store.frame_times(("event",), T0 + 2, T0 + 5) == [(node, T0 + 2, "event"), (node, T0 + 4, "event")]
    assert store.frame_times((), 0, T0 * 2) == []
    # an incident's reports by their evidence ids, in chain order, unknown ids skipped
    assert [(r.id, r.seq, r.type) for r in store.evidence_rows([3, 2, 999])] == [(2, 2, "event"), (3, 4, "event")]
    assert store.evidence_rows([3])[0] == next(iter(store.evidence(after_id=2)))
    assert store.evidence_rows([]) == []


def test_registry(store):
    a = NodeRecord(0x0102, 3, 48.01, 37.76, 120.5, 5)
    store.node_put(a)
    store.node_put(NodeRecord(0x0101, 2, 48.0, 37.7))
    assert store.node_get(0x0102) == a
    store.node_put(NodeRecord(0x0102, 4, 48.02, 37.77))   # moved: replaced
    assert store.node_get(0x0102).segment == 4
    assert [n.id for n in store.nodes()] == [0x0101, 0x0102]
    assert store.node_remove(0x0101) is True
    assert store.node_remove(0x0101) is False
    assert store.node_get(0x0101) is None


def test_quarantine_health_and_changes(store):
    refusals = [Refusal(T0 + i, "lw/up/3/0102/event", bytes([i]) * 5, reason, "why", 0x0102)
                for i, reason in enumerate(["bad_tag", "bad_tag", "replay"])]
    h = NodeHealth(0x0102, "online", T0, T0 + 5, 2, 3900, 7.5, -60, 3, 1, 20, "0.1.0", '{"x": 1}')
    store.commit(Batch(refusals=refusals, health={h.node: h},
                       health_changes=[HealthChange(0x0102, T0, "unknown", "online", "birth")]))
    h2 = NodeHealth(0x0102, "late", T0 + 9, T0 + 5, 2, 3800, 6.0, -61, 0, 1, 20, "0.1.0", "{}")
    store.commit(Batch(health={h2.node: h2}))
    assert store.health() == [h2]
    later = HealthChange(0x0102, T0 + 9, "online", "late", "silent 180 s")
    store.commit(Batch(health_changes=[later]))
    assert store.health_changes(T0, T0 + 10) == [HealthChange(0x0102, T0, "unknown", "online", "birth"), later]
    assert store.health_changes(T0 + 1, T0 + 9) == []
    assert store.refusals_by_reason() == {"bad_tag": 2, "replay": 1}
    assert [r.raw for r in store.refusals(limit=2)] == [bytes([2]) * 5, bytes([1]) * 5]
    assert store.refusals()[0] == refusals[2]
    store.commit(Batch(health_changes=[HealthChange(0x0103, T0 + 9, "unknown", "online", "birth")]))
    assert [(c.new, c.why) for c in store.node_health_changes(0x0102)] == [("late", "silent 180 s"), ("online", "birth")]
    assert store.node_health_changes(0x0102, limit=1)[0].at_us == T0 + 9


def test_commission_entries_by_type_and_node_newest_first(store):
    from linewatch.commission.evidence import commission_entry
    store.commit(Batch(evidence=[commission_entry("command", 0x0102, {"command": "rebirth"}, who="ana"),
                                 commission_entry("command", 0x0103, {"command": "reboot"}, who="bo"),
                                 commission_entry("lost", 0x0102, {"boot": 1, "first_seq": 2, "last_seq": 3})]))
    store.commit(Batch(evidence=[commission_entry("command", 0x0102, {"command": "reboot"}, who="ana")]))
    rows = store.commission_entries("command", 0x0102)
    assert [(r.verified, json.loads(r.note)["command"]) for r in rows] == [("ana", "reboot"), ("ana", "rebirth")]
    assert [r.node for r in store.commission_entries("command")] == [0x0102, 0x0103, 0x0102]
    assert len(store.commission_entries("command", limit=1)) == 1
    assert verify(store, MASTER) == (4, None)


def test_the_last_incident_id_is_the_highest_number_not_the_last_written(store):
    assert store.last_incident_id() is None
    for incident_id in ("I-000009", "I-1000000", "I-e77", "I-000010", "INC-5"):
        store.commit(Batch(incidents={incident_id: ("new", T0, json.dumps({"id": incident_id}))}))
    assert store.last_incident_id() == "I-1000000"


def test_incidents_and_their_judgement_are_evidence(store):
    body = json.dumps({"id": "I-000001", "class": "explosion", "reports": [1]})
    store.commit(Batch(incidents={"I-000001": ("new", T0, body)}))
    store.commit(Batch(incidents={"I-000001": ("new", T0 + 5, body)}))    # a newer version replaces it
    assert store.incident_get("I-000001") == ("I-000001", "new", T0 + 5, body)
    assert store.incident_get("I-000404") is None
    assert set_status(store, "I-000001", "confirmed", "two fixes agree", "tester") == "new"
    assert [(d["id"], d["status"]) for d in incident_dicts(store)] == [("I-000001", "confirmed")]
    entry = list(store.evidence())[-1]
    assert (entry.kind, entry.type, json.loads(entry.note)["new"]) == ("commission", "incident_status", "confirmed")
    assert verify(store, MASTER) == (1, None)


def _plan(store, sql: str, args: tuple) -> str:
    """The engine's plan for a read, as text: SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN
    with sequential scans discouraged (on a table this small the planner would scan anyway,
    index or no index: what counts is that an index it may use exists)."""
    if isinstance(store.db, sqlite3.Connection):
        return "\n".join(str(r[-1]) for r in store.db.execute("EXPLAIN QUERY PLAN " + sql, args))
    with store.db.transaction():
        store.db.execute("SET LOCAL enable_seqscan = off")
        return "\n".join(r[0] for r in store.db.execute("EXPLAIN " + sql.replace("?", "%s"), args))


def test_the_desk_reads_an_incident_by_its_key_and_its_judgements_by_an_index(store):
    """An incident's page reads its row by key and its judgements through the index of the
    commission's entries: neither the incidents table nor the evidence log is walked whole."""
    from linewatch.commission import config as cfg
    from linewatch.desk.views import Views
    store.commit(Batch(evidence=[frame_row(0x0102, 1, s) for s in range(1, 40)]))
    for n in (2, 20, 200):
        incident_id = "I-%06d" % n
        store.commit(Batch(incidents={incident_id: ("new", T0 + n, json.dumps({"id": incident_id, "reports": [n]}))}))
    set_status(store, "I-000020", "confirmed", "seen", "ana")
    set_status(store, "I-000002", "dismissed", "a door", "bo")
    set_status(store, "I-000002", "confirmed", "seen after all", "ana")
    reads = []
    rows = store._rows
    store._rows = lambda sql, args=(): reads.append((sql, args)) or rows(sql, args)
    store.incidents = lambda: pytest.fail("the whole incidents table read for one incident")
    store.evidence = lambda after_id=0: pytest.fail("the log read from a report on (a page of rows on PostgreSQL)")
    d = Views(store, cfg.from_dict({}), MASTER).incident("I-000002")
    assert [(j["who"], j["new"]) for j in d["judgements"]] == [("ana", "confirmed"), ("bo", "dismissed")]
    assert d["status"] == "confirmed" and [r["evidence_id"] for r in d["contributing"]] == [2]
    assert [json.loads(e.note)["note"] for e in store.incident_judgements("I-000020")] == ["seen"]
    assert store.incident_judgements("I-000404") == []
    for sql, args in reads:
        plan = _plan(store, sql, args)
        for table in ("evidence", "incidents"):
            assert f"SCAN {table}" not in plan and f"Seq Scan on {table}" not in plan, (sql, plan)
    assert any("evidence_commission" in _plan(store, sql, args) for sql, args in reads)


def test_duplicate_frames_are_refused_at_commit_when_asked(store):
    """Several instances on shared subscriptions: a resent frame may reach another instance."""
    rows = [frame_row(0x0102, 1, s) for s in range(1, 4)]
    assert store.commit(Batch(evidence=rows[:2], dedupe=True)) == [1, 2]
    again = [rows[1], rows[2], rows[2], commission_entry("lost", 0x0102, {"boot": 1, "first_seq": 9,
                                                                          "last_seq": 9, "why": "x"})]
    assert store.commit(Batch(evidence=again, dedupe=True)) == [0, 3, 0, 4]
    assert [r.seq for r in store.evidence() if r.kind == FRAME] == [1, 2, 3]
    assert store.refusals_by_reason() == {"replay": 2}
    assert verify(store, MASTER) == (4, None)


def test_two_writers_keep_one_chain(store_target):
    """Two stores on one database (two instances, or the CLI beside the service) append to the
    same chain; commits serialize, none forks it."""
    a, b = open_store(store_target), open_store(store_target)

    def write(store, node):
        for seq in range(1, 21):
            store.commit(Batch(evidence=[frame_row(node, 1, seq), frame_row(node, 2, seq)]))

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(write, (a, b), (0x0102, 0x0103)))
    assert verify(a, MASTER) == (80, None)
    assert sorted(a.counts_by_type().items()) == [("event", 80)]
    a.close()
    b.close()
