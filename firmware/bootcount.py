"""The boot counter in flash: bumped once per boot, it makes (boot, seq) grow across reboots so
the commission can refuse replays (DESIGN.md).

File: >2sHI  magic "BC", boot u16, CRC-32 of the first four bytes. Written to `<path>.tmp` and
renamed over `path`, so a power cut leaves the old or the new value, never a torn one. A FAT
volume refuses to rename over an existing file; then the old one is removed first, and
`<path>.tmp` is what a reader falls back on if the cut lands between the two steps.
"""
import os
import struct

try:
    from binascii import crc32
except ImportError:
    from .store import crc32

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_MAGIC = const(b"BC")
_FORMAT = const(">2sH")
_FIRST_BOOT = const(1)
_LAST_BOOT = const(0xFFFF)


def encode(boot):
    head = struct.pack(_FORMAT, _MAGIC, boot)
    return head + struct.pack(">I", crc32(head) & 0xFFFFFFFF)


def decode(data):
    """The boot number in `data`, or None if it is not a valid counter file."""
    if len(data) != 8:
        return None
    magic, boot = struct.unpack(_FORMAT, data[:4])
    if magic != _MAGIC or struct.unpack(">I", data[4:])[0] != crc32(data[:4]) & 0xFFFFFFFF:
        return None
    return boot


def _read(path):
    try:
        with open(path, "rb") as f:
            return decode(f.read(16))
    except OSError:
        return None


def read(path):
    """(boot, note): the stored counter, or (None, why) when it is missing or corrupt."""
    boot = _read(path)
    if boot is not None:
        return boot, None
    boot = _read(path + ".tmp")  # a rename cut short on a FAT volume
    if boot is not None:
        return boot, None
    try:
        os.stat(path)
    except OSError:
        return None, "boot counter %s missing" % path
    return None, "boot counter %s corrupt" % path


def write(path, boot):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(encode(boot))
    try:
        os.rename(tmp, path)
    except OSError:  # FAT: the target must not exist
        os.remove(path)
        os.rename(tmp, path)


def bump(path):
    """Count this boot: returns (boot, note). `note` is None normally, and says why when the
    counter restarted at 1 (missing or corrupt file) or wrapped after 65535 boots; the caller
    logs it and reports it, because the commission will see (boot, seq) go backwards."""
    previous, note = read(path)
    if previous is None:
        boot = _FIRST_BOOT
        note = "%s: starting at %d" % (note, boot)
    elif previous >= _LAST_BOOT:
        boot = _FIRST_BOOT
        note = "boot counter %s wrapped after %d boots: starting at %d" % (path, previous, boot)
    else:
        boot = previous + 1
    write(path, boot)
    return boot, note
