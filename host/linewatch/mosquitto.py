"""A private Mosquitto on a free loopback port, started and always torn down by the caller.

The machine may run its own broker on 1883; tests never depend on it.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class BrokerError(RuntimeError):
    pass


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BrokerError("mosquitto not found: install it (Debian: apt-get install mosquitto) or run `make setup`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


class Mosquitto:
    """One broker process. `stop()`/`start()` simulate an outage on the same port.

    With `persistence=True` the broker keeps sessions and queued QoS 1 messages across a
    stop/start, like a production broker with `persistence true`.

    `listeners`: the listener and security lines of a generated configuration (the text of
    provisioning's mosquitto.conf) in place of one anonymous loopback listener; `port` is then
    one of its listeners, the one start() waits for.
    """

    def __init__(self, port: int | None = None, persistence: bool = True, extra_config: str = "",
                 workdir: Path | None = None, allow_anonymous: bool = True, listeners: str | None = None):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="lw-mosquitto-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)   # the `mosquitto` fixture passes a new path
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        head = [listeners] if listeners else [f"listener {self.port} 127.0.0.1",
                                              f"allow_anonymous {'true' if allow_anonymous else 'false'}"]
        lines = [
            *head,
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            "set_tcp_nodelay true",      # as the commission's broker is set up (docs/field-guide.md)
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0 and "\nuser " not in "\n" + extra_config:
            # Started as root, Mosquitto switches to the user `mosquitto`, which cannot write in
            # a private temporary folder: no log, and with persistence no database at all (a
            # restart would silently lose every session). Stay who started it.
            lines.append("user root")
        self.config_path.write_text("\n".join(lines) + "\n" + extra_config)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> "Mosquitto":
        if self.process and self.process.poll() is None:
            return self
        self.process = subprocess.Popen(
            [find_mosquitto(), "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_for_port(self.host, self.port)
        except BrokerError:
            self.stop()
            log = self.log_path.read_text() if self.log_path.exists() else ""
            raise BrokerError(f"mosquitto did not start on port {self.port}: {log[-2000:]}")
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM), so a persistent broker saves its queue like a real restart."""
        if not self.process:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut: no goodbye, nothing saved since the last autosave
        (with persistence), the whole session and its queue gone (without)."""
        if not self.process:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
