"""Who may read and who may act at the desk.

Operators are kept in a JSON file (mode 0600): a name and an scrypt hash each (hashlib.scrypt,
n=2**14, r=8, p=1, a 16-byte salt: ~16 MB and tens of milliseconds a check on a Raspberry Pi 4).
`linewatch desk add-operator NAME` adds one. A login gives a session: a random token in an
HttpOnly, SameSite=Strict cookie (Secure over TLS), ended `session_minutes` after the operator's last request (a
page's automatic refreshes, marked X-Desk-Refresh, do not count) or at logout,
kept in memory (a restart of the service logs everyone out). Every write (POST) must carry the
session's CSRF token in the X-CSRF-Token header and, when the browser sends one, an Origin of
this server. Failed logins are held back per client address and per name (LoginThrottle).
Passwords and tokens never reach a log or a page other than the session's own.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
MIN_PASSWORD = 10
COOKIE = "lw_session"


class OperatorError(ValueError):
    """The operators file or a new operator is unusable; the message says why."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **SCRYPT)
    return "scrypt$%d$%d$%d$%s$%s" % (SCRYPT["n"], SCRYPT["r"], SCRYPT["p"], salt.hex(), digest.hex())


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(bytes.fromhex(digest)), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


class Operators:
    """The operators file: {"operators": {name: {"hash": ..., "added_us": ...}}}."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OperatorError(f"operators file {self.path}: unreadable ({exc})") from None
        operators = data.get("operators") if isinstance(data, dict) else None
        if not isinstance(operators, dict):
            raise OperatorError(f"operators file {self.path}: expected {{\"operators\": {{...}}}}")
        return operators

    def add(self, name: str, password: str) -> None:
        if not (1 <= len(name) <= 40 and all(c.isalnum() or c in "._-" for c in name)):
            raise OperatorError(f"operator name {name!r}: 1-40 letters, digits, '.', '_' or '-'")
        if len(password) < MIN_PASSWORD:
            raise OperatorError(f"password too short: at least {MIN_PASSWORD} characters")
        operators = self.load()
        operators[name] = {"hash": hash_password(password), "added_us": time.time_ns() // 1000}
        self._write({"operators": operators})

    def remove(self, name: str) -> bool:
        operators = self.load()
        if operators.pop(name, None) is None:
            return False
        self._write({"operators": operators})
        return True

    def _write(self, data: dict) -> None:
        if not self.path.parent.is_dir():
            raise OperatorError(f"operators file {self.path}: folder {self.path.parent} does not exist")
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def check(self, name: str, password: str) -> bool:
        """Read the file at each login, so an operator added or removed counts at once."""
        entry = self.load().get(name)
        if not isinstance(entry, dict):
            check_password(password, hash_password("x" * MIN_PASSWORD, b"\0" * 16))   # same time either way
            return False
        return check_password(password, str(entry.get("hash", "")))


@dataclass
class Session:
    operator: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self, minutes: float, clock=time.monotonic) -> None:
        self.lifetime_s = minutes * 60
        self.clock = clock
        self._by_token: dict[str, Session] = {}

    def open(self, operator: str) -> tuple[str, Session]:
        self._expire()
        token = secrets.token_urlsafe(32)
        session = Session(operator, secrets.token_urlsafe(32), self.clock() + self.lifetime_s)
        self._by_token[token] = session
        return token, session

    def get(self, token: str | None, touch: bool = True) -> Session | None:
        """The live session of this token, or None. `touch`: the operator did something, so its
        life starts again (a page's own refresh does not: an unattended page would otherwise
        keep its session for ever)."""
        if not token:
            return None
        session = self._by_token.get(token)
        now = self.clock()
        if session is None or session.expires <= now:
            self._by_token.pop(token, None)
            return None
        if touch:
            session.expires = now + self.lifetime_s
        return session

    def close(self, token: str | None) -> None:
        self._by_token.pop(token or "", None)

    def _expire(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._by_token.items() if s.expires <= now]:
            del self._by_token[token]


class LoginThrottle:
    """Failed logins counted per client address and per operator name, whatever connection they
    come on: a guesser who opens a new connection (or a hundred at once) meets the same count.

    Each key (("addr", address), ("name", name)) allows one attempt a second; once a key has
    FREE failures in a row, each further failure doubles its wait, up to MAX_WAIT_S. An attempt
    while any of its keys waits is refused before the password is checked. A login that succeeds
    clears its address and its name; a key forgets its failures FORGET_S after the last one.
    A name capped at a minute a try keeps a known operator's name from being locked out for
    longer than that by someone else's guessing."""

    FREE = 5
    MAX_WAIT_S = 60.0
    FORGET_S = 15 * 60.0
    KEEP = 10_000                      # keys kept at most; the oldest go first beyond it

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self._keys: dict[tuple[str, str], list[float]] = {}     # key -> [failures, next allowed, last failure]

    @staticmethod
    def keys(address: str, name: str) -> tuple[tuple[str, str], ...]:
        return (("addr", address), ("name", name[:40]))

    def wait(self, address: str, name: str) -> float:
        """Seconds until this login may be tried (0: now). When 0, the attempt is admitted and its
        keys wait a second before the next one, so attempts in parallel do not all pass."""
        now = self.clock()
        self._forget(now)
        keys = self.keys(address, name)
        wait = max((self._keys[k][1] - now for k in keys if k in self._keys), default=0.0)
        if wait > 0:
            return wait
        for k in keys:
            entry = self._keys.setdefault(k, [0, now, now])
            entry[1] = now + 1.0
        return 0.0

    def failed(self, address: str, name: str) -> int:
        """Count a failure; the most failures in a row of its keys."""
        now = self.clock()
        most = 0
        for k in self.keys(address, name):
            entry = self._keys.setdefault(k, [0, now, now])
            if now - entry[2] > self.FORGET_S:
                entry[0] = 0
            entry[0] += 1
            entry[2] = now
            extra = entry[0] - self.FREE
            entry[1] = now + (1.0 if extra <= 0 else min(self.MAX_WAIT_S, 2.0 ** extra))
            most = max(most, int(entry[0]))
        return most

    def succeeded(self, address: str, name: str) -> None:
        for k in self.keys(address, name):
            self._keys.pop(k, None)

    def _forget(self, now: float) -> None:
        if len(self._keys) < 1000:
            return
        for k in [k for k, e in self._keys.items() if now - e[2] > self.FORGET_S and e[1] <= now]:
            del self._keys[k]
        if len(self._keys) > self.KEEP:
            for k in sorted(self._keys, key=lambda k: self._keys[k][2])[:len(self._keys) - self.KEEP]:
                del self._keys[k]


def client_address(peer: str | None, forwarded_for: str | None) -> str:
    """Who is logging in: the peer's address, or, when the peer is this machine (a TLS proxy in
    front of the desk, docs/desk.md), the last address the proxy put in X-Forwarded-For."""
    peer = peer or "?"
    if forwarded_for and (peer.startswith("127.") or peer == "::1"):
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last[:64]
    return peer


def csrf_ok(session: Session | None, header: str | None) -> bool:
    return session is not None and header is not None and hmac.compare_digest(session.csrf, header)
