# The durable queue's load (store.py): replay its segment files into the index when it is
# opened. A module of its own because a node opens its queue once per boot: lwnode.boot unloads
# it afterwards, like config and bootcount, so its code leaves RAM (firmware/README.md "Memory").
# Part of store: it works on a FrameQueue's index and segment bookkeeping.
import os

from .store import _file_size, _read_record, _remove, encode_record

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

# store.py's record kinds and magic (const there, so not importable on a board; a test holds
# the two modules to the same values)
_MAGIC = const(b"LQ")
_ACK = const(0x80)
_REMOVE = const(0x81)
_BASE = const(0x82)
_SCAN_CHUNK = const(64)


def load(q):
    """Fill FrameQueue `q` (just made, empty) from the segment files in its folder."""
    segments = []
    for name in os.listdir(q.path):
        if name.endswith(".seg") and name[:-4].isdigit():
            segments.append(int(name[:-4]))
        elif name.endswith(".tmp"):
            _remove("%s/%s" % (q.path, name))  # a compaction cut short by power loss
    segments.sort()
    # a segment that starts with BASE supersedes every older one (a finished compaction)
    for i in range(len(segments) - 1, 0, -1):
        name = q._segment_path(segments[i])
        with open(name, "rb") as f:
            record = _read_record(f, 0, _file_size(name))
        if record is not None and record[0] == _BASE:
            for old in segments[:i]:
                _remove(q._segment_path(old))
            segments = segments[i:]
            break
    overflow = []  # type: list
    for segment in segments:
        _replay(q, segment, overflow)
    if overflow:  # the capacity shrank since these were written: persist the evictions
        q._write([encode_record(_REMOVE, boot, seq, b"") for boot, seq in overflow])
    q._collect()


def _replay(q, segment, overflow):
    name = q._segment_path(segment)
    size = _file_size(name)
    q._segments.append(segment)
    q._seg_live[segment] = 0
    q._last_segment = segment
    q._active_records = 0
    q._roll = False
    live = q._live
    offset = 0
    with open(name, "rb") as f:
        while offset < size:
            record = _read_record(f, offset, size)
            if record is None:
                # skip to the next magic (a torn write, bit rot); new frames go to a fresh
                # segment, after no torn bytes
                pos = offset + 1
                while pos < size:
                    f.seek(pos)
                    chunk = f.read(_SCAN_CHUNK)
                    at = chunk.find(_MAGIC)
                    if at >= 0:
                        pos += at
                        break
                    if len(chunk) < 2:
                        pos = size
                        break
                    pos += len(chunk) - 1  # a magic may straddle two chunks
                pos = min(pos, size)
                q.damaged_bytes += pos - offset
                q._roll = True
                offset = pos
                continue
            kind, boot, seq = record[0], record[1], record[2]
            if kind == _ACK or kind == _REMOVE:
                q._drop_matching(boot, seq, kind == _ACK)
            elif kind < _ACK:
                victims = q._victims(kind)
                for i in victims:
                    overflow.append((live.boot[i], live.seq[i]))
                    q._count_removal(live.kind[i])
                q._drop(victims)
                live.append(boot, seq, kind, segment, offset)
                q._seg_live[segment] += 1
            offset = record[4]
            q._active_records += 1
    q._active_size = size
