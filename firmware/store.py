"""The node's durable queue of outgoing frames: a bounded FIFO in flash that survives reboot and
power loss mid-write. A frame leaves it only when the commission's ack names its sequence.

On flash the queue is a log, written append-only into a few numbered segment files
(`<dir>/00000007.seg`). Every record is

    header  >HHHIB  magic "LQ", frame length, boot u16, seq u32, kind u8   (11 bytes)
    frame   the frame bytes
    crc     u32 CRC-32 of header + frame

so a write torn by power loss fails its CRC and is skipped on load (the loader resyncs on the
next magic). Acks and removals are records too (kinds >= 0x80), so nothing is ever rewritten in
place: replaying the segments in order rebuilds the queue. Why a log and not a cursor file
rewritten by temp + rename: an ack then costs one short append instead of a whole-file rewrite
(flash wear), and the same CRC covers it.

A segment is deleted once none of its frames is pending. If an old frame pins its segment while
the log keeps growing (a long outage), the live frames are compacted into one new segment
whose first record (BASE) says that every older segment is superseded; the copy is written to
a temp file and renamed, so a power cut leaves either the old segments or the new one.

Every append (frames, acks, removals) is flushed before it returns - the same as closing the
file, so what a power cut can lose is the same - but the active segment stays open between
appends (`close()` closes it): opening it per frame was a third of the queue's cost.

Memory: the index of pending frames lives in arrays allocated once at open (16 bytes per
record of capacity), so a long outage neither grows nor fragments the heap; frames stay in flash
until `pending()` reads them. The uplink's "published on this connection" mark is one byte of
that index per frame (`pending(count, True)` hands out unmarked frames and marks them,
`mark()` sets or clears them), not a set of (boot, seq) in RAM: with the commission down, a set of
256 such pairs and the re-reads of the whole queue it needed took ~5 KB of a 128 KB heap.
"""
import os
import struct
from array import array

try:
    from binascii import crc32
except ImportError:  # boards built without binascii.crc32
    def crc32(data, value=0):
        value ^= 0xFFFFFFFF
        for byte in data:
            value ^= byte
            for _ in range(8):
                value = (value >> 1) ^ (0xEDB88320 if value & 1 else 0)
        return value ^ 0xFFFFFFFF

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

EVENT = const(1)
HEARTBEAT = const(2)
BIRTH = const(3)
SLEEP = const(5)

_ACK = const(0x80)  # boot, seq: every pending frame of that boot with seq <= this is acked
_REMOVE = const(0x81)  # boot, seq: that one frame was coalesced or dropped
_BASE = const(0x82)  # first record of a compacted segment: older segments are superseded
_BATCH = const(16)  # removals written, and index entries dropped, at a time

# record kinds and magic: storeload.py repeats them (a test holds the two to the same values)
_MAGIC = const(b"LQ")
_HEADER = const(">2sHHIB")
HEADER_SIZE = const(11)
_CRC_SIZE = const(4)
_MAX_FRAME = const(1024)


class StoreError(Exception):
    """The queue cannot do what was asked; the message says what and where."""


def encode_record(kind, boot, seq, frame):
    head = struct.pack(_HEADER, _MAGIC, len(frame), boot, seq, kind)
    crc = crc32(frame, crc32(head)) & 0xFFFFFFFF
    return head + bytes(frame) + struct.pack(">I", crc)


def _decode_header(head):
    """(frame length, boot, seq, kind) or None if this is not a record header."""
    if len(head) < HEADER_SIZE:
        return None
    magic, length, boot, seq, kind = struct.unpack(_HEADER, head)
    if magic != _MAGIC or length > _MAX_FRAME:
        return None
    return length, boot, seq, kind


def _read_record(f, offset, end):
    """(kind, boot, seq, frame, end offset) of a valid record at offset in a file of `end`
    bytes, else None."""
    f.seek(offset)
    head = f.read(HEADER_SIZE)
    parsed = _decode_header(head)
    if parsed is None:
        return None
    length, boot, seq, kind = parsed
    stop = offset + HEADER_SIZE + length + _CRC_SIZE
    if stop > end:
        return None
    rest = f.read(length + _CRC_SIZE)
    frame = rest[:length]
    if len(rest) != length + _CRC_SIZE or \
            struct.unpack(">I", rest[length:])[0] != crc32(frame, crc32(head)) & 0xFFFFFFFF:
        return None
    return kind, boot, seq, frame, stop


