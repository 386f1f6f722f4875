"""The signed evidence head: how many rows the evidence log held and the hash of the last one,
signed under the commission's key, and published outside the database.

The hash chain shows that no row was changed, inserted or removed *before* the last one; it
cannot show that the newest rows were removed, nor that someone rebuilt the chain after an
edit (the hashes are plain SHA-256, anyone can recompute them). A head published at an
interval and copied elsewhere pins the log: a later `evidence verify` against it finds a log
with fewer rows (truncated) or a different hash at that row (rewritten). Who must hold what
for that to mean something: docs/reliability.md, "The evidence head".

Store-independent: made from the Store interface only (last_evidence_id, evidence), so the
SQLite and PostgreSQL backends publish the same heads.

Format: one JSON object (the file and the retained MQTT message hold the same text):
    {"linewatch_evidence_head": 1, "rows": N, "hash": "<row N's hash, hex>", "made_us": T,
     "made_utc": "...", "signature": "<HMAC-SHA256(head key, signed_bytes), hex>"}
signed_bytes = b"linewatch evidence head v1|<rows>|<hash hex>|<made_us>"; the head key is
derived from the master key (linewatch.keys.head_key).
"""
from __future__ import annotations

import datetime
import hmac
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from linewatch import keys
from linewatch.commission.store import GENESIS, Store

VERSION = 1


class HeadError(ValueError):
    """A head that cannot be read (not JSON, a field missing or of the wrong kind)."""


@dataclass(frozen=True)
class Head:
    rows: int
    hash: bytes
    made_us: int
    signature: bytes

    @property
    def made_utc(self) -> str:
        return datetime.datetime.fromtimestamp(self.made_us / 1e6, datetime.timezone.utc) \
            .strftime("%Y-%m-%d %H:%M:%S UTC")

    def describe(self) -> str:
        return f"the signed head of {self.made_utc} ({row_count(self.rows)})"


def row_count(n: int) -> str:
    return "1 row" if n == 1 else f"{n} rows"


def signed_bytes(rows: int, hash_: bytes, made_us: int) -> bytes:
    return b"linewatch evidence head v%d|%d|%s|%d" % (VERSION, rows, hash_.hex().encode(), made_us)


def make(rows: int, hash_: bytes, made_us: int, master: bytes) -> Head:
    return Head(rows, hash_, made_us, hmac.digest(keys.head_key(master), signed_bytes(rows, hash_, made_us),
                                                  "sha256"))


def signature_ok(head: Head, master: bytes) -> bool:
    expected = hmac.digest(keys.head_key(master), signed_bytes(head.rows, head.hash, head.made_us), "sha256")
    return hmac.compare_digest(expected, head.signature)


def from_store(store: Store, master: bytes, made_us: int) -> Head:
    """The head of the log as committed now."""
    rows = store.last_evidence_id()
    last = next(iter(store.evidence(after_id=rows - 1)), None) if rows else None
    return make(rows, last.hash if last is not None else GENESIS, made_us, master)


def dumps(head: Head) -> str:
    return json.dumps({"linewatch_evidence_head": VERSION, "rows": head.rows, "hash": head.hash.hex(),
                       "made_us": head.made_us, "made_utc": head.made_utc,
                       "signature": head.signature.hex()}, sort_keys=True) + "\n"


def parse(text: str | bytes) -> Head:
    try:
        data = json.loads(text)
        if data.get("linewatch_evidence_head") != VERSION:
            raise HeadError("not a version %d evidence head" % VERSION)
        rows, made_us = data["rows"], data["made_us"]
        if not (isinstance(rows, int) and isinstance(made_us, int) and rows >= 0):
            raise HeadError("rows and made_us must be whole numbers")
        head = Head(rows, bytes.fromhex(data["hash"]), made_us, bytes.fromhex(data["signature"]))
    except HeadError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HeadError(f"not an evidence head ({exc.__class__.__name__}: {exc})") from None
    if len(head.hash) != 32 or len(head.signature) != 32:
        raise HeadError("hash and signature must be 32 bytes each")
    return head


def read(path: str | Path) -> Head:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise HeadError(f"evidence head {path}: cannot read ({exc})") from None
    try:
        return parse(text)
    except HeadError as exc:
        raise HeadError(f"evidence head {path}: {exc}") from None


def write(path: str | Path, head: Head) -> None:
    """Atomically (temporary file, fsync, rename): a reader never sees half a head, and a
    power cut leaves the previous head or this one."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dumps(head))
            f.flush()
            os.fsync(f.fileno())
        os.replace(name, path)
    except BaseException:
        if os.path.exists(name):
            os.unlink(name)
        raise


class Publisher:
    """The service's side: a new head whenever rows were added since the last one, written to
    the head file and handed to `publish(text)` (retained on the broker). A head that cannot be
    written is logged once per cause, never fatal: the log itself is what must be kept."""

    def __init__(self, store: Store, master: bytes, path: str | None, publish, log) -> None:
        self.store, self.master, self.path = store, master, path
        self._publish, self._log = publish, log
        self.last: Head | None = None
        self._failed: str | None = None

    def tick(self, now_us: int, force: bool = False) -> Head | None:
        """Make, write and publish the head if the log grew (or `force`); the head, or None."""
        rows = self.store.last_evidence_id()
        if self.last is not None and rows == self.last.rows and not force:
            return None
        head = from_store(self.store, self.master, now_us)
        self.last = head
        if self.path:
            try:
                write(self.path, head)
                self._failed = None
            except OSError as exc:
                if self._failed != str(exc):
                    self._log.warning("evidence head not written to %s: %s (published on the broker still)",
                                      self.path, exc)
                self._failed = str(exc)
        self._publish(dumps(head).encode())
        return head
