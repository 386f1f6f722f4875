"""Connect to the configured broker: the one place where a command that talks to the broker
(frames tail, sniff, flash's birth watch) gets its address and credentials, connects, and
learns clearly when the broker cannot be reached or refuses it. The aggregator's service has
its own asyncio link (commission/mqtt.py); this is the synchronous (paho) side.

    access = access_from(config.broker, credentials=path)     # or BrokerAccess(host, port, ...)
    with Subscription(access, [("lw/+/+/+", 0)], "lw-frames").open() as sub:
        message = sub.get(timeout=1.0)                          # (topic, payload) or None

Errors: BrokerUnreachable (nothing answers), BrokerRefused (the broker said no: user,
password, or its ACL). Both say where and as whom.
"""
from __future__ import annotations

import json
import queue
import ssl
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

CONNECT_TIMEOUT_S = 10.0


class BrokerError(RuntimeError):
    """The broker could not be used; the message says where, as whom and why."""


class BrokerUnreachable(BrokerError):
    pass


class BrokerRefused(BrokerError):
    pass


@dataclass(frozen=True)
class BrokerAccess:
    """Where the broker is and who we are to it."""
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password: str = ""
    ca_file: str = ""       # the line's CA certificate: TLS, the broker checked against it

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}" + (" (TLS)" if self.ca_file else "")

    @property
    def user(self) -> str:
        return self.username or "anonymous"

    @property
    def who(self) -> str:
        return f"as user {self.username!r}" if self.username else "anonymously (no broker user configured)"


def parse_address(text: str, default_port: int = 1883) -> tuple[str, int]:
    """HOST:PORT (or HOST alone) -> (host, port); ValueError naming the text."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"broker address {text!r}: expected HOST:PORT")
    return host, int(port)


def read_credentials(path: str | Path) -> tuple[str, str]:
    """(username, password) from a JSON file like provisioned/broker/commission.json."""
    try:
        data = json.loads(Path(path).read_text())
        return str(data["username"]), str(data["password"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"broker credentials {path}: unreadable ({exc}); expected"
                         ' {"username": ..., "password": ...}') from None


def credentials_listener(path: str | Path) -> tuple[int | None, str]:
    """The commission's listener that a provisioned credentials file names: (its "port" or
    None, its "ca" certificate file or "" for plain MQTT)."""
    try:
        data = json.loads(Path(path).read_text())
        port, ca = data.get("port"), data.get("ca") or ""
    except (OSError, ValueError, AttributeError):
        return None, ""
    return (port if isinstance(port, int) and 0 < port < 65536 else None), str(ca)


def tls_context(ca_file: str | Path) -> ssl.SSLContext:
    """A client context that trusts the line's CA only and checks the broker's host name."""
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"broker CA certificate {ca_file}: unreadable ({exc})") from None


def access_from(broker_config: Any = None, broker: str | None = None, credentials: str | Path | None = None,
                username: str | None = None, password: str | None = None) -> BrokerAccess:
    """The aggregator config's [broker] (host, port, username, password), with a command's
    overrides applied: --broker HOST:PORT, --credentials FILE, --user/--password. A credentials
    file that names a port and a CA (provisioning writes the commission's listener there) sets
    them too; --broker's port wins."""
    base = broker_config
    access = BrokerAccess(getattr(base, "host", "127.0.0.1"), int(getattr(base, "port", 1883)),
                          getattr(base, "username", "") or "", getattr(base, "password", "") or "",
                          getattr(base, "ca_file", "") or "")
    if broker:
        host, port = parse_address(broker)
        access = replace(access, host=host, port=port)
    if credentials:
        user, secret = read_credentials(credentials)
        port, ca = credentials_listener(credentials)
        access = replace(access, port=access.port if broker else port or access.port, username=user,
                         password=secret, ca_file=ca or access.ca_file)
    if username:
        access = replace(access, username=username, password=password or "")
    elif password:
        access = replace(access, password=password)
    return access


def client(access: BrokerAccess, name: str):
    """A paho client set up to reach `access` (credentials; TLS with its CA), not connected."""
    import paho.mqtt.client as paho
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:8]}")
    if access.username:
        c.username_pw_set(access.username, access.password or None)
    if access.ca_file:
        c.tls_set_context(tls_context(access.ca_file))
    return c


