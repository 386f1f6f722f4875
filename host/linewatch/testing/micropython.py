"""Run code on the MicroPython unix port with the board's import layout.

On a board, protocol/ is /lib/lwproto and firmware/ is /lib/lwnode. The unix port gets the
same names through a folder of symlinks, and MICROPYPATH keeps `.frozen` first (without it
`asyncio` vanishes).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from lwtools.virtual_board import MicroPythonMissing, find_micropython

__all__ = ["MicroPythonMissing", "find_micropython", "board_lib", "environment", "command", "run", "run_code"]

REPO = Path(__file__).resolve().parents[3]
BOARD_PACKAGES = {"lwproto": REPO / "protocol", "lwnode": REPO / "firmware"}
DEFAULT_HEAP = "128K"


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
