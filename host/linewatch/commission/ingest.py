"""Ingest: from (topic, bytes) to an accepted frame or a refusal with a reason. No I/O here:
the aggregator stores what comes out, so this module is tested without a broker.

Checks, in order (the first failure names the refusal):
oversized -> bad_topic -> truncated / unknown_version / unknown_type / length (structure)
-> unknown_node -> bad_tag -> out_of_range -> wrong_topic -> segment_mismatch (a birth naming
another segment than its topic's) -> replay / old_boot.
The tag is checked before any field is trusted; the topic is compared after, so a forger
cannot learn anything about a node's topic from the refusal.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import NamedTuple

from lwproto import const, hostframe, replay
from lwproto import frame as wire
from lwproto import topic as topics
from lwproto.errors import ProtocolError
from lwproto.frame import Frame

from linewatch import keys
from linewatch.commission.quarantine import RefusalLog, trimmed
from linewatch.commission.registry import Registry
from linewatch.commission.store import Refusal, Store

log = logging.getLogger("linewatch.commission.ingest")

OVERSIZED = "oversized"
UNKNOWN_NODE = "unknown_node"
WRONG_TOPIC = "wrong_topic"
SEGMENT_MISMATCH = "segment_mismatch"
TOPICS_KEPT = 65536
AFTER_PEEK = ("bad_tag", "out_of_range")
WHY = {replay.REPLAY: "already stored", replay.OLD_BOOT: "a boot older than every boot tracked",
       replay.GIVEN_UP: "in a range given up as lost (recorded in the evidence log)"}
DEATH_WHY = "already heard, or the will of an older connection"   # decode's refusals once the structure is sound
KIND_OF_TYPE, UPLINK_TYPES, TYPE_NAMES = topics.KIND_OF_TYPE, frozenset(const.UPLINK_TYPES), const.TYPE_NAMES


class Accepted(NamedTuple):   # a tuple: one is made per frame on the hot path
    frame: Frame
    topic: str
    raw: bytes
    received_us: int
    segment: int
    gap: tuple[int, int, int] | None   # (boot, first, last) newly missing, to ask a resend for


class Ingest:
    def __init__(self, registry: Registry, master_key: bytes, guard: replay.ReplayGuard | None,
                 refusal_log: RefusalLog | None = None) -> None:
        self.registry = registry
        self._master = master_key
        self.guard = guard
        self.refused: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.ignored = 0
        self.refusal_log = refusal_log or RefusalLog()
        self._keys: dict[int, bytes] = {}
        self._topics: dict[str, tuple[int, int, str]] = {}

    def parse_topic(self, topic: str) -> tuple[int, int, str]:
        """(segment, node, kind), remembered: a node publishes on the same few topics all day.
        Only well-formed topics are kept, and only so many, so junk cannot grow the cache."""
        parsed = self._topics.get(topic)
        if parsed is None:
            parsed = topics.parse(topic)
            if len(self._topics) >= TOPICS_KEPT:
                self._topics.clear()
            self._topics[topic] = parsed
        return parsed

    def key_of(self, node: int) -> bytes:
        key = self._keys.get(node)
        if key is None:
            key = self._keys[node] = keys.derive(self._master, node)
        return key

    def process(self, topic: str, raw: bytes, received_us: int) -> Accepted | Refusal | None:
        """Accepted, Refusal, or None for our own downlink frames seen through the wildcard."""
        try:
            return self._check(topic, raw, received_us)
        except _Refused as r:
            refusal = trimmed(received_us, topic, raw, r.reason, r.detail, r.node)
        except Exception as exc:  # never let one frame stop the service: refuse and go on
            log.exception("ingest failed on a frame from %s", topic[:200])
            refusal = trimmed(received_us, topic, raw, "internal", repr(exc), -1)
        self.refused[refusal.reason] += 1
        self.refusal_log.note(refusal)
        return refusal

    def _check(self, topic: str, raw: bytes, received_us: int) -> Accepted | None:
        if len(raw) > wire.MAX_FRAME_SIZE:
            raise _Refused(OVERSIZED, f"{len(raw)} bytes, the largest frame is {wire.MAX_FRAME_SIZE}")
        parsed = self._topics.get(topic)
        if parsed is None:
            try:
                parsed = self.parse_topic(topic)
            except ProtocolError as exc:
                raise _Refused(exc.reason, str(exc))
        segment, topic_node, kind = parsed
        if kind == topics.DOWN:
            self.ignored += 1
            return None
        # decode checks the structure first (what peek checks), so the usual frame is peeked
        # once; a frame from no registered node is peeked alone to name the right refusal
        node = (raw[1] << 8) | raw[2] if len(raw) >= 3 else -1
        record = self.registry.get(node) if node >= 0 else None
        if record is None:
            try:
                ftype, node = wire.peek(raw)
            except ProtocolError as exc:
                raise _Refused(exc.reason, str(exc), topic_node)
            raise _Refused(UNKNOWN_NODE, f"frame from node 0x{node:04x}: not in the registry", node)
        try:
            frame = hostframe.decode(raw, self._keys.get(node) or self.key_of(node))
        except ProtocolError as exc:
            raise _Refused(exc.reason, str(exc), node if exc.reason in AFTER_PEEK else topic_node)
        ftype = frame.ftype
        if node != topic_node or KIND_OF_TYPE.get(ftype) != kind or segment != record.segment:
            raise _Refused(WRONG_TOPIC, f"frame from node 0x{node:04x} ({frame.type_name()}, segment "
                                        f"{record.segment}) arrived on {topic}", node)
        if ftype not in UPLINK_TYPES:
            raise _Refused(WRONG_TOPIC, f"frame from node 0x{node:04x}: {frame.type_name()} is not an uplink type", node)
        if ftype == const.BIRTH and frame.field("segment") != segment:
            raise _Refused(SEGMENT_MISMATCH, f"birth from node 0x{node:04x} names segment {frame.field('segment')}"
                                             f" but arrived on {topic}", node)
        gap = self._replay(frame)
        self.accepted[TYPE_NAMES[ftype]] += 1
        return Accepted(frame, topic, raw if type(raw) is bytes else bytes(raw), received_us, segment, gap)

    def _replay(self, frame: Frame) -> tuple[int, int, int] | None:
        if self.guard is None:   # shared ingest: the store refuses duplicates, owners track streams
            return None
        node, boot, seq = frame.node, frame.boot, frame.seq
        verdict, gap = self.guard.admit_frame(node, frame.ftype, boot, seq)
        if verdict != replay.ACCEPT:
            why = WHY.get(verdict, verdict) if frame.ftype != const.DEATH else DEATH_WHY
            raise _Refused(verdict, f"{frame.type_name()} frame from node 0x{node:04x} boot {boot} seq {seq}: "
                                    f"{why}", node)
        return gap


class _Refused(Exception):
    def __init__(self, reason: str, detail: str, node: int = -1) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.node = reason, detail, node


def rebuild_guard(store: Store, registry: Registry, boots_kept: int = 4) -> replay.ReplayGuard:
    """The replay guard as it was before a restart, from the evidence log itself."""
    guard = replay.ReplayGuard(boots_kept)
    for record in registry.list():
        node = record.id
        for boot in store.recent_boots(node, boots_kept):
            for seq in store.stream_seqs(node, boot):
                guard.accept(node, boot, seq)
        birth = store.last_birth(node)
        if birth:
            guard.note_birth(node, *birth)
        for death in store.deaths(node):
            guard.note_death(node, *death)
    for node, boot, first, last in store.lost_ranges():
        guard.forget(node, boot, first, last)
    return guard
