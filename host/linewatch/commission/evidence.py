"""The evidence log's own side: rows the commission writes itself, its signed state frame, and
checking the log (`check`: the hash chain, every frame's tag, and the signed heads published
meanwhile; `statement`: the one sentence a report gives).

The chain shows that no row was changed, inserted or removed before the last one; the tag
shows that the node (holder of its key) made the frame; a signed head (evidencehead.py) shows
that the newest rows were not removed and that nobody rebuilt the chain after an edit. Only
the Store interface is used: the same checks hold on SQLite and PostgreSQL.
"""
from __future__ import annotations

import json
import os
import struct
import time
from dataclasses import dataclass
from typing import Any

from lwproto import const
from lwproto import frame as wire
from lwproto.errors import ProtocolError

from linewatch import keys
from linewatch.commission import evidencehead
from linewatch.commission.evidencehead import Head
from linewatch.commission.store import COMMISSION, FRAME, GENESIS, EvidenceRow, Store


def now_us() -> int:
    return time.time_ns() // 1000


def commission_entry(entry_type: str, node: int, content: dict[str, Any], who: str = "aggregator",
                     at_us: int | None = None) -> EvidenceRow:
    """An evidence row written by the commission itself (lost range, incident status ...)."""
    return EvidenceRow(0, COMMISSION, entry_type, node, 0, 0, "", now_us() if at_us is None else at_us, b"",
                       who, json.dumps(content, sort_keys=True))


def state_frame(master: bytes, boot: int, seq: int, state: int) -> bytes:
    """The retained commission state frame (node 0, tagged with node 0's derived key)."""
    return wire.encode(keys.derive(master, const.COMMISSION_NODE), const.STATE, const.COMMISSION_NODE,
                       boot & 0xFFFF, seq, now_us(), const.CLOCK_NTP, 1000, {"state": state})


# -- checking the log: the chain, every tag, and the signed heads published meanwhile --

ROW_TYPES = (int, str, str, int, int, int, str, int, bytes, str, str, bytes, bytes)   # EvidenceRow's fields


@dataclass(frozen=True)
class HeadCheck:
    source: str                 # where the head came from (a file, the broker)
    head: Head
    problem: str | None         # None: the log matches it


