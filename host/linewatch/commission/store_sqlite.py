"""The SQLite store: one file, WAL journal, one writer (the aggregator), many readers (CLI).

Durability: an ack tells a node it may delete a frame from its flash, so an acked frame must
survive a power cut, not only a process crash. WAL with synchronous=FULL fsyncs the log at
every commit; batching many frames per transaction keeps that to a few fsyncs per second.
synchronous=NORMAL survives a crash of the service but may lose the last commits on power
loss: the config allows it for machines with a UPS, and says so.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Iterator

from linewatch.commission.store import (
    COMMISSION,
    FRAME,
    GENESIS,
    Batch,
    EvidenceRow,
    HealthChange,
    NodeHealth,
    NodeRecord,
    Refusal,
    StoreError,
    canonical,
    ids_in_order,
    split_duplicates,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    id INTEGER PRIMARY KEY, segment INTEGER NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
    alt_m REAL NOT NULL DEFAULT 0, added_us INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, type TEXT NOT NULL, node INTEGER NOT NULL,
    boot INTEGER NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL,
    received_us INTEGER NOT NULL, raw BLOB NOT NULL, verified TEXT NOT NULL, note TEXT NOT NULL,
    prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS evidence_stream ON evidence (node, boot, seq);
CREATE TRIGGER IF NOT EXISTS evidence_no_update BEFORE UPDATE ON evidence
    BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END;
CREATE TRIGGER IF NOT EXISTS evidence_no_delete BEFORE DELETE ON evidence
    BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END;
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY, received_us INTEGER NOT NULL, topic TEXT NOT NULL, raw BLOB NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, node INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS quarantine_reason ON quarantine (reason);
CREATE TABLE IF NOT EXISTS quarantine_dropped (
    reason TEXT NOT NULL, node INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (reason, node));
CREATE TABLE IF NOT EXISTS node_health (
    node INTEGER PRIMARY KEY, state TEXT NOT NULL, state_since_us INTEGER NOT NULL,
    last_seen_us INTEGER NOT NULL, boot INTEGER NOT NULL, battery_mv INTEGER NOT NULL,
    temperature_c REAL NOT NULL, rssi_dbm INTEGER NOT NULL, queue_depth INTEGER NOT NULL,
    clock_source INTEGER NOT NULL, clock_error_us INTEGER NOT NULL, firmware TEXT NOT NULL,
    counters TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS health_changes (
    id INTEGER PRIMARY KEY, node INTEGER NOT NULL, at_us INTEGER NOT NULL, old TEXT NOT NULL,
    new TEXT NOT NULL, why TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, updated_us INTEGER NOT NULL, body TEXT NOT NULL);
"""

EVIDENCE_COLUMNS = "id, kind, type, node, boot, seq, topic, received_us, raw, verified, note, prev_hash, hash"