def _file_size(path):
    return os.stat(path)[6]


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


class _Index:
    """Pending frames in append order, in parallel arrays of fixed size."""

    def __init__(self, capacity):
        zeros = [0] * capacity
        self.boot = array("H", zeros)
        self.seq = array("I", zeros)
        self.kind = bytearray(capacity)
        self.sent = bytearray(capacity)   # 1: handed to the uplink on this connection
        self.segment = array("I", zeros)
        self.offset = array("I", zeros)
        self.n = 0

    def __len__(self):
        return self.n

    def append(self, boot, seq, kind, segment, offset):
        i = self.n
        self.boot[i] = boot
        self.seq[i] = seq
        self.kind[i] = kind
        self.sent[i] = 0
        self.segment[i] = segment
        self.offset[i] = offset
        self.n = i + 1

    def remove(self, indices):
        """Remove the records at the sorted `indices`, keeping the others in order."""
        j = 0
        k = 0
        for i in range(self.n):
            if k < len(indices) and indices[k] == i:
                k += 1
                continue
            if i != j:
                self.boot[j] = self.boot[i]
                self.seq[j] = self.seq[i]
                self.kind[j] = self.kind[i]
                self.sent[j] = self.sent[i]
                self.segment[j] = self.segment[i]
                self.offset[j] = self.offset[i]
            j += 1
        self.n = j

    def matching(self, boot, seq, upto, count):
        """Up to `count` indices of `boot` with seq == `seq` (or <= it when `upto`)."""
        out = []
        for i in range(self.n):
            if self.boot[i] == boot and (self.seq[i] == seq or (upto and self.seq[i] < seq)):
                out.append(i)
                if len(out) >= count:
                    break
        return out


