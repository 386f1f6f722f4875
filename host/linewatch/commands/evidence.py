"""`linewatch evidence verify`: re-check the hash chain and every frame's tag.

The chain shows that no row was changed, inserted or removed since it was written; the tag
shows that the node (holder of its key) made the frame. Someone with write access to the DB
could rebuild the whole chain, but not the tags: so both are checked, and the columns of each
frame row are compared with what its raw bytes say.
"""
from __future__ import annotations

import sys

from lwproto import frame as wire
from lwproto.errors import ProtocolError
from linewatch import keys
from linewatch.commission import config as cfg
from linewatch.keys import KeyFileError
from linewatch.commission.store import FRAME, GENESIS, EvidenceRow, StoreError, open_store


def register(sub) -> None:
    p = sub.add_parser("evidence", help="the evidence log")
    cfg.add_arguments(p)
    ev = p.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    ev.add_parser("verify", help="re-check the hash chain and every tag").set_defaults(func=cmd_verify)


def check_row(row: EvidenceRow, prev_hash: bytes, key_of) -> str | None:
    """What is wrong with this row, or None."""
    if row.prev_hash != prev_hash:
        return "does not follow the previous row (prev_hash differs: a row was removed or inserted)"
    if row.digest(prev_hash) != row.hash:
        return "content does not match its hash (the row was changed)"
    if row.kind != FRAME:
        return None
    try:
        frame = wire.decode(row.raw, key_of(row.node))
    except ProtocolError as exc:
        return f"frame does not verify: {exc}"
    if (frame.node, frame.boot, frame.seq, frame.type_name()) != (row.node, row.boot, row.seq, row.type):
        return "columns differ from the frame's own bytes"
    return None


def verify(store, master: bytes) -> tuple[int, tuple[int, str] | None]:
    """(rows checked, (first bad row id, what is wrong) or None)."""
    cache: dict[int, bytes] = {}

    def key_of(node: int) -> bytes:
        if node not in cache:
            cache[node] = keys.derive(master, node)
        return cache[node]

    prev = GENESIS
    count = 0
    expected_id = 1
    for row in store.evidence():
        count += 1
        if row.id != expected_id:
            return count, (expected_id, f"row {expected_id} is missing (next row is {row.id})")
        problem = check_row(row, prev, key_of)
        if problem:
            return count, (row.id, problem)
        prev = row.hash
        expected_id += 1
    return count, None


def cmd_verify(args) -> int:
    try:
        config = cfg.from_args(args)
        master = keys.load_master_key(config.keys.master_key_file)
        store = open_store(config.store.target, readonly=True)
    except (cfg.ConfigError, KeyFileError, StoreError) as exc:
        print(f"linewatch evidence verify: {exc}", file=sys.stderr)
        return 2
    try:
        count, bad = verify(store, master)
    finally:
        store.close()
    if bad:
        print(f"evidence: BROKEN at row {bad[0]}: {bad[1]} ({count} rows read)")
        return 1
    print(f"evidence: OK, {count} rows, chain and every tag verified")
    return 0
