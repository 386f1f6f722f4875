"""End-to-end acks and resend requests: the commission's side of "nothing lost".

An ack names the highest sequence of a (node, boot) below which everything is committed; the
node may then drop those frames from its flash. So acks are only built from what the store
has committed (`committed()` is called after the transaction), batched to at most one per
(node, boot) per interval.

A gap (frames missing below newer ones) is asked for at once with a resend command, retried
every `resend_interval_s`, and after `resend_tries` unanswered tries given up: the range is
forgotten (recorded as lost in the evidence log by the caller) so acks can advance past it.
A try that was answered in part (fewer frames missing than at the try before) starts the count
again: a node draining a long outage's backlog is still answering, and acking past its gap
would make it delete frames it still holds. And while frames of an asked range keep coming
(new ones or ones already stored) the node is still answering the last try: the next try waits
until the range has been quiet for `resend_interval_s`. A resend command makes the node send
the whole range again from its oldest frame, so asking every 5 s while a backlog of hundreds
takes longer than that to deliver restarted the node each time at the range's start: it never
got past the frames already stored, and the gap was given up with frames the node still held.
Nor is a try counted that the node may not have heard: after a try, the next one (or giving
up) waits until some frame of the node has come since. A node whose link is down mid-drain
sends nothing, and giving its range up then would ack past frames it still holds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from lwproto import const, replay
from lwproto import frame as wire
from lwproto import topic as topics

Message = tuple[str, bytes]


@dataclass
class _Gap:
    node: int
    boot: int
    first: int
    last: int
    tries: int = 0
    next_at_us: int = 0
    left: int = -1          # frames still missing at the last try (-1: not asked yet)
    heard: bool = True      # a frame of the node came since the last try


class Downlink:
    """Builds the commission's downlink frames: boot = the aggregator's persisted boot counter,
    seq growing within that boot, tagged with the target node's key."""

    def __init__(self, boot: int, key_of: Callable[[int], bytes], segment_of: Callable[[int], int | None],
                 clock_source: int = const.CLOCK_NTP, clock_error_us: int = 1000) -> None:
        self.boot = boot & 0xFFFF
        self.seq = 0
        self.key_of = key_of
        self.segment_of = segment_of
        self.clock_source = clock_source
        self.clock_error_us = clock_error_us

    def frame(self, node: int, ftype: int, values: dict, now_us: int | None = None) -> Message | None:
        segment = self.segment_of(node)
        if segment is None:
            return None   # removed from the registry since: nothing to say to it
        self.seq += 1
        now_us = time.time_ns() // 1000 if now_us is None else now_us
        data = wire.encode(self.key_of(node), ftype, node, self.boot, self.seq, now_us,
                           self.clock_source, self.clock_error_us, values)
        return topics.downlink(segment, node), data

    def ack(self, node: int, boot: int, seq: int) -> Message | None:
        return self.frame(node, const.ACK, {"boot": boot, "seq": seq})

    def resend(self, node: int, boot: int, first: int, last: int) -> Message | None:
        return self.frame(node, const.COMMAND, {"command": const.CMD_RESEND, "event_class": 0, "threshold": 0,
                                                "refractory_ms": 0, "boot": boot, "first_seq": first,
                                                "last_seq": last, "delay_s": 0})


