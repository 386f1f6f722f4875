"""The reads both stores answer with the same SQL (store_sqlite.py, store_postgres.py), written
once. Statements use `?` for a parameter; a store whose driver wants another mark (psycopg's
`%s`) says so in PARAM. Values pass through int() where PostgreSQL's driver may hand back
another type (SUM over BIGINT is NUMERIC), and through bytes() where SQLite may hand back a
memoryview; what differs between the engines (appending to the chain, paging, lists of ids)
stays in each store.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from linewatch.commission.store import (
    COMMISSION,
    FRAME,
    GENESIS,
    EvidenceRow,
    HealthChange,
    NodeRecord,
    Refusal,
    canonical,
)

EVIDENCE_COLUMNS = "id, kind, type, node, boot, seq, topic, received_us, raw, verified, note, prev_hash, hash"


def blob(value: Any) -> Any:
    """bytes for a memoryview; anything else as stored (a blob column holding text, written by an
    edit outside the service, stays text for `evidence verify` to name)."""
    return bytes(value) if isinstance(value, memoryview) else value


def evidence_row(r: tuple) -> EvidenceRow:
    """A row of EVIDENCE_COLUMNS, its values as stored (never converted: `evidence verify` names a
    value of the wrong type rather than fail on it)."""
    return EvidenceRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], blob(r[8]), r[9], r[10], blob(r[11]),
                       blob(r[12]))


def chain(head: tuple | None, evidence: list[EvidenceRow]) -> list[tuple]:
    """The rows to append after the chain's head (its (id, hash) row, None for an empty log):
    each with its id, previous hash and hash."""
    last_id, last_hash = (int(head[0]), bytes(head[1])) if head else (0, GENESIS)
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


class SqlReads:
    """Mixed into a store that has `self.db`, a connection whose execute() returns a cursor."""

    PARAM = "?"

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self.PARAM != "?":
            sql = sql.replace("?", self.PARAM)
        return self.db.execute(sql, args).fetchall()   # type: ignore[attr-defined]

    def _one(self, sql: str, args: tuple = ()) -> tuple | None:
        rows = self._rows(sql, args)
        return rows[0] if rows else None

    # -- registry --

    def node_get(self, node_id: int) -> NodeRecord | None:
        row = self._one("SELECT id, segment, lat, lon, alt_m, added_us FROM nodes WHERE id=?", (node_id,))
        return NodeRecord(*row) if row else None

    def nodes(self) -> list[NodeRecord]:
        return [NodeRecord(*r) for r in self._rows("SELECT id, segment, lat, lon, alt_m, added_us FROM nodes "
                                                   "ORDER BY id")]

    # -- evidence --

    def last_evidence_id(self) -> int:
        return int(self._rows("SELECT COALESCE(MAX(id), 0) FROM evidence")[0][0])

    def evidence_id_at(self, received_us: int) -> int:
        """The last evidence id received before `received_us` (where a replay window starts)."""
        return int(self._rows("SELECT COALESCE(MAX(id), 0) FROM evidence WHERE received_us < ?", (received_us,))[0][0])

    def stream_seqs(self, node: int, boot: int) -> list[int]:
        return [int(r[0]) for r in self._rows(
            "SELECT seq FROM evidence WHERE node=? AND boot=? AND kind=? AND type <> 'death' ORDER BY seq",
            (node, boot, FRAME))]

    def recent_boots(self, node: int, count: int) -> list[int]:
        return sorted(r[0] for r in self._rows(
            "SELECT DISTINCT boot FROM evidence WHERE node=? AND kind=? ORDER BY boot DESC LIMIT ?",
            (node, FRAME, count)))

    def lost_ranges(self) -> list[tuple[int, int, int, int]]:
        out = []
        for node, note in self._rows("SELECT node, note FROM evidence WHERE kind=? AND type='lost' ORDER BY id",
                                     (COMMISSION,)):
            entry = json.loads(note)
            out.append((node, entry["boot"], entry["first_seq"], entry["last_seq"]))
        return out

    def last_birth(self, node: int) -> tuple[int, int] | None:
        row = self._one("SELECT boot, seq FROM evidence WHERE node=? AND kind=? AND type='birth' "
                        "ORDER BY boot DESC, seq DESC LIMIT 1", (node, FRAME))
        return (row[0], int(row[1])) if row else None

    def deaths(self, node: int) -> list[tuple[int, int]]:
        return [(r[0], int(r[1])) for r in self._rows(
            "SELECT boot, seq FROM evidence WHERE node=? AND kind=? AND type='death' ORDER BY id", (node, FRAME))]

    # `kind = 'commission'` written out, not a parameter: only then do the engines use the partial
    # index evidence_commission (SQLite proves a partial index's WHERE from the statement's text)
    COMMISSION_ROWS = f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE kind = '{COMMISSION}' AND type=? "

    def commission_entries(self, entry_type: str, node: int | None = None, limit: int = 100) -> list[EvidenceRow]:
        where, args = ("AND node=? ", (node,)) if node is not None else ("", ())
        return [evidence_row(r) for r in self._rows(
            f"{self.COMMISSION_ROWS}{where}ORDER BY id DESC LIMIT ?", (entry_type, *args, limit))]

    def incident_judgements(self, incident_id: str) -> list[EvidenceRow]:
        """The incident_status entries of this incident, in chain order. Their note is the sorted
        JSON that commission_entry writes, so it begins with the incident's id: matched by that
        prefix among the judgements alone (the index), then checked whole."""
        prefix = json.dumps({"incident": incident_id})[:-1] + ", "
        rows = self._rows(f"{self.COMMISSION_ROWS}AND substr(note, 1, ?) = ? ORDER BY id",
                          ("incident_status", len(prefix), prefix))
        return [e for e in map(evidence_row, rows) if json.loads(e.note).get("incident") == incident_id]

    # -- health, incidents, stats --

    def health_changes(self, since_us: int, until_us: int) -> list[HealthChange]:
        """Node state changes made at or after `since_us` and before `until_us`, in order."""
        return [HealthChange(r[0], int(r[1]), r[2], r[3], r[4]) for r in self._rows(
            "SELECT node, at_us, old, new, why FROM health_changes WHERE at_us >= ? AND at_us < ? ORDER BY at_us, id",
            (since_us, until_us))]

    def node_health_changes(self, node: int, limit: int = 100) -> list[HealthChange]:
        return [HealthChange(r[0], int(r[1]), r[2], r[3], r[4]) for r in self._rows(
            "SELECT node, at_us, old, new, why FROM health_changes WHERE node=? ORDER BY id DESC LIMIT ?",
            (node, limit))]

    def incidents(self) -> list[tuple[str, str, int, str]]:
        return [(r[0], r[1], int(r[2]), r[3]) for r in self._rows(
            "SELECT id, status, updated_us, body FROM incidents ORDER BY updated_us, id")]

    def last_incident_id(self) -> str | None:
        """The highest numbered incident id stored (I-000123: the longest, then the greatest)."""
        rows = self._rows("SELECT id FROM incidents WHERE id LIKE ? ORDER BY LENGTH(id) DESC, id DESC LIMIT 50", ("I-%",))
        return next((r[0] for r in rows if r[0][2:].isdigit()), None)

    def incident_get(self, incident_id: str) -> tuple[str, str, int, str] | None:
        row = self._one("SELECT id, status, updated_us, body FROM incidents WHERE id=?", (incident_id,))
        return (row[0], row[1], int(row[2]), row[3]) if row else None

    def counts_by_type(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self._rows(
            "SELECT type, COUNT(*) FROM evidence WHERE kind=? GROUP BY type", (FRAME,))}

    def frames_since(self, since_us: int) -> int:
        return int(self._rows("SELECT COUNT(*) FROM evidence WHERE kind=? AND received_us >= ?",
                              (FRAME, since_us))[0][0])

    def refusals_by_reason(self) -> dict[str, int]:
        out = {r[0]: int(r[1]) for r in self._rows("SELECT reason, COUNT(*) FROM quarantine GROUP BY reason")}
        for reason, n in self.quarantine_dropped().items():
            out[reason] = out.get(reason, 0) + n
        return out

    def quarantine_counts(self) -> list[tuple[str, str, int]]:
        return [(r[0], r[1], int(r[2])) for r in self._rows(
            "SELECT reason, topic, COUNT(*) FROM quarantine GROUP BY reason, topic")]

    def quarantine_dropped(self) -> dict[str, int]:
        raise NotImplementedError   # each engine says how an older database without the table reads

    def _dropped_rows(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self._rows(
            "SELECT reason, SUM(count) FROM quarantine_dropped GROUP BY reason")}

    def refusals(self, limit: int = 100) -> list[Refusal]:
        return [Refusal(int(r[0]), r[1], blob(r[2]), r[3], r[4], r[5]) for r in self._rows(
            "SELECT received_us, topic, raw, reason, detail, node FROM quarantine ORDER BY id DESC LIMIT ?",
            (limit,))]
