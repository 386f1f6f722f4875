"""Hardware-in-the-loop fixtures: a real board over serial (`--port`), else a virtual board.

The virtual board is the MicroPython unix port running the firmware as `linewatch build --target
unix` compiles it (the same .mpy layout a board gets), with hal/unix, a config pointing at a
private Mosquitto and a sample file the test synthesizes. The fixture waits for the self-test
line and always kills the process.

With `--port` (any pyserial URL) the tests that only need the console and the broker run
against the real board; tests that must put sounds into the feed are skipped there.
"""
from __future__ import annotations

import json
import math
import queue
import random
import re
import shutil
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lwproto import auth, frame, topic
from lwproto import const as c
from lwproto.replay import ReplayGuard
from linewatch.testing import micropython as mp

MASTER = bytes(range(32))
NODE = 0x0102
SEGMENT = 3
RATE = 16000
START_US = 1795000000000000      # the virtual clock's sample 0 on fast feeds
# The brief asks for 128K. On the 64-bit unix port the firmware's code alone takes ~100 KB of
# heap once loaded and the node's live peak is ~129 KB, so the virtual board runs at 160K, the
# smallest size that runs 10 minutes (144K fails on fragmentation). tools/bench/node_memory.py
# prints the figures per heap size; see firmware/README.md, "Memory".
VIRTUAL_HEAP = "160K"


def pytest_addoption(parser):
    parser.addoption("--port", default=None,
                     help="pyserial URL of a real board (e.g. /dev/ttyUSB0); default: virtual board")
    parser.addoption("--board-config", default=None,
                     help="with --port: the config.json flashed on that board (node, key, broker)")
    parser.addoption("--heap", default=VIRTUAL_HEAP, help="virtual board heap (micropython -X heapsize)")


@pytest.fixture(autouse=True)
def _broker_workdir(tmp_path):
    (tmp_path / "broker").mkdir(exist_ok=True)


def node_key(node: int = NODE) -> bytes:
    return auth.derive_node_key(MASTER, node)


# ---- sample files -----------------------------------------------------------------------

def synth(seconds: float, impulses_s=(), noise=60, seed=1) -> bytes:
    """Raw int16 LE: Gaussian noise with explosion-like impulses (decaying 150 Hz bursts)."""
    rnd = random.Random(seed)
    n = int(seconds * RATE)
    samples = [int(rnd.gauss(0, noise)) for _ in range(n)]
    for at in impulses_s:
        k = int(at * RATE)
        for i in range(min(2400, n - k)):
            samples[k + i] += int(22000 * math.exp(-i / 500) * math.sin(2 * math.pi * 150 * i / RATE))
    return struct.pack("<%dh" % n, *(max(-32768, min(32767, s)) for s in samples))


# ---- the virtual board ------------------------------------------------------------------

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


class VirtualBoard:
    """One run of the firmware on the unix port. Storage survives `stop()` + `start()` (a reboot)."""

    def __init__(self, build: Path, workdir: Path, broker, heap: str):
        self.build = build
        self.workdir = workdir
        self.broker = broker
        self.heap = heap
        self.process: subprocess.Popen | None = None
        self.console = Console()
        self.config: dict = {}

    def configure(self, audio: bytes, realtime=False, heartbeat_s=1, exit_at_end=False, plays=1,
                  **extra) -> dict:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "audio.raw").write_bytes(audio)
        self.config = {
            "node": NODE, "segment": SEGMENT, "key": node_key().hex(), "board": "unix",
            "position": {"lat": 48.0123, "lon": 37.7654, "alt_m": 180, "error_m": 5},
            "broker": {"host": self.broker.host, "port": self.broker.port, "keepalive_s": 10},
            "audio": {"rate_hz": RATE, "block": 512}, "heartbeat_s": heartbeat_s,
            "storage": str(self.workdir / "flash"),
            "feed": {"audio": str(self.workdir / "audio.raw"), "realtime": realtime,
                     "start_us": START_US, "exit_at_end": exit_at_end, "plays": plays},
        }
        self.config.update(extra)
        (self.workdir / "config.json").write_text(json.dumps(self.config))
        return self.config

    def start(self, wait: bool = True) -> "VirtualBoard":
        lib = self.build / "lib"
        self.process = subprocess.Popen(
            mp.command(self.build / "main.py", str(self.workdir / "config.json"), heap=self.heap),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.workdir,
            env=mp.environment(lib), start_new_session=True)
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()
        if wait:
            self.console.wait_for(r"self-test (ok|FAILED)", timeout=20)
            assert self.console.count("self-test FAILED") == 0, self.console.lines[-5:]
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


