# Frame layout, encode and decode (SPEC.md is the normative text; this table is its source).
import struct
import sys

from . import auth
from .const import (ACK, BIRTH, CLOCK_ERROR_MAX_US, COMMAND, DEATH, EVENT, HEADER_FORMAT,
                    HEADER_SIZE, HEARTBEAT, SLEEP, STATE, TAG_SIZE, TYPE_NAMES, VERSION)
from .errors import BadTag, LengthMismatch, OutOfRange, Truncated, UnknownType, UnknownVersion

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

# Each payload field (";" between fields): name, struct code, scale, raw min, raw max,
# saturates (1/0).
# The wire carries round(value * scale); a saturating field clamps to its range when encoded
# instead of refusing (a long drone track is still a drone track).
# Kept as one text per type, not as tuples: on a board a module's constant tuples stay in RAM
# for as long as the module is loaded (~8 KB on the 64-bit unix port); fields() parses a type's
# text when asked (and CPython keeps the parsed tables in PAYLOADS).
_TABLE = {
    EVENT: "event_class B 1 0 5 0; confidence B 100 0 100 0; "
           "onset_offset_us i 1 -2147483648 2147483647 0; peak_db h 10 -32768 32767 1; "
           "duration_ms H 1 0 65535 1; frequency_hz H 1 0 65535 1; snr_db h 10 -32768 32767 1",
    HEARTBEAT: "battery_mv H 1 0 65535 1; temperature_c h 10 -32768 32767 1; "
               "uptime_s I 1 0 4294967295 1; rssi_dbm b 1 -128 127 1; "
               "queue_depth H 1 0 65535 1; free_memory I 1 0 4294967295 1; "
               "detections H 1 0 65535 1; dropped H 1 0 65535 1; reconnects H 1 0 65535 1; "
               "refused_commands H 1 0 65535 1; radio_ms I 1 0 4294967295 1; "
               "slept_s I 1 0 4294967295 1; heartbeat_s H 1 0 65535 1; power B 1 0 3 0",
    BIRTH: "fw_major B 1 0 255 0; fw_minor B 1 0 255 0; fw_patch B 1 0 255 0; "
           "board B 1 0 4 0; segment B 1 0 255 0; lat i 10000000 -900000000 900000000 0; "
           "lon i 10000000 -1800000000 1800000000 0; alt_m h 1 -32768 32767 1; "
           "position_error_m H 1 0 65535 1; sensors B 1 0 15 0; capabilities H 1 0 127 0; "
           "sample_rate_hz H 1 0 65535 0",
    DEATH: "reason B 1 0 1 0",
    SLEEP: "sleep_s I 1 0 4294967295 1; reason B 1 0 1 0",
    COMMAND: "command B 1 1 4 0; event_class B 1 0 5 0; threshold H 10 0 65535 0; "
             "refractory_ms H 1 0 65535 0; boot H 1 0 65535 0; first_seq I 1 0 4294967295 0; "
             "last_seq I 1 0 4294967295 0; delay_s H 1 0 65535 0",
    ACK: "boot H 1 0 65535 0; seq I 1 0 4294967295 0",
    STATE: "state B 1 0 1 0",
}


def _parse(ftype, text=None):
    # One field's text (`text`: name, struct code, scale, raw min, raw max, saturates) as a
    # tuple, or every field of `ftype` (one split of the whole text into words made a 60-word
    # list, 512 bytes on the 64-bit unix port, and a full node heap may have no such hole).
    # One function for both: each name a module holds is interned in a board's RAM for good.
    if text is not None:
        name, code, scale, lo, hi, saturates = text.split()
        return (name, code, int(scale), int(lo), int(hi), saturates == "1")
    return tuple(_parse(0, text) for text in _TABLE[ftype].split(";"))


def _format(specs):
    return ">" + "".join(f[1] for f in specs)


# A type may grow within version 1 by fields appended at its end (SPEC.md section 7): a
# receiver still takes its older length, whose frames lack the newer fields. One so far:
# the heartbeat's first 10 fields (51 bytes), before the power fields.
_OLD_HEARTBEAT_SIZE = const(51)
_OLD_HEARTBEAT_FIELDS = const(10)


