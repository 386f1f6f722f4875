"""Put a build and a node's config onto a board, then watch it come up.

Steps: probe the board (MicroPython? which .mpy version and architecture? how much room?),
hash what is on it, copy only what differs (the build, config.json, the manifest last so an
interrupted flash copies again), remove modules the new build no longer has, install
MicroPython libraries the build requires, reset, wait for the self-test line on the console,
and, when the node's broker is reachable from here, wait for its birth frame and verify it
with the node's key from its config.

Resetting: `hard` (machine.reset(), then the serial console), `virtual` (the unix port cannot
be reset, it would exit: main.py is started in the running interpreter instead), `none`.
"""
from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lwtools.build import ARCH_NAMES, BuildError, load_manifest, sha256_file
from lwtools.remote import OutOfSpace, RemoteError

BOARD_MANIFEST = "lw-manifest.json"
BOARD_CONFIG = "config.json"
PACKAGE_ROOTS = ["lib/lwnode", "lib/lwproto"]
SPARE_BYTES = 8192          # the node's queue and boot counter live on the same filesystem
COPY_BATCH = 8


class FlashError(RuntimeError):
    pass


@dataclass(frozen=True)
class BoardInfo:
    mpy_version: int
    mpy_sub_version: int
    arch_code: int
    free_bytes: int
    network: bool
    platform: str
    version: str

    @classmethod
    def from_probe(cls, probe: dict) -> "BoardInfo":
        mpy = int(probe.get("mpy", 0))
        return cls(mpy & 0xFF, (mpy >> 8) & 3, mpy >> 10, int(probe.get("free", -1)),
                   bool(probe.get("network")), str(probe.get("platform", "?")), str(probe.get("version", "?")))


def check_compatible(manifest: dict, board: BoardInfo) -> None:
    """The build's .mpy files must match the board's version and (native code) architecture."""
    major, minor = (int(x) for x in str(manifest["mpy_version"]).split("."))
    if board.mpy_version == 0:
        raise FlashError(f"the board (MicroPython {board.version}) cannot load .mpy files")
    if board.mpy_version != major or board.mpy_sub_version > minor:
        raise FlashError(f"the build's .mpy files are v{major}.{minor}, the board's MicroPython {board.version}"
                         f" loads v{board.mpy_version}.{board.mpy_sub_version}: flash MicroPython"
                         f" {manifest.get('micropython', '')} onto the board, or build with the matching mpy-cross")
    if board.arch_code != manifest["arch_code"]:
        raise FlashError(f"wrong architecture: the build is for {manifest['target']} ({manifest['arch']}),"
                         f" the board is {ARCH_NAMES.get(board.arch_code, board.arch_code)}"
                         f" ({board.platform}); build with --target for this board")


@dataclass(frozen=True)
class Plan:
    copy: list[tuple[Path, str, int]]     # (local file, board path, size)
    remove: list[str]
    needed_bytes: int


def plan(wanted: list[tuple[Path, str, str, int]], board: dict) -> Plan:
    """`wanted`: (local, board path, sha256, size); `board`: the HASHES probe's answer."""
    on_board = board["hashes"]
    copy = [(local, path, size) for local, path, digest, size in wanted if on_board.get(path) != digest]
    keep = {path for _, path, _, _ in wanted}
    remove = sorted(p for p in board["present"] if p not in keep)
    return Plan(copy, remove, sum(size for _, _, size in copy))


def wanted_files(build_dir: Path, manifest: dict, config: Path) -> list[tuple[Path, str, str, int]]:
    files = [(build_dir / f["path"], f["path"], f["sha256"], f["size"]) for f in manifest["files"]]
    files.append((config, BOARD_CONFIG, sha256_file(config), config.stat().st_size))
    manifest_file = build_dir / "manifest.json"
    files.append((manifest_file, BOARD_MANIFEST, sha256_file(manifest_file), manifest_file.stat().st_size))
    return files


def load_config(path: Path, node: int) -> dict:
    try:
        config = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FlashError(f"{path}: no such config (run `linewatch provision 0x{node:04x} ...` first)")
    except (OSError, ValueError) as exc:
        raise FlashError(f"{path}: unreadable config ({exc})")
    if config.get("node") != node:
        raise FlashError(f"{path} is the config of node {config.get('node')!r}, not 0x{node:04x}")
    return config


def install_requirements(remote, manifest: dict, board: BoardInfo, progress) -> None:
    shipped = {f["path"] for f in manifest["files"]}
    for package in manifest.get("requires", []):
        if any(p.startswith(f"lib/{package}") for p in shipped):
            progress(f"flash: {package}: copied from the build folder")
        elif board.network:
            progress(f"flash: {package}: installing with mip")
            remote.mip_install(package)
        else:
            raise FlashError(f"the build needs the MicroPython library {package!r}, the board has no network"
                             f" for mip and the build folder has no lib/{package}: put it there and flash again")


