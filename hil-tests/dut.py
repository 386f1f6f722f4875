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
  microphone is live, so what a test puts into `audio` is not heard - unless `feed_on_board`:
  then configure() copies the audio to the board's flash (`feed.raw`) and a config.json with a
  "feed" section (hal/feed.py plays it instead of the microphone) with mpremote, and restore()
  puts the board's own config.json back and removes the file.

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
            " live microphone. Give --feed-on-board to play the feed from the board's flash (copied"
            " with mpremote), or run it on the virtual board (no --port)",
    "broker_control": "stops and restarts the broker to make an outage; with --port the board talks to"
                      " the broker in its own config, which the suite does not own",
    "battery": "sets what the battery reads (the virtual board's feed battery_mv); a real board reads"
               " its own cell: test its sleep with a bench supply under power.sleep_below_mv instead",
}
# a soft reset from the friendly REPL: interrupt main.py, leave a raw REPL, Ctrl-D runs main.py again
SOFT_RESET = b"\r\x03\x03\x02\x04"
HARD_RESET = b"\r\x03\x03\r\nimport machine\r\nmachine.reset()\r\n"


def skip_reason(needs: tuple[str, ...], serial: bool, feed_on_board: bool = False) -> str | None:
    """Why this test cannot run on the DUT (None: it can). Only a real board lacks anything,
    and the feed only without `feed_on_board`."""
    unknown = [n for n in needs if n not in NEEDS]
    if unknown:
        raise ValueError("unknown hil need(s) %s; known: %s" % (", ".join(unknown), ", ".join(NEEDS)))
    if not serial:
        return None
    missing = [NEEDS[n] for n in needs if not (n == "feed" and feed_on_board)]
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
        creds = credentials or {}
        # the node's broker host; the commission's listener that provisioning wrote into the
        # credentials file (the nodes' listener admits no commission user)
        host = config["broker"]["host"]
        port = int(creds.get("port") or config["broker"].get("port", 1883))
        if broker:
            host, _, p = broker.rpartition(":")
            port = int(p)
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


def with_feed(base: dict, audio: str, start_us: int | None, realtime=False, heartbeat_s=1,
              exit_at_end=False, plays=1, battery_mv=None, **extra) -> dict:
    """A board config playing `audio` (a path as the board sees it) instead of its microphone:
    the same "feed" section on the virtual board and on a real one (firmware/README.md).
    `battery_mv`: what the virtual board's battery reads (hal/unix)."""
    config = dict(base)
    feed = {"audio": audio, "realtime": realtime, "start_us": start_us, "exit_at_end": exit_at_end,
            "plays": plays}
    if battery_mv is not None:
        feed["battery_mv"] = battery_mv
    config.update({"heartbeat_s": heartbeat_s, "feed": feed})
    config.update(extra)
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

    def restore(self) -> None:
        """Leave the board as the suite found it (after the last stop())."""

    def wait_self_test(self, timeout: float, after: int = 0) -> str:
        line = self.console.wait_for(r"linewatch node 0x[0-9a-f]{4} self-test (ok|FAILED)", timeout, after).string
        assert "self-test ok" in line, self.console.lines[-5:]
        assert line.strip().startswith("linewatch node 0x%04x " % self.node), \
            "the board is another node: %s" % line
        return line


class VirtualDut(_Dut):
    """One run of the firmware on the unix port. Storage survives `stop()` + `start()` (a reboot).

    Like a board's chip, it starts main.py again by itself when the firmware resets (exit status
    3, hal/unix) or deep-sleeps (status 4, after the sleep's length, as the RTC would wake it);
    `boots` counts the starts."""

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
        self.boots = 0
        self._stopped = threading.Event()

    def configure(self, audio: bytes, realtime=False, heartbeat_s=1, exit_at_end=False, plays=1,
                  **extra) -> dict:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "audio.raw").write_bytes(audio)
        self.config = with_feed(self.base_config, str(self.workdir / "audio.raw"), self.start_us,
                                realtime, heartbeat_s, exit_at_end, plays,
                                **dict({"storage": str(self.workdir / "flash")}, **extra))
        (self.workdir / "config.json").write_text(json.dumps(self.config))
        return self.config

    def start(self, wait: bool = True) -> "VirtualDut":
        mark = len(self.console.lines)
        self._stopped.clear()
        self._spawn()
        if wait:
            self.wait_self_test(20, after=mark)
        return self

    def _spawn(self) -> None:
        self.boots += 1
        self.process = subprocess.Popen(
            self.command.command(self.build / "main.py", str(self.workdir / "config.json"), heap=self.heap),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.workdir,
            env=self.command.environment(self.build / "lib"), start_new_session=True)
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()

    def _pump(self, process: subprocess.Popen) -> None:
        last = ""
        for line in process.stdout:
            self.console.feed(line)
            last = line
        code = process.wait()
        if self._stopped.is_set() or process is not self.process:
            return
        if code == 3:                                    # reset: the chip starts again
            self._spawn()
        elif code == 4:                                  # deep sleep: the RTC wakes it later
            m = re.search(r"deep sleep (\d+) ms", last)
            if not self._stopped.wait(int(m.group(1)) / 1000 if m else 0):
                self._spawn()

    def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        self._stopped.set()
        if self.process and self.process.poll() is None:
            self.process.kill()
        if self.process:
            self.process.wait(timeout=10)
        self.process = None


