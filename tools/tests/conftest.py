"""The virtual board for the flash tests: the MicroPython unix port behind a pseudo-terminal
(`socat`), driven by the real `mpremote` like a board on a serial port. Its filesystem is a
temporary folder (the interpreter's working folder); MICROPYPATH points at its lib/, like a
board's /lib. Always torn down, by the process group this fixture started."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from linewatch.testing import micropython as mp
from lwtools.remote import Mpremote, RemoteError


class VirtualBoard:
    def __init__(self, root: Path, micropython: str, heap: str = "2M"):
        self.heap = heap          # micropython -X heapsize: the real firmware needs its board's budget
        self.fs = root / "fs"
        self.fs.mkdir(parents=True)
        self.port = str(root / "tty")
        self.micropython = micropython
        self.process: subprocess.Popen | None = None

    def start(self) -> "VirtualBoard":
        env = dict(os.environ, MICROPYPATH=f".frozen:{self.fs / 'lib'}")
        self.process = subprocess.Popen(
            ["socat", f"PTY,link={self.port},raw,echo=0",
             f"EXEC:{self.micropython} -X heapsize={self.heap} -i,pty,raw,echo=0,stderr,setsid,ctty"],
            cwd=self.fs, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                if os.path.exists(self.port):
                    Mpremote(self.port, timeout=5).exec("print(1)")
                    return self
            except RemoteError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"virtual board did not come up on {self.port}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None


@pytest.fixture
def virtual_board_with_heap(tmp_path, micropython):
    """A factory: `virtual_board_with_heap("256K")` -> a started VirtualBoard, stopped afterwards."""
    if not shutil.which("socat"):
        pytest.skip("socat not installed (tools/setup.sh test installs it)")
    boards: list[VirtualBoard] = []

    def make(heap: str = "2M") -> VirtualBoard:
        board = VirtualBoard(tmp_path / ("board-%d" % len(boards) if boards else "board"),
                             micropython.find_micropython(), heap)
        boards.append(board)
        return board.start()

    try:
        yield make
    finally:
        for board in boards:
            board.stop()


@pytest.fixture
def virtual_board(virtual_board_with_heap):
    return virtual_board_with_heap()