def copy_files(remote, steps: Plan, progress) -> None:
    dirs = {str(Path(path).parent) for _, path, _ in steps.copy if "/" in path}
    parents = {"/".join(d.split("/")[:i]) for d in dirs for i in range(1, d.count("/") + 2)}
    remote.make_dirs(sorted(parents))
    remote.remove(steps.remove)
    done_bytes = 0
    for start in range(0, len(steps.copy), COPY_BATCH):
        batch = steps.copy[start:start + COPY_BATCH]
        try:
            remote.copy([(local, path) for local, path, _ in batch])
        except OutOfSpace as exc:
            raise FlashError(f"{exc}: free some room or use a board with more flash")
        done_bytes += sum(size for _, _, size in batch)
        progress(f"flash: copied {start + len(batch)}/{len(steps.copy)} files"
                 f" ({done_bytes}/{steps.needed_bytes} bytes)")


# The nearest thing to a reset on the unix port: forget every imported module (so new .mpy
# files are loaded), then run main.py as a board does at boot. A node that stops (a failed
# self-test exits 2 on the unix port) or is interrupted (Ctrl-C: the next flash) leaves the
# interpreter at its REPL with its heap freed, as a board's would be after a reset: exiting
# would end the unix port and its PTY with it.
VIRTUAL_BOOT = ("exec(%r)" % "import sys\nfor m in list(sys.modules):\n    del sys.modules[m]\n"
                "import gc\ngc.collect()\n"
                "try:\n    exec(open('main.py').read(), {'__name__': '__main__'})\n"
                "except (SystemExit, KeyboardInterrupt) as e:\n    print('main.py stopped (%r): back at the REPL' % e)\n"
                "for m in list(sys.modules):\n    del sys.modules[m]\n"
                "import gc\ngc.collect()\n")

# Typed on the board's REPL (after Ctrl-C, Ctrl-C): a hard reset, or for the virtual board,
# which would exit on a reset, main.py started the way a board starts it.
RESET_KEYS = {
    "hard": b"\x03\x03\r\nimport machine\r\nmachine.reset()\r\n",
    "virtual": b"\x03\x03\r\n" + VIRTUAL_BOOT.encode() + b"\r\n",
}


def wait_for_self_test(lines, node: int, timeout: float, progress, start: bytes = b"") -> str:
    """The console's self-test line of this node; FlashError on a traceback or a failed self-test."""
    started = time.monotonic()
    shown = started
    tail: list[str] = []
    in_traceback = False
    expected = "linewatch node 0x%04x self-test" % node
    for line in lines(timeout, start):
        now = time.monotonic()
        if line is None:
            if now - shown >= 5:
                progress(f"flash: waiting for the board's self-test ({now - started:.0f}/{timeout:.0f} s)")
                shown = now
            continue
        tail = (tail + [line])[-12:]
        if "linewatch node 0x" in line and "self-test" in line:
            if not line.strip().startswith(expected):
                raise FlashError(f"the board says {line.strip()!r}: it is not node 0x{node:04x}")
            if "self-test ok" not in line:
                raise FlashError(f"the board's self-test failed: {line.strip()}")
            return line.strip()
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and not line.startswith(" "):
            raise FlashError("the board stopped with an error before its self-test:\n    " + "\n    ".join(tail))
    raise FlashError(f"no self-test line from the board within {timeout:.0f} s; last console lines:\n    "
                     + "\n    ".join(tail or ["(nothing)"]))


def broker_reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class BirthWatch:
    """Subscribed before the reset, so a quick birth is not missed."""

    def __init__(self, access, birth_topic: str, progress=print):
        from linewatch.broker import Subscription
        self.subscription = Subscription(access, [(birth_topic, 1)], "lw-flash", notice=progress).open()

    def wait(self, timeout: float) -> bytes | None:
        message = self.subscription.get(timeout)
        return None if message is None else message[1]

    def close(self) -> None:
        self.subscription.close()


def check_birth(payload: bytes, config: dict) -> str:
    from lwproto import const, frame
    from lwproto.errors import ProtocolError
    try:
        birth = frame.decode(payload, bytes.fromhex(config["key"]))
    except ProtocolError as exc:
        raise FlashError(f"the node's birth frame does not verify: {exc}")
    if birth.ftype != const.BIRTH or birth.node != config["node"]:
        raise FlashError(f"expected node 0x{config['node']:04x}'s birth, got {birth!r}")
    f = birth.fields()
    return "birth of node 0x%04x verified: firmware %d.%d.%d, board %s, boot %d" % (
        birth.node, f["fw_major"], f["fw_minor"], f["fw_patch"],
        const.BOARD_NAMES[f["board"]] if f["board"] < len(const.BOARD_NAMES) else f["board"], birth.boot)


