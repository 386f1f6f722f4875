"""The PostgreSQL store: the same tables, chain and guarantees as store_sqlite.py, for a
commission whose several aggregator instances share one database (docs/scale-out.md).

Driver: psycopg 3, synchronous, as the Store interface is (the service commits in a writer
thread; every CLI command reads synchronously). Evidence rows go in by COPY: 1.4 us of client
CPU per row against 6.7 for executemany (asyncpg's COPY: 0.6 us, but it would need an event
loop of its own in the writer thread and in every command; docs/performance.md).

Several writers append to one hash chain: each commit takes a transaction-scoped advisory
lock (CHAIN_LOCK) before it reads the chain head, so the chain stays one line whatever
instance writes. Durability: synchronous = "FULL"/"EXTRA" keeps PostgreSQL's
synchronous_commit on (with a synchronous standby configured, the commit also waits for it);
"NORMAL" turns it off for this store's sessions (a crash of the server may lose the last
commits, never corrupt them).
"""
from __future__ import annotations

from typing import Any, Iterator

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

try:
    import psycopg
except ImportError:   # the product runs on SQLite without it
    psycopg = None  # type: ignore[assignment]

CHAIN_LOCK = 0x4C57_0001     # advisory lock key: one writer of the evidence chain at a time
SCHEMA_LOCK = 0x4C57_0002    # schema creation by several instances starting together

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    id INTEGER PRIMARY KEY, segment INTEGER NOT NULL, lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL, alt_m DOUBLE PRECISION NOT NULL DEFAULT 0,
    added_us BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS evidence (
    id BIGINT PRIMARY KEY, kind TEXT NOT NULL, type TEXT NOT NULL, node INTEGER NOT NULL,
    boot INTEGER NOT NULL, seq BIGINT NOT NULL, topic TEXT NOT NULL,
    received_us BIGINT NOT NULL, raw BYTEA NOT NULL, verified TEXT NOT NULL, note TEXT NOT NULL,
    prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS evidence_stream ON evidence (node, boot, seq);
-- the commission's own entries (judgements, commands, lost ranges) by type, without the frames:
-- the desk reads them by type and would otherwise walk the whole log
CREATE INDEX IF NOT EXISTS evidence_commission ON evidence (type, id) WHERE kind = 'commission';
CREATE OR REPLACE FUNCTION linewatch_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'evidence is append-only'; END $$;
CREATE OR REPLACE TRIGGER evidence_no_update BEFORE UPDATE OR DELETE ON evidence
    FOR EACH ROW EXECUTE FUNCTION linewatch_append_only();
CREATE OR REPLACE TRIGGER evidence_no_truncate BEFORE TRUNCATE ON evidence
    FOR EACH STATEMENT EXECUTE FUNCTION linewatch_append_only();
CREATE TABLE IF NOT EXISTS quarantine (
    id BIGSERIAL PRIMARY KEY, received_us BIGINT NOT NULL, topic TEXT NOT NULL, raw BYTEA NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, node INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS quarantine_reason ON quarantine (reason);
CREATE TABLE IF NOT EXISTS quarantine_dropped (
    reason TEXT NOT NULL, node INTEGER NOT NULL, count BIGINT NOT NULL, PRIMARY KEY (reason, node));
CREATE TABLE IF NOT EXISTS node_health (
    node INTEGER PRIMARY KEY, state TEXT NOT NULL, state_since_us BIGINT NOT NULL,
    last_seen_us BIGINT NOT NULL, boot INTEGER NOT NULL, battery_mv INTEGER NOT NULL,
    temperature_c DOUBLE PRECISION NOT NULL, rssi_dbm INTEGER NOT NULL, queue_depth INTEGER NOT NULL,
    clock_source INTEGER NOT NULL, clock_error_us BIGINT NOT NULL, firmware TEXT NOT NULL,
    counters TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS health_changes (
    id BIGSERIAL PRIMARY KEY, node INTEGER NOT NULL, at_us BIGINT NOT NULL, old TEXT NOT NULL,
    new TEXT NOT NULL, why TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, updated_us BIGINT NOT NULL, body TEXT NOT NULL);
"""

NODE_HEALTH_COLUMNS = ("node, state, state_since_us, last_seen_us, boot, battery_mv, temperature_c, rssi_dbm, "
                       "queue_depth, clock_source, clock_error_us, firmware, counters")
PAGE = 5000


def is_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


class PostgresStore(SqlReads):
    PARAM = "%s"

    def __init__(self, url: str, synchronous: str = "FULL", readonly: bool = False) -> None:
        if psycopg is None:
            raise StoreError("database %s: PostgreSQL needs psycopg 3 (pip install 'linewatch[postgresql]')"
                             % _safe(url))
        self.url = url
        self.path = _safe(url)    # what messages name (never the password)
        self._sync = "off" if synchronous.upper() == "NORMAL" else "on"
        self.readonly = readonly
        try:
            self.db = self._connect()
            if readonly:
                # every transaction of this session read-only: the server refuses any write;
                # no schema is made (a database without one is not a LineWatch database)
                self.db.execute("SET default_transaction_read_only = on")
                self.db.execute("SELECT COUNT(*) FROM evidence").fetchone()
                self._writer = None
                return
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                self.db.execute(SCHEMA)
            # As in SQLite: commit() has its own connection, used from the writer thread.
            self._writer = self._connect()
        except psycopg.Error as exc:
            raise StoreError(f"database {self.path}: {_first_line(exc)}")

    def _connect(self) -> Any:
        db = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        db.execute("SET synchronous_commit = " + self._sync)
        return db

    def close(self) -> None:
        for db in (getattr(self, "_writer", None), getattr(self, "db", None)):
            if db is not None:
                db.close()

    def bump_boot(self) -> int:
        try:
            row = self.db.execute(
                "INSERT INTO meta (key, value) VALUES ('boot', 1) "
                "ON CONFLICT (key) DO UPDATE SET value = meta.value + 1 RETURNING value").fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"database {self.path}: {_first_line(exc)}")
        return int(row[0])

    # -- writing --

    def commit(self, batch: Batch) -> list[int]:
        """Write the batch in one transaction; returns the evidence ids given to its rows, in order
        (0 for a frame refused as a duplicate when the batch asks for that check)."""
        if self._writer is None:
            raise StoreError(f"database {self.path}: opened read-only")
        try:
            with self._writer.transaction():
                cur = self._writer.cursor()
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
                evidence, refusals, kept = batch.evidence, batch.refusals, None
                if batch.dedupe and evidence:
                    evidence, duplicates, kept = self._dedupe(cur, evidence)
                    refusals = refusals + duplicates
                head = cur.execute("SELECT id, hash FROM evidence ORDER BY id DESC LIMIT 1").fetchone()
                rows = chain(head, evidence) if evidence else []
                self._write(cur, batch, rows, refusals)
        except psycopg.Error as exc:
            raise StoreError(f"database {self.path}: write failed: {_first_line(exc)}")
        return ids_in_order(rows, kept)

    def _dedupe(self, cur: Any, evidence: list[EvidenceRow]) -> tuple[list[EvidenceRow], list[Refusal], list[bool]]:
        frames = [r for r in evidence if r.kind == FRAME]
        if not frames:
            return evidence, [], [True] * len(evidence)
        cur.execute(
            "SELECT e.node, e.boot, e.seq, e.type FROM evidence e JOIN "
            "unnest(%s::int[], %s::int[], %s::bigint[], %s::text[]) AS b(node, boot, seq, type) "
            "ON e.node = b.node AND e.boot = b.boot AND e.seq = b.seq AND e.type = b.type "
            "WHERE e.kind = 'frame'",
            ([r.node for r in frames], [r.boot for r in frames], [r.seq for r in frames], [r.type for r in frames]))
        return split_duplicates(evidence, {tuple(r) for r in cur.fetchall()})

    def _write(self, cur: Any, batch: Batch, rows: list[tuple], refusals: list[Refusal]) -> None:
        if rows:
            with cur.copy(f"COPY evidence ({EVIDENCE_COLUMNS}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
        if refusals:
            cur.executemany("INSERT INTO quarantine (received_us, topic, raw, reason, detail, node) "
                            "VALUES (%s,%s,%s,%s,%s,%s)",
                            [(r.received_us, r.topic, r.raw, r.reason, r.detail, r.node) for r in refusals])
        if batch.refusals_dropped:
            cur.executemany("INSERT INTO quarantine_dropped (reason, node, count) VALUES (%s,%s,%s) "
                            "ON CONFLICT (reason, node) DO UPDATE SET count = quarantine_dropped.count + "
                            "EXCLUDED.count",
                            [(reason, node, n) for (reason, node), n in sorted(batch.refusals_dropped.items())])
        if batch.health:
            cur.executemany(
                f"INSERT INTO node_health ({NODE_HEALTH_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (node) DO UPDATE SET " + ", ".join(
                    f"{c} = EXCLUDED.{c}" for c in NODE_HEALTH_COLUMNS.split(", ")[1:]),
                [(h.node, h.state, h.state_since_us, h.last_seen_us, h.boot, h.battery_mv, h.temperature_c,
                  h.rssi_dbm, h.queue_depth, h.clock_source, h.clock_error_us, h.firmware, h.counters)
                 for h in batch.health.values()])
        if batch.health_changes:
            cur.executemany("INSERT INTO health_changes (node, at_us, old, new, why) VALUES (%s,%s,%s,%s,%s)",
                            [(c.node, c.at_us, c.old, c.new, c.why) for c in batch.health_changes])
        if batch.incidents:
            cur.executemany(
                "INSERT INTO incidents (id, status, updated_us, body) VALUES (%s,%s,%s,%s) ON CONFLICT (id) "
                "DO UPDATE SET status = EXCLUDED.status, updated_us = EXCLUDED.updated_us, body = EXCLUDED.body",
                [(k, v[0], v[1], v[2]) for k, v in batch.incidents.items()])

    # -- registry --

    def _write_one(self, sql: str, args: tuple) -> int:
        try:
            return self.db.execute(sql, args).rowcount
        except psycopg.Error as exc:
            raise StoreError(f"database {self.path}: write failed: {_first_line(exc)}")

    def node_put(self, node: NodeRecord) -> None:
        self._write_one(
            "INSERT INTO nodes VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (id) DO UPDATE SET segment = EXCLUDED.segment, "
            "lat = EXCLUDED.lat, lon = EXCLUDED.lon, alt_m = EXCLUDED.alt_m, added_us = EXCLUDED.added_us",
            (node.id, node.segment, node.lat, node.lon, node.alt_m, node.added_us))

    def node_remove(self, node_id: int) -> bool:
        return self._write_one("DELETE FROM nodes WHERE id=%s", (node_id,)) > 0

    # -- evidence --

    def evidence(self, after_id: int = 0) -> Iterator[EvidenceRow]:
        """Every row after `after_id` in chain order, read a page at a time (the log may be large)."""
        while True:
            page = self.db.execute(f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id > %s ORDER BY id LIMIT {PAGE}",
                                   (after_id,)).fetchall()
            for r in page:
                yield evidence_row(r)
            if len(page) < PAGE:
                return
            after_id = int(page[-1][0])

    def frames_after(self, after_id: int, nodes: list[int], limit: int = PAGE) -> list[EvidenceRow]:
        """Frame rows of these nodes after `after_id`, in chain order (a segment owner's feed)."""
        rows = self.db.execute(
            f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id > %s AND kind = 'frame' AND node = ANY(%s) "
            f"ORDER BY id LIMIT %s", (after_id, nodes, limit)).fetchall()
        return [evidence_row(r) for r in rows]

    def evidence_rows(self, ids: list[int]) -> list[EvidenceRow]:
        """The rows with these ids (an incident's reports), in chain order; unknown ids are skipped."""
        return [evidence_row(r) for r in self.db.execute(
            f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id = ANY(%s) ORDER BY id", (list(ids),))]

    # -- health, incidents, stats --

    def health(self) -> list[NodeHealth]:
        return [NodeHealth(*r) for r in self.db.execute(
            f"SELECT {NODE_HEALTH_COLUMNS} FROM node_health ORDER BY node")]

    def frame_times(self, types: tuple[str, ...], since_us: int, until_us: int) -> list[tuple[int, int, str]]:
        """(node, received_us, type) of the frames of these types received in [since_us, until_us), in order."""
        return [(r[0], int(r[1]), r[2]) for r in self.db.execute(
            "SELECT node, received_us, type FROM evidence WHERE kind = %s AND type = ANY(%s) AND received_us >= %s "
            "AND received_us < %s ORDER BY received_us, id", (FRAME, list(types), since_us, until_us))]

    def quarantine_dropped(self) -> dict[str, int]:
        try:
            return self._dropped_rows()
        except psycopg.errors.UndefinedTable:   # a read-only open of a database older than this table
            return {}


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [repr(exc)])[0]


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from urllib.parse import urlsplit, urlunsplit
        parts = urlsplit(url)
        if parts.password:
            host = parts.hostname or ""
            netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return url