class SQLiteStore:
    def __init__(self, path: str, synchronous: str = "FULL", readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        if readonly:
            self._open_readonly()
            return
        parent = Path(path).resolve().parent
        if not parent.is_dir():
            raise StoreError(f"database {path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK) or (Path(path).exists() and not os.access(path, os.W_OK)):
            raise StoreError(f"database {path}: not writable by this user")
        try:
            self.db = self._connect(synchronous)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
            # commit() has a connection of its own: the aggregator commits a batch in a writer
            # thread while it checks the next one (and may read the registry) in its own, and
            # WAL lets that reader go on beside the writer.
            self._writer = self._connect(synchronous)
        except sqlite3.Error as exc:
            raise StoreError(f"database {path}: {exc}")

    def _open_readonly(self) -> None:
        """For commands that only read: a missing file is an error (never an empty new log),
        and SQLite itself refuses every write on this connection."""
        if not Path(self.path).is_file():
            raise StoreError(f"database {self.path}: does not exist (check --db or [store] path;"
                             f" a read-only command never creates one)")
        try:
            self.db = sqlite3.connect(f"{Path(self.path).resolve().as_uri()}?mode=ro", uri=True,
                                      isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA busy_timeout=5000")
            self.db.execute("SELECT COUNT(*) FROM evidence").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.path}: cannot be read as a LineWatch database ({exc})")
        self._writer = None

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        return db

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.db.close()

    def _chain_head(self) -> tuple[int, bytes]:
        row = self._writer.execute("SELECT id, hash FROM evidence ORDER BY id DESC LIMIT 1").fetchone()
        return (row[0], bytes(row[1])) if row else (0, GENESIS)

    def bump_boot(self) -> int:
        with self._transaction():
            row = self.db.execute("SELECT value FROM meta WHERE key='boot'").fetchone()
            boot = (row[0] if row else 0) + 1
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('boot', ?)", (boot,))
        return boot

    def _transaction(self) -> "_Transaction":
        if self.readonly:
            raise StoreError(f"database {self.path}: opened read-only")
        return _Transaction(self.db, self.path)

    def commit(self, batch: Batch) -> list[int]:
        """Write the batch in one transaction; returns the evidence ids given to its rows, in order.

        The chain head is read inside the write lock: the CLI (an incident's status change)
        may append between two of the service's batches."""
        if self._writer is None:
            raise StoreError(f"database {self.path}: opened read-only")
        try:
            with _Transaction(self._writer):
                evidence, refusals, kept = batch.evidence, batch.refusals, None
                if batch.dedupe and evidence:
                    evidence, duplicates, kept = self._dedupe(evidence)
                    refusals = refusals + duplicates
                rows = self._chain(evidence) if evidence else []
                self._write(batch, rows, refusals)
        except sqlite3.Error as exc:
            raise StoreError(_write_failed(self.path, exc))
        return ids_in_order(rows, kept)

    def _dedupe(self, evidence: list[EvidenceRow]) -> tuple[list[EvidenceRow], list[Refusal], list[bool]]:
        lookup = self._writer.execute
        stored = {(r.node, r.boot, r.seq, r.type) for r in evidence if r.kind == FRAME and lookup(
            "SELECT 1 FROM evidence WHERE node=? AND boot=? AND seq=? AND type=? AND kind=?",
            (r.node, r.boot, r.seq, r.type, FRAME)).fetchone()}
        return split_duplicates(evidence, stored)

    def _chain(self, evidence: list[EvidenceRow]) -> list[tuple]:
        last_id, last_hash = self._chain_head()
        sha256 = hashlib.sha256
        rows = []
        append = rows.append
        for _, kind, type_, node, boot, seq, topic, received_us, raw, verified, note, *_ in evidence:
            last_id += 1
            prev = last_hash
            last_hash = sha256(prev + canonical(last_id, kind, type_, node, boot, seq, topic, received_us, raw,
                                                verified, note)).digest()
            append((last_id, kind, type_, node, boot, seq, topic, received_us, raw, verified, note, prev, last_hash))
        return rows

    def _write(self, batch: Batch, rows: list[tuple], refusals: list[Refusal]) -> None:
        db = self._writer
        if rows:
            db.executemany(f"INSERT INTO evidence ({EVIDENCE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           rows)
        if refusals:
            db.executemany("INSERT INTO quarantine (received_us, topic, raw, reason, detail, node) "
                           "VALUES (?,?,?,?,?,?)",
                           [(r.received_us, r.topic, r.raw, r.reason, r.detail, r.node) for r in refusals])
        if batch.refusals_dropped:
            db.executemany("INSERT INTO quarantine_dropped (reason, node, count) VALUES (?,?,?) "
                           "ON CONFLICT (reason, node) DO UPDATE SET count = count + excluded.count",
                           [(reason, node, n) for (reason, node), n in batch.refusals_dropped.items()])
        if batch.health:
            db.executemany("INSERT OR REPLACE INTO node_health VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           [(h.node, h.state, h.state_since_us, h.last_seen_us, h.boot, h.battery_mv,
                             h.temperature_c, h.rssi_dbm, h.queue_depth, h.clock_source,
                             h.clock_error_us, h.firmware, h.counters) for h in batch.health.values()])
        if batch.health_changes:
            db.executemany("INSERT INTO health_changes (node, at_us, old, new, why) VALUES (?,?,?,?,?)",
                           [(c.node, c.at_us, c.old, c.new, c.why) for c in batch.health_changes])
        if batch.incidents:
            db.executemany("INSERT OR REPLACE INTO incidents (id, status, updated_us, body) VALUES (?,?,?,?)",
                           [(k, v[0], v[1], v[2]) for k, v in batch.incidents.items()])

    # -- registry --

    def node_put(self, node: NodeRecord) -> None:
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO nodes VALUES (?,?,?,?,?,?)",
                            (node.id, node.segment, node.lat, node.lon, node.alt_m, node.added_us))

    def node_get(self, node_id: int) -> NodeRecord | None:
        row = self.db.execute("SELECT * FROM nodes WHERE id=?", (node_id,)).fetchone()
        return NodeRecord(*row) if row else None

    def node_remove(self, node_id: int) -> bool:
        with self._transaction():
            return self.db.execute("DELETE FROM nodes WHERE id=?", (node_id,)).rowcount > 0

    def nodes(self) -> list[NodeRecord]:
        return [NodeRecord(*r) for r in self.db.execute("SELECT * FROM nodes ORDER BY id")]

    # -- evidence --

    def evidence(self, after_id: int = 0) -> Iterator[EvidenceRow]:
        """Rows as stored: SQLite keeps whatever type a value was written with, so a blob column
        holding text (an edit outside the service) comes out as text, for `check` to name."""
        cursor = self.db.execute(f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id > ? ORDER BY id", (after_id,))
        for r in cursor:
            yield EvidenceRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], _blob(r[8]), r[9], r[10],
                              _blob(r[11]), _blob(r[12]))

    def frames_after(self, after_id: int, nodes: list[int], limit: int = 5000) -> list[EvidenceRow]:
        """Frame rows of these nodes after `after_id`, in chain order (a segment owner's feed)."""
        marks = ",".join("?" * len(nodes)) or "NULL"
        return [EvidenceRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bytes(r[8]), r[9], r[10],
                            bytes(r[11]), bytes(r[12])) for r in self.db.execute(
            f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id > ? AND kind = ? AND node IN ({marks}) "
            f"ORDER BY id LIMIT ?", (after_id, FRAME, *nodes, limit))]

    def evidence_rows(self, ids: list[int]) -> list[EvidenceRow]:
        """The rows with these ids (an incident's reports), in chain order; unknown ids are skipped."""
        out: list[EvidenceRow] = []
        for k in range(0, len(ids), 500):       # SQLite's bound on parameters per statement
            chunk = list(ids[k:k + 500])
            marks = ",".join("?" * len(chunk))
            out += [EvidenceRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], _blob(r[8]), r[9], r[10],
                                _blob(r[11]), _blob(r[12])) for r in self.db.execute(
                f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id IN ({marks})", chunk)]
        return sorted(out, key=lambda r: r.id)

    def last_evidence_id(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(id), 0) FROM evidence").fetchone()[0]

    def evidence_id_at(self, received_us: int) -> int:
        """The last evidence id received before `received_us` (where a replay window starts)."""
        return self.db.execute("SELECT COALESCE(MAX(id), 0) FROM evidence WHERE received_us < ?",
                               (received_us,)).fetchone()[0]

    def stream_seqs(self, node: int, boot: int) -> list[int]:
        return [r[0] for r in self.db.execute(
            "SELECT seq FROM evidence WHERE node=? AND boot=? AND kind=? AND type NOT IN ('death') "
            "ORDER BY seq", (node, boot, FRAME))]

    def recent_boots(self, node: int, count: int) -> list[int]:
        return sorted(r[0] for r in self.db.execute(
            "SELECT DISTINCT boot FROM evidence WHERE node=? AND kind=? ORDER BY boot DESC LIMIT ?",
            (node, FRAME, count)))

    def lost_ranges(self) -> list[tuple[int, int, int, int]]:
        import json
        out = []
        for node, note in self.db.execute(
                "SELECT node, note FROM evidence WHERE kind=? AND type='lost' ORDER BY id", (COMMISSION,)):
            entry = json.loads(note)
            out.append((node, entry["boot"], entry["first_seq"], entry["last_seq"]))
        return out

    def last_birth(self, node: int) -> tuple[int, int] | None:
        row = self.db.execute("SELECT boot, seq FROM evidence WHERE node=? AND kind=? AND type='birth' "
                              "ORDER BY boot DESC, seq DESC LIMIT 1", (node, FRAME)).fetchone()
        return (row[0], row[1]) if row else None

    def deaths(self, node: int) -> list[tuple[int, int]]:
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT boot, seq FROM evidence WHERE node=? AND kind=? AND type='death' ORDER BY id", (node, FRAME))]

    # -- health, incidents, stats --

    def health(self) -> list[NodeHealth]:
        return [NodeHealth(*r) for r in self.db.execute("SELECT * FROM node_health ORDER BY node")]

    def health_changes(self, since_us: int, until_us: int) -> list[HealthChange]:
        """Node state changes made at or after `since_us` and before `until_us`, in order."""
        return [HealthChange(*r) for r in self.db.execute(
            "SELECT node, at_us, old, new, why FROM health_changes WHERE at_us >= ? AND at_us < ? ORDER BY at_us, id",
            (since_us, until_us))]

    def frame_times(self, types: tuple[str, ...], since_us: int, until_us: int) -> list[tuple[int, int, str]]:
        """(node, received_us, type) of the frames of these types received in [since_us, until_us), in order."""
        marks = ",".join("?" * len(types)) or "NULL"
        return [(r[0], r[1], r[2]) for r in self.db.execute(
            f"SELECT node, received_us, type FROM evidence WHERE kind = ? AND type IN ({marks}) AND received_us >= ? "
            f"AND received_us < ? ORDER BY received_us, id", (FRAME, *types, since_us, until_us))]

    def incidents(self) -> list[tuple[str, str, int, str]]:
        return list(self.db.execute("SELECT id, status, updated_us, body FROM incidents ORDER BY updated_us, id"))

    def incident_get(self, incident_id: str) -> tuple[str, str, int, str] | None:
        return self.db.execute("SELECT id, status, updated_us, body FROM incidents WHERE id=?",
                               (incident_id,)).fetchone()

    def counts_by_type(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT type, COUNT(*) FROM evidence WHERE kind=? GROUP BY type", (FRAME,)))

    def refusals_by_reason(self) -> dict[str, int]:
        out = dict(self.db.execute("SELECT reason, COUNT(*) FROM quarantine GROUP BY reason"))
        for reason, n in self.quarantine_dropped().items():
            out[reason] = out.get(reason, 0) + n
        return out

    def quarantine_counts(self) -> list[tuple[str, str, int]]:
        return list(self.db.execute("SELECT reason, topic, COUNT(*) FROM quarantine GROUP BY reason, topic"))

    def quarantine_dropped(self) -> dict[str, int]:
        try:
            return dict(self.db.execute("SELECT reason, SUM(count) FROM quarantine_dropped GROUP BY reason"))
        except sqlite3.OperationalError:   # a database the service never opened since it had this table
            return {}

    def frames_since(self, since_us: int) -> int:
        return self.db.execute("SELECT COUNT(*) FROM evidence WHERE kind=? AND received_us >= ?",
                               (FRAME, since_us)).fetchone()[0]

    def node_health_changes(self, node: int, limit: int = 100) -> list[HealthChange]:
        return [HealthChange(*r) for r in self.db.execute(
            "SELECT node, at_us, old, new, why FROM health_changes WHERE node=? ORDER BY id DESC LIMIT ?",
            (node, limit))]

    def commission_entries(self, entry_type: str, node: int | None = None, limit: int = 100) -> list[EvidenceRow]:
        where, args = ("AND node=? ", (node,)) if node is not None else ("", ())
        return [EvidenceRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bytes(r[8]), r[9], r[10],
                            bytes(r[11]), bytes(r[12])) for r in self.db.execute(
            f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE kind=? AND type=? {where}ORDER BY id DESC LIMIT ?",
            (COMMISSION, entry_type, *args, limit))]

    def refusals(self, limit: int = 100) -> list[Refusal]:
        return [Refusal(*r) for r in self.db.execute(
            "SELECT received_us, topic, raw, reason, detail, node FROM quarantine ORDER BY id DESC LIMIT ?",
            (limit,))]


def _write_failed(path: str, exc: BaseException) -> str:
    """What an operator needs: which file, what SQLite said, and where to look first."""
    text = f"database {path}: write failed: {exc}"
    if isinstance(exc, sqlite3.OperationalError) and ("full" in str(exc) or "I/O" in str(exc)):
        text += f" (is the disk full? df -h {Path(path).resolve().parent})"
    return text


def _blob(value):
    return bytes(value) if isinstance(value, memoryview) else value


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error (the connection runs in autocommit).
    With a path, SQLite's errors come out as StoreError naming the database."""

    def __init__(self, db: sqlite3.Connection, path: str | None = None) -> None:
        self.db = db
        self.path = path

    def __enter__(self) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._raise(exc)

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self.db.execute("COMMIT")
            else:
                self.db.execute("ROLLBACK")
        except sqlite3.Error as failed:
            if exc_type is None:
                self._raise(failed)
        if exc_type is not None and issubclass(exc_type, sqlite3.Error) and self.path:
            self._raise(exc)
        return False

    def _raise(self, exc: BaseException) -> None:
        if self.path is None:
            raise exc
        raise StoreError(_write_failed(self.path, exc)) from exc
