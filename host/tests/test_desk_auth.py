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


# -- logins against the real desk (aiohttp, no service: a login needs none) --

PASSWORD = "correct horse battery"


class _Desk:
    """The desk serving on a free loopback port, operator ana; each request on a new connection."""

    def __init__(self, folder):
        from linewatch.commission import config as cfg
        self.config = cfg.from_dict({"store": {"path": str(folder / "lw.db")},
                                     "desk": {"listen": "127.0.0.1:0"}})
        Operators(self.config.desk.operators_path(self.config.store)).add("ana", PASSWORD)

    async def __aenter__(self):
        from linewatch.desk.app import start_desk
        self.desk = await start_desk(self.config, b"k" * 32, None)
        self.url = self.desk.url.rstrip("/")
        return self

    async def __aexit__(self, *exc):
        await self.desk.stop()

    async def login(self, name="ana", password=PASSWORD, **headers):
        """(status, body, Set-Cookie) over a connection of its own, as a new client opens one."""
        import aiohttp
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            async with http.post(self.url + "/api/login", json={"name": name, "password": password},
                                 headers=headers) as r:
                return r.status, await r.json(), r.headers.get("Set-Cookie", ""), r.headers.get("Retry-After")


@pytest.mark.timeout(120)
async def test_failed_logins_are_held_back_per_address_and_per_name_whatever_the_connection(tmp_path):
    import asyncio
    async with _Desk(tmp_path) as desk:
        # four guesses at once, each on a connection of its own: one is checked, the rest wait
        results = await asyncio.gather(*(desk.login(password="guess number %d" % k) for k in range(4)))
        assert sorted(r[0] for r in results) == [401, 429, 429, 429], results
        refused = next(r for r in results if r[0] == 429)
        assert "too many failed logins" in refused[1]["error"] and int(refused[3]) >= 1
        # the same name from other addresses (through a proxy on this machine) meets the same count
        first, second = await asyncio.gather(desk.login(password="guess again 1", **{"X-Forwarded-For": "10.0.0.7"}),
                                             desk.login(password="guess again 2", **{"X-Forwarded-For": "10.0.0.8"}))
        assert sorted((first[0], second[0])) == [401, 429], (first, second)
        # ... and other names from one address too
        first, second = await asyncio.gather(desk.login("bo", "a long guess 1", **{"X-Forwarded-For": "10.0.0.9"}),
                                             desk.login("cy", "a long guess 2", **{"X-Forwarded-For": "10.0.0.9"}))
        assert sorted((first[0], second[0])) == [401, 429], (first, second)
        # one by one, as a person types, the sixth failure in a row makes the name wait 2 s: then even
        # the right password is refused, unchecked, on a new connection
        for _ in range(6):
            status = 429
            while status == 429:
                status, body, _, after = await desk.login(password="typed wrong")
                if status == 429:
                    await asyncio.sleep(float(after))
            assert status == 401, body
        status, body, cookie, after = await desk.login()
        assert status == 429 and not cookie and int(after) >= 1, (status, body)
        await asyncio.sleep(int(after))
        status, body, cookie, _ = await desk.login()
        assert status == 200 and "lw_session=" in cookie, body
        status, body, _, _ = await desk.login(password="one slip")      # the success cleared the count
        assert status == 401, body


def test_the_wait_doubles_after_five_failures_up_to_a_minute_and_is_forgotten():
    from linewatch.desk.auth import LoginThrottle
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    waits = []
    for _ in range(12):
        while throttle.wait("10.0.0.1", "ana") > 0:
            now[0] += 0.25
        throttle.failed("10.0.0.1", "ana")
        waits.append(throttle.wait("10.0.0.1", "ana"))
    assert waits == [1, 1, 1, 1, 1, 2, 4, 8, 16, 32, 60, 60]
    assert throttle.wait("10.0.0.2", "bo") == 0                   # others are not held back
    now[0] += LoginThrottle.FORGET_S + 61
    assert throttle.wait("10.0.0.1", "ana") == 0
    throttle.failed("10.0.0.1", "ana")
    assert throttle.wait("10.0.0.1", "ana") == 1                  # counted from one again


def test_a_proxys_address_counts_from_this_machine_only():
    from linewatch.desk.auth import client_address
    assert client_address("127.0.0.1", "203.0.113.5, 10.0.0.3") == "10.0.0.3"
    assert client_address("::1", "10.0.0.3") == "10.0.0.3"
    assert client_address("192.0.2.1", "10.0.0.3") == "192.0.2.1"
    assert client_address("192.0.2.1", None) == "192.0.2.1"


@pytest.mark.timeout(60)
async def test_the_session_cookie_is_httponly_samesite_and_secure_over_tls(tmp_path):
    async with _Desk(tmp_path) as desk:
        status, _, cookie, _ = await desk.login()
        flags = [f.strip().lower() for f in cookie.split(";")]
        assert status == 200 and "httponly" in flags and "samesite=strict" in flags and "secure" not in flags, cookie
        # behind a TLS proxy on this machine (docs/desk.md): Secure, and the https Origin is this desk's
        host = desk.url.split("://", 1)[1]
        for said in ({"X-Forwarded-Proto": "https"}, {"Forwarded": "for=10.0.0.4;proto=https"}):
            status, body, cookie, _ = await desk.login(**said, Origin="https://" + host)
            flags = [f.strip().lower() for f in cookie.split(";")]
            assert status == 200 and {"secure", "httponly", "samesite=strict"} <= set(flags), (said, cookie, body)
        status, body, _, _ = await desk.login(Origin="https://" + host)          # no proxy said so
        assert status == 403 and "cross-origin" in body["error"], body