# ftype -> ((name, struct code, scale, raw min, raw max, saturates), ...): CPython only
PAYLOADS = {}  # type: dict[int, tuple]
_FORMATS = {}  # type: dict[int, str]


def fields(ftype):
    """The payload fields of a frame type (KeyError for an unknown type)."""
    found = PAYLOADS.get(ftype)
    if found is None:
        found = _parse(ftype)
        if sys.implementation.name != "micropython":
            PAYLOADS[ftype] = found
            _FORMATS[ftype] = _format(found)
    return found


SIZES = {t: HEADER_SIZE + struct.calcsize(_format(fields(t))) + TAG_SIZE for t in _TABLE}
MAX_FRAME_SIZE = max(SIZES.values())


class Frame:
    """A decoded frame: header fields plus payload values in engineering units."""
    __slots__ = ("ftype", "node", "boot", "seq", "time_us", "clock_source", "clock_error_us",
                 "values", "tag")

    def __init__(self, ftype, node, boot, seq, time_us, clock_source, clock_error_us, values, tag):
        self.ftype = ftype
        self.node = node
        self.boot = boot
        self.seq = seq
        self.time_us = time_us
        self.clock_source = clock_source
        self.clock_error_us = clock_error_us
        self.values = values
        self.tag = tag

    def type_name(self):
        return TYPE_NAMES[self.ftype]

    def field(self, name):
        for i, spec in enumerate(fields(self.ftype)):
            if spec[0] == name:
                return self.values[i]
        raise KeyError(name)

    def fields(self):
        return dict(zip([spec[0] for spec in fields(self.ftype)], self.values))

    def __repr__(self):
        return "Frame(%s node=0x%04x boot=%d seq=%d)" % (self.type_name(), self.node, self.boot, self.seq)


def _raw(spec, value, node):
    name, code, scale, lo, hi, saturates = spec
    raw = int(round(value * scale))   # IEEE 754 double, ties to even (SPEC section 2)
    if raw < lo or raw > hi:
        if not saturates:
            raise OutOfRange("frame for node 0x%04x: %s=%r outside %s..%s"
                             % (node, name, value, lo / scale if scale != 1 else lo,
                                hi / scale if scale != 1 else hi))
        raw = lo if raw < lo else hi
    return raw


def encode(key, ftype, node, boot, seq, time_us, clock_source, clock_error_us, values):
    """Frame bytes with their tag. `values`: payload in the table's order, or a dict by name."""
    if ftype not in _TABLE:
        raise UnknownType("cannot encode unknown frame type %r" % (ftype,))
    text = _TABLE[ftype]
    count = text.count(";") + 1
    by_name = isinstance(values, dict)
    if not by_name and len(values) != count:
        raise OutOfRange("frame for node 0x%04x: %s needs %d values, got %d"
                         % (node, TYPE_NAMES[ftype], count, len(values)))
    if clock_source < 0 or clock_source > 2:
        raise OutOfRange("frame for node 0x%04x: clock_source=%r outside 0..2" % (node, clock_source))
    if clock_error_us > CLOCK_ERROR_MAX_US:
        clock_error_us = CLOCK_ERROR_MAX_US
    # Field by field into one buffer of the frame's size, each field's text parsed as it is
    # reached. No list of the fields, their specs or raw values: on the node each was a block
    # of 128 bytes or more per heartbeat (14 fields), and a heap the running node has
    # fragmented may have no such hole ("heartbeat not stored: MemoryError allocating 128
    # bytes"; firmware/README.md "Memory"). CPython encodes with lwproto.hostframe's.
    body = bytearray(SIZES[ftype] - TAG_SIZE)
    at = HEADER_SIZE
    start = 0
    for i in range(count):
        end = text.find(";", start)
        spec = _parse(0, text[start:end] if end >= 0 else text[start:])
        start = end + 1
        if by_name:
            if spec[0] not in values:
                raise OutOfRange("frame for node 0x%04x: %s field '%s' missing"
                                 % (node, TYPE_NAMES[ftype], spec[0]))
            value = values[spec[0]]
        else:
            value = values[i]
        code = ">" + spec[1]
        struct.pack_into(code, body, at, _raw(spec, value, node))
        at += struct.calcsize(code)
    try:
        struct.pack_into(HEADER_FORMAT, body, 0, (VERSION << 4) | ftype, node, boot, seq, time_us,
                         clock_source, clock_error_us)
    except (OverflowError, ValueError, struct.error) as exc:
        raise OutOfRange("frame for node 0x%04x: header field out of range (%s)" % (node, exc))
    out = bytes(body)
    return out + auth.tag(key, out)


