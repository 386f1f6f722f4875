"""The day's data from the store, in the report's terms: every incident of the day placed,
categorized and judged; counts by category, segment and side; the nodes and their availability;
the evidence chain's statement. Read only; one pass; both store backends (Store interface).
"""
from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from lwproto import frame as wire

from linewatch import keys
from linewatch.commission import evidence
from linewatch.commission.incidents import incident_dicts
from linewatch.commission.store import NodeRecord, Store
from linewatch.geo import ContactLine
from linewatch.report import places as placing
from linewatch.report.availability import Availability, availability
from linewatch.report.categories import CATEGORIES, category, shots
from linewatch.report.day import Day

FRAME_TYPES = ("event", "heartbeat", "birth", "death", "sleep")
UNDECIDED = "undecided"


@dataclass(frozen=True)
class Entry:
    """One incident of the day as the report tells it."""
    incident: dict
    category: str
    segment: int | None
    side: str                       # the config's name for the side, or "undecided"
    side_probability: float | None
    confidence: float | None        # the median of its reports' detector confidences
    placing: placing.Placing | None

    @property
    def id(self) -> str:
        return str(self.incident["id"])

    @property
    def time_us(self) -> int:
        return int(self.incident.get("time_utc_us") or 0)

    @property
    def status(self) -> str:
        return str(self.incident.get("status") or "new")

    @property
    def withdrawn(self) -> bool:
        return self.status == "withdrawn"

    @property
    def nodes(self) -> int:
        return len(self.incident.get("nodes") or ())

    @property
    def shots(self) -> int:
        return shots(self.incident)


@dataclass(frozen=True)
class Statement:
    ok: bool
    head_checked: bool
    text: str


@dataclass
class DayData:
    day: Day
    made_us: int
    sides: tuple[str, str]
    line: tuple[tuple[float, float], ...]
    entries: list[Entry]                    # every incident of the day, withdrawn ones too
    nodes: list[NodeRecord]
    availability: list[Availability]
    statement: Statement
    references: list[placing.Reference]
    references_note: str
    counts: dict[str, int] = field(default_factory=dict)                 # category -> incidents
    by_segment: dict[int | None, Counter] = field(default_factory=dict)  # segment -> category counts
    by_side: dict[str, Counter] = field(default_factory=dict)            # side name -> category counts

    @property
    def counted(self) -> list[Entry]:
        """The incidents counted: not withdrawn (a withdrawn one's reports joined others)."""
        return [e for e in self.entries if not e.withdrawn]

    @property
    def withdrawn(self) -> list[Entry]:
        return [e for e in self.entries if e.withdrawn]


def gather(store: Store, config, day: Day, master: bytes | None, key_problem: str = "",
           now_us: int | None = None) -> DayData:
    """Everything the report and the exports say about `day`. `master`: the commission's key
    (None with `key_problem` saying why: the evidence and the confidences are then not checked)."""
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    sides = (config.fusion.sides[0], config.fusion.sides[1])
    line = ContactLine(list(config.fusion.line)) if config.fusion.line else None
    nodes = store.nodes()
    segment_of = {n.id: n.segment for n in nodes}
    refs, note = placing.references(config.report.places, nodes)
    found = sorted((d for d in incident_dicts(store) if day.holds(d.get("time_utc_us"))),
                   key=lambda d: (d.get("time_utc_us") or 0, str(d["id"])))
    confidences = _confidences(store, master, found)
    entries = [_entry(d, line, segment_of, sides, confidences.get(str(d["id"])), refs) for d in found]
    changes = store.health_changes(0, day.end_us)
    frames = store.frame_times(FRAME_TYPES, day.start_us, day.end_us)
    data = DayData(day, now_us, sides, tuple(config.fusion.line), entries, nodes,
                   availability(nodes, changes, frames, day.start_us, day.end_us, now_us),
                   _statement(store, master, key_problem, config), refs, note)
    _count(data)
    return data


def _entry(d: dict, line, segment_of: dict, sides, confidence, refs) -> Entry:
    segments = Counter(segment_of[n] for n in d.get("nodes") or () if n in segment_of)
    segment = min(segments, key=lambda s: (-segments[s], s)) if segments else None
    side = d.get("side")
    name = sides[0] if side == "L" else sides[1] if side == "R" else UNDECIDED
    p = d.get("side_probability")
    return Entry(d, category(d, line), segment, name, p if isinstance(p, (int, float)) and side else None,
                 confidence, placing.place(refs, d.get("lat"), d.get("lon")))


def _confidences(store: Store, master: bytes | None, incidents: list[dict]) -> dict[str, float]:
    """incident id -> the median detector confidence of its reports (each frame's tag checked)."""
    if master is None:
        return {}
    wanted = {int(r) for d in incidents for r in d.get("reports") or () if isinstance(r, int)}
    values: dict[int, float] = {}
    for row in store.evidence_rows(sorted(wanted)):
        try:
            f = wire.decode(row.raw, keys.derive(master, row.node))
            values[row.id] = float(f.fields()["confidence"])
        except (ValueError, KeyError, TypeError):
            continue          # not an event frame, or one that does not verify: no confidence from it
    out = {}
    for d in incidents:
        mine = [values[r] for r in d.get("reports") or () if r in values]
        if mine:
            out[str(d["id"])] = statistics.median(mine)
    return out


def _statement(store: Store, master: bytes | None, key_problem: str, config) -> Statement:
    if master is None:
        return Statement(False, False, f"The evidence log was NOT checked: {key_problem or 'no master key'}.")
    said = evidence.statement(store, master, config.evidence.head_path(config.store))
    return Statement(said.ok, said.head_checked, said.text)


def _count(data: DayData) -> None:
    data.counts = {key: 0 for key, _ in CATEGORIES}
    for e in data.counted:
        data.counts[e.category] += 1
        data.by_segment.setdefault(e.segment, Counter())[e.category] += 1
        data.by_side.setdefault(e.side, Counter())[e.category] += 1
