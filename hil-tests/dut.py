"""The device under test of the hil suite, virtual or real, behind one interface, so the same
tests run on both:

    dut.configure(audio, **feed_options) -> config     dut.start(wait=True)    dut.stop()
    dut.console.wait_for(regex) / .count(regex) / .lines
    dut.node, dut.segment, dut.config, dut.board_name, dut.rate

- `VirtualDut`: the MicroPython unix port running the firmware (build --target unix) with
  hal/unix; its sample feed is a file the test synthesizes; stop() kills it (power off).
- `SerialDut`: a real board on a pyserial URL (/dev/ttyUSB0, rfc2217://..., loop://). The
  node runs from the board's own main.py and config.json (put there by `linewatch flash`);
  start() resets it on the console (Ctrl-D soft reset, or `machine.reset()` typed) and reads
  the console lines; stop() only stops reading (a board cannot be powered off from here). Its
  microphone is live, so what a test puts into `audio` is not heard.

What a test needs beyond a console and a broker is declared with `@pytest.mark.needs(...)`;
`skip_reason` says why a DUT cannot give it (NEEDS lists the reasons).
"""
from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# what a test may need -> why a real board over serial cannot give it (what it would take)
NEEDS = {
    "feed": "needs a synthesized sample feed (impulses at known sample times); a real board hears its"
            " live microphone. Run it on the virtual board (no --port); on hardware it needs an"
            " impulse source at a known time next to the microphone (not automated)",
    "broker_control": "stops and restarts the broker to make an outage; with --port the board talks to"
                      " the broker in its own config, which the suite does not own",
}
# a soft reset from the friendly REPL: interrupt main.py, leave a raw REPL, Ctrl-D runs main.py again
SOFT_RESET = b"\r\x03\x03\x02\x04"
HARD_RESET = b"\r\x03\x03\r\nimport machine\r\nmachine.reset()\r\n"


def skip_reason(needs: tuple[str, ...], serial: bool) -> str | None:
    """Why this test cannot run on the DUT (None: it can). Only a real board lacks anything."""
    if not serial:
        return None
    missing = [NEEDS[n] for n in needs if n in NEEDS]
    unknown = [n for n in needs if n not in NEEDS]
    if unknown:
        raise ValueError("unknown hil need(s) %s; known: %s" % (", ".join(unknown), ", ".join(NEEDS)))
    return "real board: " + "; ".join(missing) if missing else None


@dataclass(frozen=True)
class Target:
    """The node and the broker the commission's side of a test talks to."""
    node: int
    segment: int
    key: bytes
    broker_host: str
    broker_port: int
    username: str | None = None
    password: str | None = None
    downlink_boot: int = 1        # the commission's (boot, seq) on downlinks
    first_counter: int = 1

    @classmethod
    def real_board(cls, config: dict, broker: str | None = None, credentials: dict | None = None) -> "Target":
        """From the board's config.json; `broker` "host:port" as seen from here. The board keeps
        its last command counter across reboots, so downlink counters start from the clock."""
        host, port = config["broker"]["host"], int(config["broker"].get("port", 1883))
        if broker:
            host, _, p = broker.rpartition(":")
            port = int(p)
        creds = credentials or {}
        return cls(int(config["node"]), int(config["segment"]), bytes.fromhex(config["key"]), host, port,
                   creds.get("username"), creds.get("password"), downlink_boot=1,
                   first_counter=(int(time.time()) - 1_750_000_000) * 16)


def load_board_config(path: str | None) -> dict:
    if not path:
        raise ValueError("--port needs --board-config: the config.json flashed on that board"
                         " (provisioned/node-XXXX.json), for its node id, key and broker")
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError("--board-config %s: unreadable (%s)" % (path, exc))
    for field in ("node", "segment", "key", "broker"):
        if field not in config:
            raise ValueError("--board-config %s has no %r: is it a board config?" % (path, field))
    return config


class Console:
    """Lines from a board's console, collected by a thread; `wait_for` a regex."""

    def __init__(self):
        self.lines: list[str] = []
        self._new = threading.Condition()

    def feed(self, line: str) -> None:
        with self._new:
            self.lines.append(line.rstrip())
            self._new.notify_all()

    def wait_for(self, pattern: str, timeout: float = 20, after: int = 0) -> re.Match:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = after
        with self._new:
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no console line matching %r within %.0f s; last lines:\n%s"
                                         % (pattern, timeout, "\n".join(self.lines[-25:])))
                self._new.wait(left)

    def count(self, pattern: str) -> int:
        rx = re.compile(pattern)
        return sum(1 for line in list(self.lines) if rx.search(line))


