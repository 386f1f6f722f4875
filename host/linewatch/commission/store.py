"""Storage behind one small interface: what the aggregator writes and what operators read.

`open_store(path)` gives the SQLite implementation (store_sqlite.py), the embedded default;
`open_store("postgresql://...")` the PostgreSQL one (store_postgres.py), for several
aggregator instances sharing one database. Both pass the same suite
(host/tests/test_store.py): a method added here is added to both, with its test there; a read
whose SQL is the same on both engines is written once, in store_reads.py.
The evidence log is append-only and hash-chained: each row's hash is
sha256(previous row's hash || canonical content of the row, raw frame bytes included), so a
later edit, insertion or deletion anywhere breaks the chain from that row on.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Protocol

GENESIS = bytes(32)

# Evidence row kinds: a frame from a node, or an entry of the commission itself (a range
# given up as lost, an incident's status change, a node's health state change).
FRAME = "frame"
COMMISSION = "commission"


@dataclass(frozen=True)
class NodeRecord:
    """A node in the registry: where it stands is evidence for every fix it takes part in."""
    id: int
    segment: int
    lat: float
    lon: float
    alt_m: float = 0.0
    added_us: int = 0


class EvidenceRow(NamedTuple):   # a tuple: one is made per stored frame on the hot path
    id: int
    kind: str           # FRAME or COMMISSION
    type: str           # frame type name, or the commission entry's type ("lost", ...)
    node: int
    boot: int
    seq: int
    topic: str
    received_us: int
    raw: bytes          # frame bytes as received; empty for commission entries
    verified: str       # how a frame was verified ("tag_ok"); who made a commission entry
    note: str           # JSON: decoded fields, or the commission entry's content
    prev_hash: bytes = b""
    hash: bytes = b""

    def canonical(self) -> bytes:
        return canonical(self.id, self.kind, self.type, self.node, self.boot, self.seq, self.topic,
                         self.received_us, self.raw, self.verified, self.note)

    def digest(self, prev_hash: bytes) -> bytes:
        return hashlib.sha256(prev_hash + self.canonical()).digest()


def canonical(id: int, kind: str, type: str, node: int, boot: int, seq: int, topic: str, received_us: int,
              raw: bytes, verified: str, note: str) -> bytes:
    """The bytes a row's hash commits to: fixed-width numbers, then length-prefixed texts and raw."""
    texts = _texts.get((kind, type, topic, verified, note))
    if texts is None:
        texts = _length_prefixed(kind, type, topic, verified, note)
        if len(_texts) >= TEXTS_KEPT:
            _texts.clear()
        _texts[(kind, type, topic, verified, note)] = texts
    return b"".join((_numbers(id, node, boot, seq, received_us), texts, _length(len(raw)), raw))


_numbers = struct.Struct(">qiiqq").pack
_length = struct.Struct(">I").pack
TEXTS_KEPT = 4096
_texts: dict[tuple[str, str, str, str, str], bytes] = {}   # a frame row's texts repeat per topic


def _length_prefixed(*texts: str) -> bytes:
    out = []
    for text in texts:
        data = text.encode()
        out += (_length(len(data)), data)
    return b"".join(out)


@dataclass(frozen=True)
class Refusal:
    """A frame refused by ingest, kept in quarantine with its raw bytes."""
    received_us: int
    topic: str
    raw: bytes
    reason: str
    detail: str
    node: int = -1


@dataclass(frozen=True)
class NodeHealth:
    node: int
    state: str
    state_since_us: int
    last_seen_us: int = 0
    boot: int = 0
    battery_mv: int = 0
    temperature_c: float = 0.0
    rssi_dbm: int = 0
    queue_depth: int = 0
    clock_source: int = 0
    clock_error_us: int = 0
    firmware: str = ""
    counters: str = "{}"   # JSON: the heartbeat's counters and the commission's own per node


@dataclass(frozen=True)
class HealthChange:
    node: int
    at_us: int
    old: str
    new: str
    why: str


@dataclass
class Batch:
    """One transaction's worth of writes; the aggregator commits it before any ack goes out."""
    evidence: list[EvidenceRow] = field(default_factory=list)   # id/hash filled by the store
    refusals: list[Refusal] = field(default_factory=list)
    # Refusals counted but not kept (quarantine.py's bound): (reason, source node) -> how many
    refusals_dropped: dict[tuple[str, int], int] = field(default_factory=dict)
    health: dict[int, NodeHealth] = field(default_factory=dict)
    health_changes: list[HealthChange] = field(default_factory=list)
    incidents: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # id -> (status, at, json)
    # Frames not checked against the replay guard (several instances share the ingest, so none
    # sees a whole stream): the store refuses those already in the log as `replay`, inside
    # the transaction that appends them, and gives them the id 0.
    dedupe: bool = False

    def __bool__(self) -> bool:
        return bool(self.evidence or self.refusals or self.refusals_dropped or self.health or self.health_changes
                    or self.incidents)