@pytest.fixture(scope="session")
def board_build(tmp_path_factory, request):
    if request.config.getoption("--port"):
        return None
    try:
        mp.find_micropython()
    except mp.MicroPythonMissing as exc:
        pytest.skip(str(exc))
    from lwtools.build import build
    out = tmp_path_factory.mktemp("unix-build")
    build("unix", out, progress=lambda line: None)
    return out


@pytest.fixture
def virtual_board(request, board_build, mosquitto, tmp_path):
    """A factory: `virtual_board(audio_bytes, **config)` -> started VirtualBoard."""
    if request.config.getoption("--port"):
        pytest.skip("needs the virtual board's sample feed (a real board hears the real world)")
    boards: list[VirtualBoard] = []

    def make(audio: bytes, start: bool = True, **options) -> VirtualBoard:
        board = VirtualBoard(board_build, tmp_path / "board", mosquitto, request.config.getoption("--heap"))
        board.configure(audio, **options)
        boards.append(board)
        return board.start() if start else board

    yield make
    for board in boards:
        board.stop()


# ---- the commission's side, as the tests play it ----------------------------------------

class Commission:
    """Subscribes to the node's uplink (persistent session, so an outage loses nothing at the
    broker), verifies every frame, and can ack like the aggregator and send commands."""

    def __init__(self, broker, key: bytes = None, ack: bool = True):
        import paho.mqtt.client as paho
        self.key = key or node_key()
        self.ack = ack
        self.frames: "queue.Queue[frame.Frame]" = queue.Queue()
        self.received: list[frame.Frame] = []
        self.guard = ReplayGuard()
        self.counter = 0              # the commission's downlink seq (boot 1)
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="hil-commission",
                                  clean_session=False)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda cl, *_: cl.subscribe(topic.uplink_filter(SEGMENT), qos=1)
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        deadline = time.monotonic() + 10
        while not self.client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)   # the SUBACK

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic.endswith("/" + topic.DOWN):
            return   # our own acks and commands: the filter covers the downlink topic too
        try:
            f = frame.decode(msg.payload, self.key)
        except Exception as exc:   # recorded as a failure by the tests that look
            f = exc
        self.received.append(f)
        self.frames.put(f)
        if self.ack and isinstance(f, frame.Frame) and f.ftype != c.DEATH:
            self.guard.accept(f.node, f.boot, f.seq)
            upto = self.guard.contiguous(f.node, f.boot)
            if upto:
                self.send(c.ACK, {"boot": f.boot, "seq": upto})

    def send(self, ftype: int, values: dict, key: bytes = None, counter: int = None) -> bytes:
        if counter is None:
            self.counter += 1
            counter = self.counter
        data = frame.encode(key or self.key, ftype, NODE, 1, counter, int(time.time() * 1e6),
                            c.CLOCK_NTP, 1000, values)
        self.client.publish(topic.downlink(SEGMENT, NODE), data, qos=1)
        return data

    def command(self, command: int, **values) -> bytes:
        full = {"command": command, "event_class": 0, "threshold": 0, "refractory_ms": 0,
                "boot": 0, "first_seq": 0, "last_seq": 0, "delay_s": 0}
        full.update(values)
        key = full.pop("key", None)
        counter = full.pop("counter", None)
        return self.send(c.COMMAND, full, key=key, counter=counter)

    def wait_frame(self, ftype: int, timeout: float = 20, where=lambda f: True) -> frame.Frame:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s frame within %.0f s (got %r)"
                                     % (c.TYPE_NAMES[ftype], timeout, self.received[-10:]))
            try:
                f = self.frames.get(timeout=left)
            except queue.Empty:
                continue
            assert isinstance(f, frame.Frame), "a frame did not verify: %r" % (f,)
            if f.ftype == ftype and where(f):
                return f

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def hil():
    """This module: constants (NODE, SEGMENT, RATE, START_US) and helpers (synth, node_key)."""
    import sys
    return sys.modules[__name__]


@pytest.fixture
def commission(mosquitto):
    com = Commission(mosquitto)
    yield com
    com.close()