class _Dut:
    config: dict
    console: Console
    serial = False

    @property
    def node(self) -> int:
        return int(self.config["node"])

    @property
    def segment(self) -> int:
        return int(self.config["segment"])

    @property
    def board_name(self) -> str:
        return self.config.get("board") or "?"

    @property
    def rate(self) -> int:
        return int(self.config.get("audio", {}).get("rate_hz", 16000))

    def wait_self_test(self, timeout: float, after: int = 0) -> str:
        line = self.console.wait_for(r"linewatch node 0x[0-9a-f]{4} self-test (ok|FAILED)", timeout, after).string
        assert "self-test ok" in line, self.console.lines[-5:]
        assert line.strip().startswith("linewatch node 0x%04x " % self.node), \
            "the board is another node: %s" % line
        return line


class VirtualDut(_Dut):
    """One run of the firmware on the unix port. Storage survives `stop()` + `start()` (a reboot)."""

    def __init__(self, build: Path, workdir: Path, heap: str, base_config: dict, command,
                 start_us: int | None = None):
        self.build = build
        self.workdir = workdir
        self.start_us = start_us          # the virtual clock's sample 0 on fast feeds
        self.heap = heap
        self.base_config = base_config
        self.command = command            # linewatch.testing.micropython: command(), environment()
        self.process: subprocess.Popen | None = None
        self.console = Console()
        self.config: dict = dict(base_config)

    def configure(self, audio: bytes, realtime=False, heartbeat_s=1, exit_at_end=False, plays=1,
                  **extra) -> dict:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "audio.raw").write_bytes(audio)
        self.config = dict(self.base_config)
        self.config.update({
            "heartbeat_s": heartbeat_s, "storage": str(self.workdir / "flash"),
            "feed": {"audio": str(self.workdir / "audio.raw"), "realtime": realtime,
                     "start_us": self.start_us, "exit_at_end": exit_at_end, "plays": plays},
        })
        self.config.update(extra)
        (self.workdir / "config.json").write_text(json.dumps(self.config))
        return self.config

    def start(self, wait: bool = True) -> "VirtualDut":
        mark = len(self.console.lines)
        self.process = subprocess.Popen(
            self.command.command(self.build / "main.py", str(self.workdir / "config.json"), heap=self.heap),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.workdir,
            env=self.command.environment(self.build / "lib"), start_new_session=True)
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()
        if wait:
            self.wait_self_test(20, after=mark)
        return self

    def _pump(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.console.feed(line)

    def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
        if self.process:
            self.process.wait(timeout=10)
        self.process = None


class SerialDut(_Dut):
    """A real board on a pyserial URL, running what `linewatch flash` put on it."""
    serial = True

    def __init__(self, port: str, config: dict, reset: str = "soft", baudrate: int = 115200,
                 self_test_timeout: float = 60):
        from lwtools.console import SerialConsole
        if reset not in ("soft", "hard"):
            raise ValueError("reset must be 'soft' (Ctrl-D) or 'hard' (machine.reset()), not %r" % reset)
        self.port = port
        self.config = config
        self.reset_keys = SOFT_RESET if reset == "soft" else HARD_RESET
        self.self_test_timeout = self_test_timeout
        self.serial_console = SerialConsole(port, baudrate)
        self.console = Console()
        self._reader: threading.Thread | None = None
        self._stopping = threading.Event()
        self._opened = threading.Event()

    def configure(self, audio: bytes, **options) -> dict:
        """The board keeps its own config and hears its own microphone: nothing to write."""
        return self.config

    def start(self, wait: bool = True) -> "SerialDut":
        """Reset the board on its console (typed once the console is open: opening a port
        discards what was printed before) and read it; wait for this node's self-test."""
        self.stop()
        mark = len(self.console.lines)
        self._stopping.clear()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait:
            self.wait_self_test(self.self_test_timeout, after=mark)
        return self

    def _read(self) -> None:
        lines = self.serial_console.lines(24 * 3600, self.reset_keys)
        try:
            for line in lines:
                if self._stopping.is_set():
                    break
                if line is not None:
                    self.console.feed(line)
        except Exception as exc:   # the port went away for good: the test sees it on the console
            self.console.feed("hil: console on %s lost: %r" % (self.port, exc))
        finally:
            lines.close()

    def wait_exit(self, timeout: float) -> int:
        raise AssertionError("a real board does not exit; this test needs @pytest.mark.needs('feed')")

    def stop(self) -> None:
        """Stop reading the console (the board runs on)."""
        if self._reader is not None:
            self._stopping.set()
            self._reader.join(timeout=5)
            self._reader = None
