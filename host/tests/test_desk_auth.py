"""The desk's operators and sessions: scrypt hashes in a 0600 file, `linewatch desk
add-operator`, sessions that end, CSRF tokens compared in constant time."""
from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from linewatch.desk.auth import Operators, OperatorError, Sessions, check_password, csrf_ok, hash_password


def test_passwords_are_kept_as_scrypt_hashes_only(tmp_path):
    operators = Operators(tmp_path / "ops.json")
    operators.add("ana", "a long password")
    text = (tmp_path / "ops.json").read_text()
    assert "a long password" not in text and json.loads(text)["operators"]["ana"]["hash"].startswith("scrypt$16384$8$1$")
    assert stat.S_IMODE((tmp_path / "ops.json").stat().st_mode) == 0o600
    assert operators.check("ana", "a long password") and not operators.check("ana", "a long passworD")
    assert not operators.check("bo", "a long password")
    assert check_password("x" * 12, hash_password("x" * 12)) and not check_password("x", "not a hash")
    with pytest.raises(OperatorError, match="too short"):
        operators.add("bo", "short")
    with pytest.raises(OperatorError, match="operator name"):
        operators.add("bo bo", "a long password")
    assert operators.remove("ana") and not operators.remove("ana")


def test_a_session_ends_after_its_idle_time_and_at_logout():
    now = [1000.0]
    sessions = Sessions(minutes=10, clock=lambda: now[0])
    token, session = sessions.open("ana")
    now[0] += 9 * 60
    assert sessions.get(token) is session          # used: its life starts again
    now[0] += 9 * 60
    assert sessions.get(token) is session
    now[0] += 10 * 60 + 1
    assert sessions.get(token) is None
    token, session = sessions.open("ana")
    sessions.close(token)
    assert sessions.get(token) is None and sessions.get(None) is None and sessions.get("forged") is None
    assert csrf_ok(session, session.csrf) and not csrf_ok(session, "x") and not csrf_ok(None, session.csrf)
    assert not csrf_ok(session, None)


def test_add_operator_from_the_command_line(tmp_path):
    config = tmp_path / "aggregator.toml"
    config.write_text('[store]\npath = "lw.db"\n')
    run = lambda *a, stdin="": subprocess.run([sys.executable, "-m", "linewatch.cli", "desk", "--config",  # noqa: E731
                                               str(config), *a], input=stdin, capture_output=True, text=True,
                                              timeout=60)
    added = run("add-operator", "ana", "--password-stdin", stdin="a long password\n")
    assert added.returncode == 0 and "operator ana added" in added.stdout, added.stderr
    assert "a long password" not in added.stdout + added.stderr
    assert Operators(tmp_path / "lw.db-operators.json").check("ana", "a long password")
    short = run("add-operator", "bo", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "too short" in short.stderr
    assert run("operators").stdout.split() == ["ana"]
    assert run("remove-operator", "ana").returncode == 0
    gone = run("remove-operator", "ana")
    assert gone.returncode == 2 and "no operator 'ana'" in gone.stderr


def test_a_refresh_does_not_keep_a_session_alive():
    now = [1000.0]
    sessions = Sessions(minutes=10, clock=lambda: now[0])
    token, session = sessions.open("ana")
    now[0] += 9 * 60
    assert sessions.get(token, touch=False) is session       # still live, but its life is not extended
    now[0] += 2 * 60
    assert sessions.get(token, touch=False) is None