def refusal_hint(access: BrokerAccess) -> str:
    if access.username:
        return ("check the broker user and password (and that Mosquitto was reloaded after provisioning),"
                " and that this is the commission's listener (provision's --commission-port: 8884 by"
                " default, 1884 with --no-tls): the nodes' listener admits no commission user")
    return ("this broker wants a user: set [broker] username/password in the config"
            " (provisioning writes them to provisioned/broker/commission.json) or give --credentials")


class Subscription:
    """A clean-session client connected as `access`, subscribed to `filters` [(filter, qos)],
    messages queued for `get()`. A lost connection is reconnected (and resubscribed) by paho;
    `notice` hears about it. A broker that refuses us, at first or on a reconnect, raises."""

    def __init__(self, access: BrokerAccess, filters: list[tuple[str, int]], name: str = "linewatch",
                 notice: Callable[[str], None] | None = None) -> None:
        self.access = access
        self.filters = list(filters)
        self.notice = notice or (lambda text: None)
        self._events: queue.Queue = queue.Queue()
        self._messages: queue.Queue = queue.Queue()
        self._error: BrokerError | None = None
        self._client = client(access, name)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda c, u, mid, codes, props: self._events.put(("subscribed", codes))
        self._client.on_message = lambda c, u, m: self._messages.put((m.topic, bytes(m.payload)))
        self._client.on_disconnect = self._on_disconnect
        self._started = False

    def _on_connect(self, c, userdata, flags, reason, properties=None) -> None:
        self._events.put(("connect", reason))
        if reason.is_failure:
            self._error = BrokerRefused(f"broker {self.access.where} refused the connection "
                                        f"{self.access.who}: {reason}; {refusal_hint(self.access)}")
            c.disconnect()
            return
        c.subscribe(self.filters)

    def _on_disconnect(self, c, userdata, flags, reason, properties=None) -> None:
        if reason.is_failure and self._error is None:
            self.notice(f"broker {self.access.where}: connection lost ({reason}); reconnecting")

    def open(self, timeout: float = CONNECT_TIMEOUT_S) -> "Subscription":
        try:
            self._client.connect(self.access.host, self.access.port, keepalive=30)
        except ssl.SSLError as exc:
            raise BrokerRefused(f"broker {self.access.where}: TLS failed ({exc.reason or exc}): is its"
                                f" certificate from the CA in {self.access.ca_file}, for {self.access.host}?") from None
        except OSError as exc:
            raise BrokerUnreachable(f"broker {self.access.where} unreachable: {exc}") from None
        self._client.loop_start()
        self._started = True
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.close()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        try:
            kind, value = self._events.get(timeout=timeout)
            if kind == "connect" and self._error is not None:
                raise self._error
            kind, value = self._events.get(timeout=timeout)
        except queue.Empty:
            raise BrokerUnreachable(f"broker {self.access.where} did not answer within {timeout:.0f} s") from None
        denied = [f for (f, _), code in zip(self.filters, value) if code.is_failure]
        if denied:
            raise BrokerRefused(f"broker {self.access.where} refused the subscription to {', '.join(denied)} "
                                f"{self.access.who} (not allowed by its ACL)")

    def get(self, timeout: float) -> tuple[str, bytes] | None:
        """The next message, or None after `timeout` seconds; raises once the broker refuses us."""
        if self._error is not None:
            raise self._error
        try:
            return self._messages.get(timeout=timeout)
        except queue.Empty:
            if self._error is not None:
                raise self._error
            return None

    def close(self) -> None:
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