@dataclass
class Options:
    reset: str = "hard"                     # hard | virtual | none
    self_test_timeout: float = 60.0
    birth_timeout: float = 60.0
    broker: tuple[str, int] | None = None   # override the config's broker address (as seen from here)
    broker_user: str | None = None
    broker_password: str | None = None
    broker_port: int | None = None          # the commission's listener (the credentials file's)
    broker_ca: str = ""                     # and its CA certificate (TLS)


def flash(remote, build_dir: Path, config_path: Path, node: int, options: Options | None = None,
          console=None, progress: Callable[[str], None] = print) -> dict:
    """Returns a summary: files copied/removed, self-test line, birth line."""
    options = options or Options()
    try:
        manifest = load_manifest(build_dir)
    except BuildError as exc:
        raise FlashError(str(exc))
    config = load_config(config_path, node)
    progress(f"flash: probing the board on {remote.port}")
    board = BoardInfo.from_probe(remote.probe())
    progress(f"flash: MicroPython {board.version} on {board.platform}, .mpy v{board.mpy_version}."
             f"{board.mpy_sub_version} {ARCH_NAMES.get(board.arch_code, board.arch_code)},"
             f" {board.free_bytes} bytes free, network {'up' if board.network else 'down'}")
    check_compatible(manifest, board)
    wanted = wanted_files(Path(build_dir), manifest, Path(config_path))
    progress(f"flash: hashing {len(wanted)} files on the board")
    steps = plan(wanted, remote.hashes([path for _, path, _, _ in wanted], PACKAGE_ROOTS))
    if board.free_bytes >= 0 and steps.needed_bytes + SPARE_BYTES > board.free_bytes:
        raise FlashError(f"the board is out of space: {steps.needed_bytes} bytes to copy (+{SPARE_BYTES} spare"
                         f" for the node's queue), {board.free_bytes} free")
    progress(f"flash: {len(steps.copy)} of {len(wanted)} files differ, {len(steps.remove)} to remove")
    # the manifest goes last: a flash cut short leaves the old manifest, so the next one copies again
    steps.copy.sort(key=lambda item: item[1] == BOARD_MANIFEST)
    copy_files(remote, steps, progress)
    install_requirements(remote, manifest, board, progress)
    if steps.copy:
        after = remote.hashes([path for _, path, _ in steps.copy], [])["hashes"]
        digests = {path: digest for _, path, digest, _ in wanted}
        bad = [path for _, path, _ in steps.copy if after.get(path) != digests[path]]
        if bad:
            raise FlashError(f"copies differ on the board after copying (flash full or failing?): {', '.join(bad)}")
    summary = {"copied": [path for _, path, _ in steps.copy], "removed": steps.remove,
               "self_test": None, "birth": None}
    if options.reset == "none":
        progress("flash: done (not reset: --no-reset)")
        return summary
    watch = _birth_watch(config, options, progress)
    try:
        progress("flash: resetting the board" if options.reset == "hard" else "flash: starting main.py (virtual board)")
        if console is None:
            from lwtools.console import SerialConsole
            console = SerialConsole(remote.port)
        summary["self_test"] = wait_for_self_test(console.lines, node, options.self_test_timeout, progress,
                                                  RESET_KEYS[options.reset])
        progress(f"flash: {summary['self_test']}")
        if watch is not None:
            progress(f"flash: waiting up to {options.birth_timeout:.0f} s for the node's birth frame")
            payload = watch.wait(options.birth_timeout)
            if payload is None:
                raise FlashError(f"no birth frame from node 0x{node:04x} within {options.birth_timeout:.0f} s"
                                 " (Wi-Fi credentials? broker address as the node sees it? its ACL?)")
            summary["birth"] = check_birth(payload, config)
            progress(f"flash: {summary['birth']}")
    finally:
        if watch is not None:
            watch.close()
    return summary


def _birth_watch(config: dict, options: Options, progress) -> BirthWatch | None:
    from linewatch.broker import BrokerAccess, BrokerError
    from lwproto import const, topic
    # the node's broker host, but the commission's listener: the nodes' admits no commission user
    host, port = options.broker or (config["broker"]["host"],
                                    options.broker_port or int(config["broker"].get("port", 1883)))
    access = BrokerAccess(host, port, options.broker_user or "", options.broker_password or "", options.broker_ca)
    if not broker_reachable(host, port):
        progress(f"flash: broker {access.where} not reachable from here: the birth frame is not checked")
        return None
    try:
        return BirthWatch(access, topic.uplink(config["segment"], config["node"], const.BIRTH), progress)
    except BrokerError as exc:  # a broker that refuses us must not stop the flash itself
        progress(f"flash: {exc}: the birth frame is not checked")
        return None


__all__ = ["FlashError", "Options", "flash", "RemoteError"]
