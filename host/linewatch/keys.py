"""The commission's master key: a file of 32 random bytes as 64 hex digits (one line, a final
newline allowed; SPEC section 4), readable by its owner only.

Node keys are derived from it (lwproto.auth); the master key itself never goes into the
database or a log line. A key file that group or others can read is refused: whoever read it
could forge reports from every node on the line.
"""
from __future__ import annotations

import hmac
import os
import re
import secrets
import stat
from pathlib import Path

from lwproto import auth

MASTER_KEY_BYTES = 32


class KeyFileError(RuntimeError):
    """The master key file is missing, malformed or too widely readable."""


def create_master_key(path: str | Path) -> bytes:
    """Write a new master key (mode 0600); refuses to overwrite an existing file."""
    path = Path(path)
    key = secrets.token_bytes(MASTER_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"master key {path}: already exists, not overwritten")
    except OSError as exc:
        raise KeyFileError(f"master key {path}: cannot create ({exc.strerror})")
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def load_master_key(path: str | Path) -> bytes:
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"master key {path}: no such file (create one with `linewatch nodes init-key`)")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"master key {path}: group or others can access it (mode {stat.S_IMODE(mode):04o});"
                           f" run `chmod 600 {path}`")
    try:
        text = path.read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"master key {path}: cannot read ({exc})")
    if not re.fullmatch(r"[0-9a-fA-F]{%d}" % (2 * MASTER_KEY_BYTES), text):
        raise KeyFileError(f"master key {path}: not {MASTER_KEY_BYTES} bytes as {2 * MASTER_KEY_BYTES} hex digits"
                           f" on one line")
    return bytes.fromhex(text)


def load_or_create(path: str | Path) -> bytes:
    return create_master_key(path) if not Path(path).exists() else load_master_key(path)


def head_key(master: bytes) -> bytes:
    """The key that signs the evidence head (linewatch.commission.evidencehead): derived from the
    master key under its own label, so it is never a node's key."""
    return hmac.digest(master, b"linewatch/evidence-head/v1", "sha256")


def derive(master: bytes, node: int) -> bytes:
    """The node's own key (what `linewatch provision` writes onto the board)."""
    return auth.derive_node_key(master, node)
