"""What the commission keeps of the frames it refuses, and what it says about them: bounded,
so that garbage can fill neither its disk nor its log.

The source of a refusal is the publishing client as the broker knows it: the node in the topic
(the generated ACL lets each node's broker user publish only on its own topics), or -1 for a
topic that names no node. Never a node id written inside the frame: garbage chooses those.

- Quarantine keeps a refused frame's bytes (for the record and for analysis) for at most
  `per_source` refusals per (reason, source) and `total` in all, counted over the life of the
  database; every refusal beyond is only counted (Batch.refusals_dropped), so `stats` still
  shows every refusal by reason. A refusal's stored topic, bytes and detail are cut to a
  frame's worth, so one kept row is small whatever was sent.
- RefusalLog writes one line per (reason, source) per interval, with how many were left
  unsaid since the last.
"""
from __future__ import annotations

import logging
import time
from collections import Counter

from lwproto import frame as wire
from lwproto import topic as topics
from lwproto.errors import ProtocolError

from linewatch.commission.store import Refusal

log = logging.getLogger("linewatch.commission.ingest")

NO_NODE = -1
TOPIC_KEPT = 200        # characters of a refused frame's topic kept
DETAIL_KEPT = 300


def source_of(topic: str) -> int:
    """The node whose broker user published on `topic`, or NO_NODE."""
    try:
        return topics.parse(topic)[1]
    except ProtocolError:
        return NO_NODE


def trimmed(received_us: int, topic: str, raw: bytes, reason: str, detail: str, node: int) -> Refusal:
    """A refusal as kept: at most a frame's worth of bytes, a short topic and detail."""
    return Refusal(received_us, topic[:TOPIC_KEPT], bytes(raw[:wire.MAX_FRAME_SIZE]), reason,
                   detail[:DETAIL_KEPT], node)


class Quarantine:
    def __init__(self, per_source: int, total: int) -> None:
        self.per_source, self.total = per_source, total
        self.kept: Counter[tuple[str, int]] = Counter()
        self.kept_total = 0
        self._dropped: Counter[tuple[str, int]] = Counter()
        self.dropped_total = 0

    def load(self, counts: list[tuple[str, str, int]]) -> None:
        """What the database already keeps: (reason, topic, rows) from Store.quarantine_counts."""
        for reason, topic, rows in counts:
            self.kept[(reason, source_of(topic))] += rows
            self.kept_total += rows

    def admit(self, refusal: Refusal) -> bool:
        """True: keep it; False: counted as dropped (taken into the next batch by take_dropped)."""
        key = (refusal.reason, source_of(refusal.topic))
        if self.kept_total < self.total and self.kept[key] < self.per_source:
            self.kept[key] += 1
            self.kept_total += 1
            return True
        self._dropped[key] += 1
        self.dropped_total += 1
        return False

    def take_dropped(self) -> dict[tuple[str, int], int]:
        out = dict(self._dropped)
        self._dropped.clear()
        return out

    def restore(self, dropped: dict[tuple[str, int], int]) -> None:
        """A batch that was not committed: count its drops again for the next one."""
        self._dropped.update(dropped)


class RefusalLog:
    """One log line per (reason, source) per interval: a flood of bad frames must not flood the log."""

    def __init__(self, interval_s: float = 60.0) -> None:
        self.interval_s = interval_s
        self._last: dict[tuple[str, int], float] = {}
        self._suppressed: Counter[tuple[str, int]] = Counter()

    def note(self, refusal: Refusal) -> None:
        key = (refusal.reason, source_of(refusal.topic))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._suppressed[key] += 1
            return
        if len(self._last) > 100_000:     # sources are nodes, so this is a bound that never bites
            self._last.clear()
        self._last[key] = now
        more = self._suppressed.pop(key, 0)
        log.warning("refused %s on %s: %s%s", refusal.reason, refusal.topic[:TOPIC_KEPT] or "?",
                    refusal.detail[:DETAIL_KEPT], f" ({more} more like it since the last line)" if more else "")