class FrameQueue:
    """Bounded FIFO of (boot, seq, kind, frame) in the folder `path`.

    When full, older heartbeats are coalesced first (the newest is kept), then the oldest
    event is dropped; `coalesced_heartbeats` and `dropped_events` count them for the next
    heartbeat. Counters cover the time since this object was opened."""

    def __init__(self, path, records, segments=4, segment_records=None):
        if records < 2:
            raise ValueError("queue capacity must be at least 2 records, got %r"
                             % (records,))
        if segments < 2:
            raise ValueError("queue needs at least 2 segment files, got %r" % (segments,))
        self.path = path.rstrip("/") or "/"
        self.capacity = records
        self.max_segments = segments
        self.segment_records = segment_records or max(8, records // (segments - 1))
        self.dropped_events = 0
        self.dropped_other = 0
        self.coalesced_heartbeats = 0
        self.damaged_bytes = 0  # skipped on load: torn writes, bit rot
        self.damaged_records = 0  # found unreadable after load
        self._live = _Index(records)
        self._segments = []  # segment numbers, oldest first; the last one is appended to
        self._seg_live = {}
        self._last_segment = 0
        self._active_records = 0
        self._active_size = 0
        self._roll = False
        self._out = None  # the active segment's file, open for appending
        self._out_segment = 0
        try:
            os.mkdir(self.path)
        except OSError:
            pass  # exists (MicroPython has no exist_ok)
        from . import storeload   # boot-only code: lwnode.boot unloads it
        storeload.load(self)

    @property
    def depth(self):
        return len(self._live)

    # ---- public API ---------------------------------------------------------------------

    def append(self, boot, seq, kind, frame):
        """Store one frame durably; makes room first when the queue is full."""
        if not 0 <= boot <= 0xFFFF or not 0 <= seq <= 0xFFFFFFFF:
            raise ValueError("queue: boot %r / seq %r out of range" % (boot, seq))
        if not 1 <= kind < _ACK:
            raise ValueError("queue: frame kind %r out of range 1..127" % (kind,))
        if len(frame) > _MAX_FRAME:
            raise ValueError("queue: frame of %d bytes exceeds %d" % (len(frame), _MAX_FRAME))
        while True:  # room first, a batch of removals at a time
            self._ensure_segment()  # a compaction here renumbers the index, so do it first
            victims = self._victims(kind)
            if not victims:
                break
            live = self._live
            self._write([encode_record(_REMOVE, live.boot[i], live.seq[i], b"") for i in victims])
            for i in victims:
                self._count_removal(live.kind[i])
            self._drop(victims)
        self._ensure_segment()
        segment, offset = self._write([encode_record(kind, boot, seq, frame)])
        self._live.append(boot, seq, kind, segment, offset)
        self._seg_live[segment] += 1
        self._collect()

    def pending(self, count=8, mark=False):
        """Up to `count` oldest frames not yet acked: [(boot, seq, kind, frame)]. With `mark`
        (the uplink): only frames not marked yet, and they are marked as handed out."""
        live = self._live
        chosen = []
        for i in range(len(live)):
            if len(chosen) >= count:
                break
            if not (mark and live.sent[i]):
                chosen.append(i)
        out = []
        damaged = []
        for i, frame in self._frames(chosen):
            if frame is None:
                damaged.append(i)
            else:
                if mark:
                    live.sent[i] = 1
                out.append((live.boot[i], live.seq[i], live.kind[i], frame))
        self.damaged_records += len(damaged)
        self._drop(damaged)
        return out

    def mark(self, boot, first_seq, last_seq, sent):
        """Set the uplink's mark of `boot`'s frames first_seq..last_seq to `sent` (0 or 1;
        every boot's when boot is -1: a new connection clears them all); returns how many
        frames changed."""
        live = self._live
        count = 0
        for i in range(len(live)):
            if live.sent[i] != sent and (boot < 0 or live.boot[i] == boot and
                                         first_seq <= live.seq[i] <= last_seq):
                live.sent[i] = sent
                count += 1
        return count

    def close(self):
        """Close the active segment's file (appends reopen it)."""
        out, self._out = self._out, None
        if out is not None:
            try:
                out.close()
            except OSError:
                pass

    def ack(self, boot, seq):
        """Remove the pending frames of `boot` with seq <= `seq`; returns how many."""
        seq = min(seq, 0xFFFFFFFF)
        if not self._live.matching(boot, seq, True, 1):
            return 0
        self._write([encode_record(_ACK, boot, seq, b"")])
        count = self._drop_matching(boot, seq, True)
        self._collect()
        return count

    # ---- the index ----------------------------------------------------------------------

    def _frames(self, indices):
        """(index, frame) of the pending records at `indices` (ascending); frame None if
        unreadable."""
        live = self._live
        f = None
        opened = None
        size = 0
        try:
            for i in indices:
                segment = live.segment[i]
                if segment != opened:
                    if f is not None:
                        f.close()
                    name = self._segment_path(segment)
                    f = open(name, "rb")
                    opened = segment
                    size = _file_size(name)
                record = _read_record(f, live.offset[i], size)
                if record is None or record[1] != live.boot[i] or record[2] != live.seq[i]:
                    yield i, None  # flash changed under us since load
                else:
                    yield i, record[3]
        finally:
            if f is not None:
                f.close()

    def _drop_matching(self, boot, seq, upto):
        """Drop the pending frames an ack (upto) or a removal names, a batch at a time."""
        count = 0
        while True:
            batch = self._live.matching(boot, seq, upto, _BATCH)
            if not batch:
                return count
            self._drop(batch)
            count += len(batch)

    def _drop(self, indices):
        for i in indices:
            self._seg_live[self._live.segment[i]] -= 1
        if indices:
            self._live.remove(indices)

    def _victims(self, kind):
        """Sorted indices to remove so one more frame fits, at most _BATCH of them (callers
        repeat until none are left): older heartbeats are coalesced first (the newest stays
        when another kind comes), then the oldest events go, and only if no event is left, the
        oldest records of any kind. Never a list the size of the queue: a full queue of 256
        heartbeats made 2 KB lists on the 64-bit port and ran out of a 128K heap."""
        live = self._live
        excess = len(live) + 1 - self.capacity
        if excess <= 0:
            return []
        newest = -1
        if kind != HEARTBEAT:
            for i in range(len(live) - 1, -1, -1):
                if live.kind[i] == HEARTBEAT:
                    newest = i
                    break
        victims = []
        for i in range(len(live)):
            if live.kind[i] == HEARTBEAT and i != newest:
                victims.append(i)
                if len(victims) >= _BATCH:
                    return victims
        excess = min(excess, _BATCH)
        for wanted in (EVENT, 0):
            for i in range(len(live)):
                if len(victims) >= excess:
                    break
                if (not wanted or live.kind[i] == wanted) and i not in victims:
                    victims.append(i)
        victims.sort()
        return victims

    def _count_removal(self, kind):
        if kind == HEARTBEAT:
            self.coalesced_heartbeats += 1
        elif kind == EVENT:
            self.dropped_events += 1
        else:
            self.dropped_other += 1

    # ---- segments on flash --------------------------------------------------------------

    def _segment_path(self, segment):
        return "%s/%08d.seg" % (self.path, segment)

    def _write(self, records):
        """Append records to the active segment; returns (segment, offset of the last one)."""
        self._ensure_segment()
        segment = self._segments[-1]
        name = self._segment_path(segment)
        size = 0
        try:
            if self._out is None or self._out_segment != segment:
                self.close()
                self._out = open(name, "ab", 0)  # unbuffered (CPython): no copy, flushed below
                self._out_segment = segment
            # record by record, not joined: a batch of 16 removals joined was one block of 241
            # bytes, which a running node's fragmented heap may not have ("heartbeat not
            # stored: MemoryError allocating 241 bytes" once the queue is full, at 126K)
            for record in records:
                self._out.write(record)
                size += len(record)
            self._out.flush()  # littlefs/FAT commit here, as a close would
        except OSError as exc:
            self.close()
            self._roll = True  # whatever reached flash may be torn: never append after it
            raise StoreError("queue: write to %s failed: %r" % (name, exc))
        last = self._active_size + size - len(records[-1])
        self._active_size += size
        self._active_records += len(records)
        return segment, last

    def _ensure_segment(self):
        """Start a new active segment when there is none, it was torn, or it is full (after
        compacting when the segment files are at their limit)."""
        if self._segments and not self._roll and self._active_records < self.segment_records:
            return
        if len(self._segments) >= self.max_segments:
            self._compact()
            if not self._roll and self._active_records < self.segment_records:
                return   # the compacted segment has room
        self.close()
        self._last_segment += 1
        segment = self._last_segment
        _remove(self._segment_path(segment))
        self._segments.append(segment)
        self._seg_live[segment] = 0
        self._active_records = 0
        self._active_size = 0
        self._roll = False

    def _collect(self):
        """Delete segments with nothing pending, oldest first; the active one only when empty."""
        while self._segments and self._seg_live[self._segments[0]] == 0:
            if len(self._segments) == 1 and len(self._live):
                break
            segment = self._segments.pop(0)
            del self._seg_live[segment]
            if segment == self._out_segment:
                self.close()
            _remove(self._segment_path(segment))
            if not self._segments:
                self._active_records = 0
                self._active_size = 0
                self._roll = False

    def _compact(self):
        """Copy the pending frames into one new segment that supersedes all older ones."""
        self.close()
        segment = self._last_segment + 1
        tmp = "%s/compact.tmp" % self.path
        live = self._live
        damaged = []
        with open(tmp, "wb") as out:
            base = encode_record(_BASE, 0, 0, b"")
            out.write(base)
            for i, frame in self._frames(range(len(live))):
                if frame is None:
                    damaged.append(i)
                    continue
                out.write(encode_record(live.kind[i], live.boot[i], live.seq[i], frame))
        name = self._segment_path(segment)
        os.rename(tmp, name)
        for old in self._segments:
            _remove(self._segment_path(old))
        self.damaged_records += len(damaged)
        live.remove(damaged)
        # the new offsets from the copy's headers: no capacity-sized list on the heap
        offset = len(base)
        with open(name, "rb") as f:
            for i in range(len(live)):
                live.segment[i] = segment
                live.offset[i] = offset
                f.seek(offset)
                offset += HEADER_SIZE + _decode_header(f.read(HEADER_SIZE))[0] + _CRC_SIZE
        self._last_segment = segment
        self._segments = [segment]
        self._seg_live = {segment: len(live)}
        self._active_records = len(live) + 1
        self._active_size = offset
        self._roll = False