def split_duplicates(evidence: list[EvidenceRow], stored: set) -> tuple[list[EvidenceRow], list[Refusal], list[bool]]:
    """Frames already in the log (`stored`: (node, boot, seq, type)) or twice in the batch become
    `replay` refusals; returns the rows kept, the refusals and, per row, whether it was kept."""
    kept, refused, mask, seen = [], [], [], set()
    for r in evidence:
        key = (r.node, r.boot, r.seq, r.type)
        duplicate = r.kind == FRAME and (key in stored or key in seen)
        mask.append(not duplicate)
        if duplicate:
            refused.append(Refusal(r.received_us, r.topic, r.raw, "replay",
                                   f"frame from node 0x{r.node:04x} boot {r.boot} seq {r.seq}: already stored", r.node))
            continue
        if r.kind == FRAME:
            seen.add(key)
        kept.append(r)
    return kept, refused, mask


def ids_in_order(rows: list[tuple], kept: list[bool] | None) -> list[int]:
    """The ids given to a batch's rows in its order; 0 for a row refused as a duplicate."""
    if kept is None:
        return [r[0] for r in rows]
    ids = iter(r[0] for r in rows)
    return [next(ids) if k else 0 for k in kept]


class StoreError(RuntimeError):
    """The database cannot be opened or written; the service stops rather than ack anything."""


class Store(Protocol):
    def close(self) -> None: ...
    def bump_boot(self) -> int: ...
    def commit(self, batch: Batch) -> list[int]: ...
    # registry
    def node_put(self, node: NodeRecord) -> None: ...
    def node_get(self, node_id: int) -> NodeRecord | None: ...
    def node_remove(self, node_id: int) -> bool: ...
    def nodes(self) -> list[NodeRecord]: ...
    # evidence
    def evidence(self, after_id: int = 0) -> Iterator[EvidenceRow]: ...
    def frames_after(self, after_id: int, nodes: list[int], limit: int = 5000) -> list[EvidenceRow]: ...
    def evidence_rows(self, ids: list[int]) -> list[EvidenceRow]: ...   # these rows, in chain order
    def last_evidence_id(self) -> int: ...
    def evidence_id_at(self, received_us: int) -> int: ...
    def stream_seqs(self, node: int, boot: int) -> list[int]: ...
    def recent_boots(self, node: int, count: int) -> list[int]: ...
    def lost_ranges(self) -> list[tuple[int, int, int, int]]: ...
    def last_birth(self, node: int) -> tuple[int, int] | None: ...
    def deaths(self, node: int) -> list[tuple[int, int]]: ...
    # health, incidents, stats
    def health(self) -> list[NodeHealth]: ...
    def health_changes(self, since_us: int, until_us: int) -> list[HealthChange]: ...   # at_us in [since, until)
    def frame_times(self, types: tuple[str, ...], since_us: int, until_us: int) -> list[tuple[int, int, str]]: ...
    def incidents(self) -> list[tuple[str, str, int, str]]: ...
    def incident_get(self, incident_id: str) -> tuple[str, str, int, str] | None: ...
    def last_incident_id(self) -> str | None: ...
    def counts_by_type(self) -> dict[str, int]: ...
    def refusals_by_reason(self) -> dict[str, int]: ...     # every refusal: kept + dropped
    def quarantine_counts(self) -> list[tuple[str, str, int]]: ...   # (reason, topic, rows kept)
    def quarantine_dropped(self) -> dict[str, int]: ...     # refusals counted but not kept, by reason
    def frames_since(self, since_us: int) -> int: ...
    # the desk's reads (linewatch.desk.views)
    def node_health_changes(self, node: int, limit: int = 100) -> list[HealthChange]: ...   # newest first
    def commission_entries(self, entry_type: str, node: int | None = None,
                           limit: int = 100) -> list[EvidenceRow]: ...   # newest first
    def incident_judgements(self, incident_id: str) -> list[EvidenceRow]: ...   # in chain order
    def refusals(self, limit: int = 100) -> list[Refusal]: ...


def open_store(target: str, synchronous: str = "FULL", readonly: bool = False) -> Store:
    """SQLite for a file path, PostgreSQL for a postgresql:// URL ([store] path / url).
    `readonly`: for commands that only read (evidence verify, stats, nodes list/status,
    incidents list/export): a missing database is a StoreError, never an empty new one, and
    every write raises StoreError."""
    if target.startswith(("postgresql://", "postgres://")):
        from linewatch.commission.store_postgres import PostgresStore
        return PostgresStore(target, synchronous, readonly)
    from linewatch.commission.store_sqlite import SQLiteStore
    return SQLiteStore(target, synchronous, readonly)
