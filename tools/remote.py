"""The board seen through `mpremote`: every call a subprocess with a timeout, its failures turned
into errors a field engineer can act on.

Every call starts with `resume` (no soft reset on connect): a real board keeps running what it
ran, and the virtual board (the unix port behind a pseudo-terminal) would otherwise exit.
Remote paths are relative ("lib/lwnode/x.mpy"): on a board the working folder is "/", on the
virtual board it is the folder standing in for the board's filesystem.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

MARK = "LWJSON:"

# Runs on the board: what it is, how much room it has, whether it is on a network.
PROBE = """
import sys, os, json
try:
    s = os.statvfs(os.getcwd())
    free = s[0] * s[3]
except Exception:
    free = -1
net = False
try:
    import network
    net = network.WLAN(network.STA_IF).isconnected()
except Exception:
    pass
print('%s' + json.dumps({'mpy': getattr(sys.implementation, '_mpy', 0), 'platform': sys.platform,
    'version': '.'.join(str(v) for v in sys.implementation.version[:3]), 'free': free, 'network': net}))
""" % MARK

# Runs on the board: sha256 of the given files (None when missing) and every file under `roots`.
HASHES = """
import os, json, hashlib, binascii
def h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    d = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        d.update(m[:n])
    f.close()
    return binascii.hexlify(d.digest()).decode()
def walk(p, out):
    try:
        entries = list(os.ilistdir(p))
    except OSError:
        return
    for e in entries:
        q = p + '/' + e[0]
        if e[1] == 0x4000:
            walk(q, out)
        else:
            out.append(q)
found = []
for r in %r:
    walk(r, found)
print('%s' + json.dumps({'hashes': dict((p, h(p)) for p in %r), 'present': found}))
"""


class RemoteError(RuntimeError):
    """mpremote could not do what was asked; the message says what to do about it."""


class NoSuchPort(RemoteError):
    pass


class NoMicroPython(RemoteError):
    pass


class OutOfSpace(RemoteError):
    pass


def find_mpremote() -> str:
    here = Path(sys.executable).parent / "mpremote"
    for candidate in (str(here), shutil.which("mpremote")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RemoteError("mpremote not found: `pip install mpremote` (it comes with `make setup`)")


def serial_ports() -> list[str]:
    try:
        from serial.tools import list_ports
        return sorted(p.device for p in list_ports.comports())
    except Exception:
        return []


class Mpremote:
    def __init__(self, port: str, timeout: float = 30.0, mpremote: str | None = None):
        self.port = port
        self.timeout = timeout
        self.mpremote = mpremote or find_mpremote()

    def check_port(self) -> None:
        if self.port.startswith("/") and not os.path.exists(self.port):
            known = serial_ports()
            raise NoSuchPort(f"no such port {self.port}: is the board plugged in (and the cable one for data)?"
                             f" serial ports here: {', '.join(known) if known else 'none'}")

    def run(self, *args: str, timeout: float | None = None, resume: bool = True) -> str:
        cmd = [self.mpremote, "connect", self.port] + (["resume"] if resume else []) + list(args)
        limit = timeout or self.timeout
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"mpremote {' '.join(args[:2])} on {self.port}: no answer within {limit:.0f} s"
                              " (board busy or hung? press its reset button and try again)")
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise self._error(args, output)
        return result.stdout

    def _error(self, args, output: str) -> RemoteError:
        last = output.strip().splitlines()[-1] if output.strip() else "no output"
        if "could not enter raw repl" in output or "could not enter raw REPL" in output:
            return NoMicroPython(f"the board on {self.port} does not answer like MicroPython (no raw REPL):"
                                 " flash MicroPython onto it first (docs/field-guide.md)")
        if "ENOSPC" in output or "Errno 28" in output:
            return OutOfSpace(f"the board on {self.port} is out of space ({last})")
        if "failed to access" in output or "could not open port" in output or "No such file or directory: '/dev" in output:
            return NoSuchPort(f"cannot open {self.port}: {last} (another program using it? permission: add"
                              " yourself to the dialout group)")
        return RemoteError(f"mpremote {' '.join(args[:3])} on {self.port} failed: {last}")

    def exec(self, code: str, timeout: float | None = None) -> str:
        return self.run("exec", code, timeout=timeout)

    def exec_json(self, code: str, timeout: float | None = None) -> dict:
        out = self.exec(code, timeout)
        for line in out.splitlines():
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        raise RemoteError(f"the board on {self.port} gave no answer to a probe: {out.strip()[-300:]!r}")

    def probe(self) -> dict:
        self.check_port()
        return self.exec_json(PROBE)

    def hashes(self, paths: list[str], roots: list[str]) -> dict:
        return self.exec_json(HASHES % (roots, MARK, paths), timeout=self.timeout * 4)

    def make_dirs(self, dirs: list[str]) -> None:
        if dirs:
            self.exec("import os\nfor d in %r:\n    try:\n        os.mkdir(d)\n    except OSError:\n        pass\n"
                      % sorted(set(dirs), key=len))

    def remove(self, paths: list[str]) -> None:
        if paths:
            self.exec("import os\nfor p in %r:\n    os.remove(p)\n" % paths)

    def copy(self, pairs: list[tuple[Path, str]]) -> None:
        """Copy local files to board paths, one mpremote call for the lot (chained with '+')."""
        args: list[str] = []
        for local, remote in pairs:
            args += (["+"] if args else []) + ["fs", "cp", str(local), ":" + remote]
        if args:
            self.run(*args, timeout=self.timeout + 10 * len(pairs))

    def mip_install(self, package: str) -> None:
        self.run("mip", "install", package, timeout=self.timeout * 4)
