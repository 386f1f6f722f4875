# A faster decode for the commission, and the encode CPython uses (CPython only; a node
# never imports this module).
#
# lwproto.frame.decode is the reference, written to stay small on a board: it peeks, slices,
# unpacks header and payload in two calls and walks the field table for every value. The
# aggregator decodes every frame it receives, so here each type gets one precompiled
# struct.Struct for header + payload, and only the checks and scalings that can matter: a
# range check for the fields whose wire range is narrower than their struct code's, a
# division for the fields with a scale. The result is the same Frame, equal field by field
# (tests/test_hostframe.py holds the two to that on every vector and on generated frames).
# Anything this path would refuse goes to the reference decode, so every error, its class
# and its message are the reference's own.
import hmac
import struct

from . import frame as _ref
from .const import CLOCK_ERROR_MAX_US, HEADER_FORMAT, HEADER_SIZE, TAG_SIZE, TYPE_NAMES, VERSION
from .errors import BadTag

_Frame = _ref.Frame
_raw = _ref._raw
# frame.encode as frame.py defines it (the node's): what encode below cannot pack, it refuses
# in the reference's words. The end of this module puts its encode in frame's place.
reference_encode = _reference = _ref.encode
_equal = hmac.compare_digest
# HMAC-SHA256 keyed once per node: each frame copies the keyed state (its inner and outer
# pads already hashed) instead of hashing the key's two pads again: 1.00 us of CPU a tag
# instead of hmac.digest's 1.35 here
_keyed: dict[bytes, hmac.HMAC] = {}
KEYS_KEPT = 65536

# the range a struct code can carry at all: a narrower table range needs a check
_NATURAL = {}
for _code in "bBhHiIqQ":
    _bits = struct.calcsize(_code) * 8
    _NATURAL[_code] = (-(1 << (_bits - 1)), (1 << (_bits - 1)) - 1) if _code.islower() else (0, (1 << _bits) - 1)


class _Layout:
    __slots__ = ("size", "unpack", "pack", "specs", "checks", "scales")

    def __init__(self, ftype):
        specs = _ref.fields(ftype)
        self.size = _ref.SIZES[ftype]
        self.specs = specs
        whole = struct.Struct(HEADER_FORMAT + "".join(s[1] for s in specs))
        self.unpack = whole.unpack_from
        self.pack = whole.pack
        # (index in the payload, lo, hi) / (index, scale)
        self.checks = tuple((i, s[3], s[4]) for i, s in enumerate(specs) if (s[3], s[4]) != _NATURAL[s[1]])
        self.scales = tuple((i, s[2]) for i, s in enumerate(specs) if s[2] != 1)


_LAYOUTS = {ftype: _Layout(ftype) for ftype in TYPE_NAMES}
_FIRST_BYTE = {(VERSION << 4) | ftype: layout for ftype, layout in _LAYOUTS.items()}


def decode(data, key):
    """lwproto.frame.decode, same result and same errors, in fewer steps."""
    if not key:
        raise TypeError("decode needs the node's key (decode_unverified reads a frame without it)")
    return _decode(data, key)


def decode_unverified(data):
    """A frame's fields WITHOUT checking its tag: for tools that show what is on the wire
    (sniff, frames tail --no-verify), never for deciding whether to believe it."""
    return _decode(data, None)


def _decode(data, key):
    layout = _FIRST_BYTE.get(data[0]) if data else None
    if layout is None or len(data) != layout.size:
        return _ref._decode(data, key)   # refuses with the reference's reason and words
    n = layout.size - TAG_SIZE
    tag = bytes(data[n:])
    if key is not None and not _equal(_tag(key, data[:n]), tag):
        raise BadTag("frame from node 0x%04x: bad tag" % ((data[1] << 8) | data[2]))
    raws = layout.unpack(data)
    if raws[5] > 2 or not raws[3]:
        return _ref._decode(data, key)   # clock_source out of range, or seq 0
    payload = raws[7:]
    for i, lo, hi in layout.checks:
        v = payload[i]
        if v < lo or v > hi:
            return _ref._decode(data, key)
    if layout.scales:
        scaled = list(payload)
        for i, scale in layout.scales:
            scaled[i] = scaled[i] / scale
        payload = tuple(scaled)
    return _Frame(raws[0] & 0x0F, raws[1], raws[2], raws[3], raws[4], raws[5], raws[6], payload, tag)


def encode(key, ftype, node, boot, seq, time_us, clock_source, clock_error_us, values):
    """lwproto.frame.encode (which this replaces on CPython), same bytes and same errors: the
    payload in one precompiled pack with the header. The reference packs field by field,
    which keeps a node's heap whole and costs CPython ~40 % more per frame."""
    layout = _LAYOUTS.get(ftype)
    if layout is None or clock_source < 0 or clock_source > 2:
        return _reference(key, ftype, node, boot, seq, time_us, clock_source, clock_error_us, values)
    specs = layout.specs
    if isinstance(values, dict):
        try:
            values = [values[s[0]] for s in specs]
        except KeyError:
            return _reference(key, ftype, node, boot, seq, time_us, clock_source, clock_error_us, values)
    if len(values) != len(specs):
        return _reference(key, ftype, node, boot, seq, time_us, clock_source, clock_error_us, values)
    raws = [_raw(s, v, node) for s, v in zip(specs, values)]   # the reference's own range errors
    try:
        body = layout.pack((VERSION << 4) | ftype, node, boot, seq, time_us, clock_source,
                           min(clock_error_us, CLOCK_ERROR_MAX_US), *raws)
    except (OverflowError, ValueError, struct.error):
        return _reference(key, ftype, node, boot, seq, time_us, clock_source, clock_error_us, values)
    return body + _tag(key, body)


def _tag(key, message):
    """hmac.digest(key, message, "sha256")[:TAG_SIZE], from the key's HMAC state kept."""
    if type(key) is not bytes:
        key = bytes(key)           # a bytearray or memoryview key: hashable for the cache
    keyed = _keyed.get(key)
    if keyed is None:
        if len(_keyed) >= KEYS_KEPT:
            _keyed.clear()
        keyed = _keyed[key] = hmac.new(key, digestmod="sha256")
    h = keyed.copy()
    h.update(message)
    return h.digest()[:TAG_SIZE]


# CPython's lwproto.frame.encode from here on (frame.py loads this module at its end, and
# this module loads frame: either may come first)
_ref.encode = encode