def peek(data):
    """(type, node) of a frame, checked only as far as needed to pick the node's key."""
    if len(data) < HEADER_SIZE + TAG_SIZE:
        raise Truncated("frame truncated: %d bytes, header and tag need %d"
                        % (len(data), HEADER_SIZE + TAG_SIZE))
    version = data[0] >> 4
    ftype = data[0] & 0x0F
    node = (data[1] << 8) | data[2]
    if version != VERSION:
        raise UnknownVersion("frame from node 0x%04x: unknown version %d (this decoder speaks %d)"
                             % (node, version, VERSION))
    if ftype not in _TABLE:
        raise UnknownType("frame from node 0x%04x: unknown type %d" % (node, ftype))
    if len(data) != SIZES[ftype] and (ftype != HEARTBEAT or len(data) != _OLD_HEARTBEAT_SIZE):
        raise LengthMismatch("frame from node 0x%04x: %s frame is %d bytes, expected %d"
                             % (node, TYPE_NAMES[ftype], len(data), SIZES[ftype]))
    return ftype, node


def verify(data, key):
    """True when the tag matches (after peek's structural checks)."""
    peek(data)
    n = len(data) - TAG_SIZE
    return auth.tags_equal(auth.tag(key, data[:n]), bytes(data[n:]))


def decode(data, key):
    """Decode and authenticate a frame: the tag is checked before any field is trusted. To
    read a frame without its key (a sniffer), lwproto.hostframe.decode_unverified says so."""
    if not key:
        raise TypeError("decode needs the node's key")
    return _decode(data, key)


def _decode(data, key):
    # key None: the tag is not checked (hostframe.decode_unverified only)
    ftype, node = peek(data)
    n = len(data) - TAG_SIZE
    tag = bytes(data[n:])
    if key is not None and not auth.tags_equal(auth.tag(key, data[:n]), tag):
        raise BadTag("frame from node 0x%04x: bad tag" % node)
    _, node, boot, seq, time_us, clock_source, clock_error_us = struct.unpack_from(HEADER_FORMAT, data, 0)
    if clock_source > 2:
        raise OutOfRange("frame from node 0x%04x: clock_source %d outside 0..2" % (node, clock_source))
    if not seq:
        raise OutOfRange("frame from node 0x%04x: seq 0" % node)
    specs = fields(ftype)
    fmt = _FORMATS.get(ftype)
    if len(data) != SIZES[ftype]:     # an older length: the fields it has (section 7)
        specs = specs[:_OLD_HEARTBEAT_FIELDS]   # peek() let no other length through
        fmt = None
    raws = struct.unpack_from(fmt or _format(specs), data, HEADER_SIZE)
    values = []
    for spec, raw in zip(specs, raws):
        if raw < spec[3] or raw > spec[4]:
            raise OutOfRange("frame from node 0x%04x: %s %s=%d outside %d..%d"
                             % (node, TYPE_NAMES[ftype], spec[0], raw, spec[3], spec[4]))
        values.append(raw / spec[2] if spec[2] != 1 else raw)
    return Frame(ftype, node, boot, seq, time_us, clock_source, clock_error_us, tuple(values), tag)


if sys.implementation.name != "micropython":
    # CPython encodes with lwproto.hostframe's one precompiled pack (the same bytes and errors,
    # ~40 % faster; tests/test_hostframe.py holds the two equal): loading hostframe puts its
    # encode here. The one above is the node's; hostframe keeps it (reference_encode).
    from . import hostframe  # noqa: E402,F401
