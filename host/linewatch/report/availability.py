"""Each node's availability over the day, from what the store keeps: its state changes
(health_changes, made by the commission's health tracker) and the frames it sent.

A node is available while its state is one in which it listens and reports (online,
low_battery); late, offline, tampered, asleep and degraded are not. Its state at the start
of the window is the one its last change before set (or the one its first change in the
window left; with no change at all, online if it was heard). The window runs from the day's
start (or the node's registration, if later) to the day's end (or now, if sooner).
"""
from __future__ import annotations

from dataclasses import dataclass, field

LISTENING = frozenset({"online", "low_battery"})
HOUR_US = 3_600_000_000


@dataclass
class Availability:
    node: int
    segment: int
    window_us: int = 0             # how much of the day the node was expected to be there
    available_us: int = 0
    frames: int = 0                # frames received from it in the day
    heartbeats: int = 0
    per_hour: list[int] = field(default_factory=lambda: [0] * 24)   # frames received per UTC hour
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, state) in the window
    changes: int = 0               # state changes in the day

    @property
    def fraction(self) -> float | None:
        return self.available_us / self.window_us if self.window_us > 0 else None

    @property
    def last_state(self) -> str:
        return self.spans[-1][2] if self.spans else "unknown"


def availability(nodes, changes, frames, start_us: int, end_us: int, now_us: int) -> list[Availability]:
    """nodes: NodeRecords; changes: HealthChanges up to end_us (oldest first); frames: (node,
    received_us, type) received in [start_us, end_us)."""
    out = []
    stop = min(end_us, now_us)
    for n in nodes:
        a = Availability(n.id, n.segment)
        mine = [c for c in changes if c.node == n.id]
        heard = [(t, kind) for node, t, kind in frames if node == n.id]
        a.frames = len(heard)
        a.heartbeats = sum(1 for _, kind in heard if kind == "heartbeat")
        for t, _ in heard:
            a.per_hour[min(23, max(0, (t - start_us) // HOUR_US))] += 1
        begin = max(start_us, n.added_us or 0)
        if begin < stop:
            a.spans = _spans(mine, bool(heard), begin, stop)
            a.window_us = stop - begin
            a.available_us = sum(e - s for s, e, state in a.spans if state in LISTENING)
        a.changes = sum(1 for c in mine if start_us <= c.at_us < end_us)
        out.append(a)
    return out


def _spans(changes, heard: bool, begin: int, stop: int) -> list[tuple[int, int, str]]:
    before = [c for c in changes if c.at_us < begin]
    within = [c for c in changes if begin <= c.at_us < stop]
    if before:
        state = before[-1].new
    elif within:
        state = within[0].old if within[0].old in _KNOWN else "offline"
    else:
        state = "online" if heard else "offline"
    spans, at = [], begin
    for c in within:
        if c.at_us > at:
            spans.append((at, c.at_us, state))
        state, at = c.new, c.at_us
    spans.append((at, stop, state))
    return spans


_KNOWN = frozenset({"online", "late", "offline", "tampered", "low_battery", "asleep", "degraded"})