@dataclass(frozen=True)
class Verdict:
    rows: int                                   # rows read
    problem: tuple[int, str] | None             # (first bad row id, what is wrong)
    heads: tuple[HeadCheck, ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None and all(h.problem is None for h in self.heads)


def verify(store: Store, master: bytes) -> tuple[int, tuple[int, str] | None]:
    """(rows checked, (first bad row id, what is wrong) or None): the chain and every tag."""
    verdict = check(store, master)
    return verdict.rows, verdict.problem


def check(store: Store, master: bytes, heads: list[tuple[str, Head]] = ()) -> Verdict:
    """The chain and every tag, then each signed head (source, head) against the log."""
    key_of = _key_cache(master)
    wanted = {head.rows for _, head in heads}
    hashes: dict[int, bytes] = {0: GENESIS}
    prev, count, expected_id, problem = GENESIS, 0, 1, None
    rows = iter(store.evidence())
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except Exception as exc:   # a value the driver cannot even read (bad UTF-8 in a text column)
            problem = (expected_id, f"unreadable ({exc.__class__.__name__}: {exc})")
            break
        count += 1
        if row.id != expected_id:
            problem = (expected_id, f"row {expected_id} is missing (next row is {row.id})")
            break
        what = check_row(row, prev, key_of)
        if what:
            problem = (expected_id, what)
            break
        prev = row.hash
        if row.id in wanted:
            hashes[row.id] = row.hash
        expected_id += 1
    good_rows = expected_id - 1
    return Verdict(count, problem, tuple(HeadCheck(source, head, _head_problem(head, master, hashes, good_rows,
                                                                               problem))
                                         for source, head in heads))


def _head_problem(head: Head, master: bytes, hashes: dict[int, bytes], good_rows: int,
                  broken: tuple[int, str] | None) -> str | None:
    if not evidencehead.signature_ok(head, master):
        return f"{head.describe()}: signature does not verify (not made with this master key, or edited)"
    if head.rows in hashes:
        if hashes[head.rows] != head.hash:
            return (f"row {head.rows} differs from {head.describe()}: rows up to it were rewritten and the chain "
                    f"rebuilt")
        return None
    if broken is not None:
        return f"{head.describe()}: not checked, the chain breaks at row {broken[0]} first"
    return f"truncated: {head.describe()} names {evidencehead.row_count(head.rows)}, the log holds {good_rows}"


def check_row(row: EvidenceRow, prev_hash: bytes, key_of) -> str | None:
    """What is wrong with this row, or None."""
    for name, value, kind in zip(EvidenceRow._fields, row, ROW_TYPES):
        if type(value) is not kind:
            return f"column {name} holds {type(value).__name__} {value!r:.40}, not {kind.__name__}"
    if row.prev_hash != prev_hash:
        return "does not follow the previous row (prev_hash differs: a row was removed or inserted)"
    try:
        digest = row.digest(prev_hash)
    except (ValueError, OverflowError, struct.error) as exc:   # a number too big for its column
        return f"content cannot be hashed ({exc})"
    if digest != row.hash:
        return "content does not match its hash (the row was changed)"
    if row.kind != FRAME:
        return None
    try:
        frame = wire.decode(row.raw, key_of(row.node))
    except ProtocolError as exc:
        return f"frame does not verify: {exc}"
    except (ValueError, OverflowError) as exc:
        return f"frame cannot be checked ({exc})"
    if (frame.node, frame.boot, frame.seq, frame.type_name()) != (row.node, row.boot, row.seq, row.type):
        return "columns differ from the frame's own bytes"
    return None


def _key_cache(master: bytes):
    cache: dict[int, bytes] = {}

    def key_of(node: int) -> bytes:
        key = cache.get(node)
        if key is None:
            key = cache[node] = keys.derive(master, node)
        return key
    return key_of


def describe(verdict: Verdict) -> str:
    """The verdict in the operator's words, one paragraph."""
    if verdict.problem is not None:
        row, what = verdict.problem
        text = f"evidence: BROKEN at row {row}: {what} ({evidencehead.row_count(verdict.rows)} read)"
    else:
        text = f"evidence: OK, {evidencehead.row_count(verdict.rows)}, chain and every tag verified"
    for h in verdict.heads:
        text += (f"\nevidence: {h.source}: {h.problem}" if h.problem else
                 f"\nevidence: {h.source}: {h.head.describe()} matches")
    if not verdict.heads:
        text += ("\nevidence: no signed head checked: a removal of the newest rows, or a rewrite with the chain "
                 "rebuilt, would not show (docs/reliability.md)")
    return text


@dataclass(frozen=True)
class Statement:
    ok: bool           # the chain, every tag and every head checked hold
    head_checked: bool
    text: str          # one sentence for a report


def statement(store: Store, master: bytes, head_file: str | None = None) -> Statement:
    """For the daily report: does the evidence log hold, against its last published head (the
    configured head file, `EvidenceConfig.head_path`)? One call, one sentence."""
    heads: list[tuple[str, Head]] = []
    if head_file and os.path.exists(head_file):
        try:
            heads.append((head_file, evidencehead.read(head_file)))
        except evidencehead.HeadError as exc:
            return Statement(False, False, f"The evidence log was not checked against its signed head: {exc}.")
    verdict = check(store, master, heads)
    if verdict.problem is not None:
        return Statement(False, bool(heads), f"The evidence log does NOT verify: row {verdict.problem[0]}: "
                                             f"{verdict.problem[1]}.")
    bad = [h.problem for h in verdict.heads if h.problem]
    if bad:
        return Statement(False, True, f"The evidence log does NOT match its signed head: {bad[0]}.")
    if heads:
        return Statement(True, True, f"The evidence log verifies: {verdict.rows} rows, every tag checked, and "
                                     f"{heads[0][1].describe()} matches.")
    return Statement(True, False, f"The evidence log's chain verifies ({verdict.rows} rows, every tag checked), "
                                  f"but no signed head was at hand to check it against.")