class Acknowledger:
    def __init__(self, guard: replay.ReplayGuard, downlink: Downlink, resend_interval_s: float = 5.0,
                 resend_tries: int = 3) -> None:
        self.guard = guard
        self.downlink = downlink
        self.resend_interval_us = int(resend_interval_s * 1e6)
        self.resend_tries = resend_tries
        self._dirty: set[tuple[int, int]] = set()
        self._acked: dict[tuple[int, int], int] = {}
        self._gaps: list[_Gap] = []
        self._asked: dict[int, list[_Gap]] = {}   # node -> its gaps asked for
        self.acks_sent = 0
        self.resends_sent = 0
        self.ranges_lost = 0

    def committed(self, node: int, boot: int) -> None:
        """A frame of (node, boot) is durably stored: an ack is due at the next flush."""
        self._dirty.add((node, boot))

    def replayed(self, node: int, boot: int) -> None:
        """A frame already stored came again: the node missed our ack, so say it again."""
        self._acked.pop((node, boot), None)
        self._dirty.add((node, boot))

    def arrived(self, node: int, boot: int, seq: int, now_us: int) -> None:
        """A frame came (stored now, or already): the node's gaps asked for were heard, and
        one whose range holds it waits `resend_interval_s` more before its next try, for the
        node is still answering."""
        gaps = self._asked.get(node)
        if gaps:
            later = now_us + self.resend_interval_us
            for g in gaps:
                g.heard = True
                if g.boot == boot and g.first <= seq <= g.last and g.next_at_us < later:
                    g.next_at_us = later

    def gap(self, node: int, boot: int, first: int, last: int, now_us: int) -> None:
        self._gaps.append(_Gap(node, boot, first, last, 0, now_us))

    def track_existing(self, nodes: list[int], now_us: int) -> None:
        """After a restart: the gaps the rebuilt guard still knows are asked for again."""
        for node in nodes:
            for boot, first, last in self.guard.gaps(node):
                self.gap(node, boot, first, last, now_us)
                self._dirty.add((node, boot))

    def give_ups(self, now_us: int) -> list[tuple[int, int, int, int]]:
        """Ranges asked for `resend_tries` times in vain: forgotten now; the caller records them
        as lost (and commits that) before the next `acks()`."""
        lost = []
        for g in self._gaps:
            self._progress(g)
            if g.tries >= self.resend_tries and now_us >= g.next_at_us and g.heard:
                for first, last in self._missing(g):
                    self.guard.forget(g.node, g.boot, first, last)
                    lost.append((g.node, g.boot, first, last))
                    self._dirty.add((g.node, g.boot))
                g.tries = -1
        if lost:
            self._gaps = [g for g in self._gaps if g.tries >= 0]
            self._index()
        self.ranges_lost += len(lost)
        return lost

    def resends(self, now_us: int) -> list[Message]:
        out = []
        kept = []
        for g in self._gaps:
            missing = self._missing(g)
            if not missing:
                continue   # filled
            kept.append(g)
            if now_us < g.next_at_us:
                continue
            self._progress(g, missing)
            if g.tries >= self.resend_tries or not g.heard:
                continue
            message = self.downlink.resend(g.node, g.boot, missing[0][0], missing[-1][1])
            g.tries += 1
            g.heard = False
            g.left = _count(missing)
            g.next_at_us = now_us + self.resend_interval_us
            if message:
                out.append(message)
        self._gaps = kept
        self._index()
        self.resends_sent += len(out)
        return out

    def _index(self) -> None:
        asked: dict[int, list[_Gap]] = {}
        for g in self._gaps:
            if g.left >= 0:     # asked at least once (its tries may have started again since)
                asked.setdefault(g.node, []).append(g)
        self._asked = asked

    def acks(self) -> list[Message]:
        out = []
        for node, boot in sorted(self._dirty):
            seq = self.guard.contiguous(node, boot)
            if seq <= 0 or self._acked.get((node, boot)) == seq:
                continue
            message = self.downlink.ack(node, boot, seq)
            if message:
                self._acked[(node, boot)] = seq
                out.append(message)
        self._dirty.clear()
        self.acks_sent += len(out)
        return out

    def _progress(self, g: _Gap, missing: list[tuple[int, int]] | None = None) -> None:
        """Frames of the gap came since the last try: the node is answering, count anew."""
        if g.tries > 0 and g.left >= 0:
            left = _count(self._missing(g) if missing is None else missing)
            if left < g.left:
                g.tries = 0
                g.left = left

    def _missing(self, g: _Gap) -> list[tuple[int, int]]:
        out = []
        for boot, first, last in self.guard.gaps(g.node):
            if boot == g.boot and first <= g.last and last >= g.first:
                out.append((max(first, g.first), min(last, g.last)))
        return out


def _count(ranges: list[tuple[int, int]]) -> int:
    return sum(last - first + 1 for first, last in ranges)
