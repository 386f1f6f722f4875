"""The SQLite store: one file, WAL journal, one writer (the aggregator), many readers (CLI).

Durability: an ack tells a node it may delete a frame from its flash, so an acked frame must
survive a power cut, not only a process crash. WAL with synchronous=FULL fsyncs the log at
every commit; batching many frames per transaction keeps that to a few fsyncs per second.
synchronous=NORMAL survives a crash of the service but may lose the last commits on power
loss: the config allows it for machines with a UPS, and says so.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Iterator

from linewatch.commission.store import (
    FRAME,
    Batch,
    EvidenceRow,
    NodeHealth,
    NodeRecord,
    Refusal,
    StoreError,
    ids_in_order,
    split_duplicates,
)
from linewatch.commission.store_reads import EVIDENCE_COLUMNS, SqlReads, chain, evidence_row

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
-- the commission's own entries (judgements, commands, lost ranges) by type, without the frames:
-- the desk reads them by type and would otherwise walk the whole log
CREATE INDEX IF NOT EXISTS evidence_commission ON evidence (type, id) WHERE kind = 'commission';
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


class SQLiteStore(SqlReads):
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

    def _chain_head(self) -> tuple | None:
        return self._writer.execute("SELECT id, hash FROM evidence ORDER BY id DESC LIMIT 1").fetchone()

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
                rows = chain(self._chain_head(), evidence) if evidence else []
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

    def node_remove(self, node_id: int) -> bool:
        with self._transaction():
            return self.db.execute("DELETE FROM nodes WHERE id=?", (node_id,)).rowcount > 0

    # -- evidence --

    def evidence(self, after_id: int = 0) -> Iterator[EvidenceRow]:
        """Rows as stored: SQLite keeps whatever type a value was written with, so a blob column
        holding text (an edit outside the service) comes out as text, for `check` to name."""
        cursor = self.db.execute(f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id > ? ORDER BY id", (after_id,))
        for r in cursor:
            yield evidence_row(r)

    def frames_after(self, after_id: int, nodes: list[int], limit: int = 5000) -> list[EvidenceRow]:
        """Frame rows of these nodes after `after_id`, in chain order (a segment owner's feed)."""
        marks = ",".join("?" * len(nodes)) or "NULL"
        return [evidence_row(r) for r in self.db.execute(
            f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id > ? AND kind = ? AND node IN ({marks}) "
            f"ORDER BY id LIMIT ?", (after_id, FRAME, *nodes, limit))]

    def evidence_rows(self, ids: list[int]) -> list[EvidenceRow]:
        """The rows with these ids (an incident's reports), in chain order; unknown ids are skipped."""
        out: list[EvidenceRow] = []
        for k in range(0, len(ids), 500):       # SQLite's bound on parameters per statement
            chunk = list(ids[k:k + 500])
            marks = ",".join("?" * len(chunk))
            out += [evidence_row(r) for r in self.db.execute(
                f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id IN ({marks})", chunk)]
        return sorted(out, key=lambda r: r.id)

    # -- health, incidents, stats --

    def health(self) -> list[NodeHealth]:
        return [NodeHealth(*r) for r in self.db.execute("SELECT * FROM node_health ORDER BY node")]

    def frame_times(self, types: tuple[str, ...], since_us: int, until_us: int) -> list[tuple[int, int, str]]:
        """(node, received_us, type) of the frames of these types received in [since_us, until_us), in order."""
        marks = ",".join("?" * len(types)) or "NULL"
        return [(r[0], r[1], r[2]) for r in self.db.execute(
            f"SELECT node, received_us, type FROM evidence WHERE kind = ? AND type IN ({marks}) AND received_us >= ? "
            f"AND received_us < ? ORDER BY received_us, id", (FRAME, *types, since_us, until_us))]

    def quarantine_dropped(self) -> dict[str, int]:
        try:
            return self._dropped_rows()
        except sqlite3.OperationalError:   # a database the service never opened since it had this table
            return {}


def _write_failed(path: str, exc: BaseException) -> str:
    """What an operator needs: which file, what SQLite said, and where to look first."""
    text = f"database {path}: write failed: {exc}"
    if isinstance(exc, sqlite3.OperationalError) and ("full" in str(exc) or "I/O" in str(exc)):
        text += f" (is the disk full? df -h {Path(path).resolve().parent})"
    return text


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