class SerialDut(_Dut):
    """A real board on a pyserial URL, running what `linewatch flash` put on it."""
    serial = True

    FEED = "feed.raw"             # the sample file on the board (relative: "/" on a board)

    def __init__(self, port: str, config: dict, reset: str = "soft", baudrate: int = 115200,
                 self_test_timeout: float = 60, feed_on_board: bool = False,
                 workdir: Path | None = None, start_us: int | None = None, remote=None):
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
        self._mark = 0
        self.feed_on_board = feed_on_board
        if feed_on_board and workdir is None:
            raise ValueError("feed_on_board needs a workdir for the files it copies")
        self.workdir = workdir
        self.start_us = start_us
        self.remote = remote              # lwtools.remote.Mpremote (made on first use)
        self.board_config: dict | None = None   # the board's own config.json, for restore()
        self.feed_seconds = 0.0

    def _mpremote(self):
        if self.remote is None:
            from lwtools.remote import Mpremote
            self.remote = Mpremote(self.port, timeout=60)
        return self.remote

    def configure(self, audio: bytes, realtime=False, heartbeat_s=1, exit_at_end=False, plays=1,
                  **extra) -> dict:
        """Without feed_on_board the board keeps its own config and hears its own microphone:
        nothing to write. With it: the audio as feed.raw and a config.json playing it, copied
        with mpremote (the board's own config.json is fetched first, for restore())."""
        if not self.feed_on_board:
            return self.config
        assert self.workdir is not None
        self.stop()                       # mpremote needs the port to itself
        self.workdir.mkdir(parents=True, exist_ok=True)
        remote = self._mpremote()
        if self.board_config is None:
            own = self.workdir / "board-config.json"
            remote.run("fs", "cp", ":config.json", str(own))
            self.board_config = json.loads(own.read_text())
            self.board_config.pop("feed", None)     # left by an interrupted run: not the board's own
        (self.workdir / self.FEED).write_bytes(audio)
        self.config = with_feed(self.board_config, self.FEED, self.start_us, realtime, heartbeat_s,
                                exit_at_end, plays, **extra)
        (self.workdir / "config.json").write_text(json.dumps(self.config))
        remote.copy([(self.workdir / self.FEED, self.FEED), (self.workdir / "config.json", "config.json")])
        self.feed_seconds = len(audio) / 2 / self.rate * max(1, plays)
        return self.config

    def restore(self) -> None:
        """The board's own config.json back and feed.raw removed (the board then sits at its
        REPL until reset: it runs no node meanwhile)."""
        if self.board_config is None:
            return
        assert self.workdir is not None
        self.stop()
        own = self.workdir / "board-config.json"
        own.write_text(json.dumps(self.board_config))
        remote = self._mpremote()
        remote.copy([(own, "config.json")])
        remote.remove([self.FEED])
        self.config = self.board_config
        self.board_config = None

    def start(self, wait: bool = True) -> "SerialDut":
        """Reset the board on its console (typed once the console is open: opening a port
        discards what was printed before) and read it; wait for this node's self-test."""
        self.stop()
        mark = self._mark = len(self.console.lines)
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
        """With a feed on board that ends the node (exit_at_end): main.py returns once the feed
        ended and the board prints its REPL banner; 1 if a traceback came since start(). A board
        may take longer than the virtual one: at least twice the feed's audio time is allowed."""
        if not (self.feed_on_board and self.config.get("feed", {}).get("exit_at_end")):
            raise AssertionError("a real board does not exit: only a feed on board with exit_at_end"
                                 " ends its main.py (--feed-on-board, @pytest.mark.needs('feed'))")
        budget = max(timeout, 2 * self.feed_seconds + 60)
        ended = self.console.wait_for(r"audio feed ended", budget, after=self._mark)
        after = self.console.lines.index(ended.string, self._mark)
        self.console.wait_for(r"^MicroPython v", 30, after=after)
        return 1 if any("Traceback" in line for line in self.console.lines[self._mark:]) else 0

    def stop(self) -> None:
        """Stop reading the console (the board runs on)."""
        if self._reader is not None:
            self._stopping.set()
            self._reader.join(timeout=5)
            self._reader = None
