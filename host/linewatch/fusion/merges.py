"""Two fixes of one sound, chosen as one by a joint refit (impulsive classes).

Association is incremental: each fix forms from the arrivals open when its report came, and a
sound's arrivals can end up in two fixes, each passing its own chi-square test: the near
nodes' fix, and a fix of far arrivals, all on one side, placed along an asymptote 0.5-3 km
away (in a storm, the scorer's "misplaced" fixes) or beside it (an unmodelled wind). A node
hears one sound once, so two fixes with no used node in common, within `REACH_M` of each
other, one of which predicts at least half of the other's arrivals within its gate and whose
arrivals agree pairwise (index.consistent), may be one source: they are fitted together, from
either fix's place, and when the joint fix passes the chi-square test and the phantom tests (hearing.py) with at most
`MAX_DROPPED` of their used arrivals left out, and lies within one of the two fixes' ellipses
(plus `NEAR_M`: one of them was right), one source explaining the arrivals is chosen
over two: the older incident keeps the joint fix and every report, the younger is withdrawn.
Two different sounds do not fit one place within their timing errors; fixes sharing a node
are never joined.
"""
from __future__ import annotations

import math

from ..geo import LocalFrame
from . import cluster, mirror
from .fixes import Fixes
from .incident import FITTED, Incident
from .index import consistent
from .lifecycle import Context, IncidentState, Ledger, by_time
from .report import IMPULSIVE, compatible

MAX_DROPPED = 1          # used arrivals of the two fixes the joint fix may leave out
REACH_M = 5_000.0        # farthest two fixes of one sound are joined (wider: storm seeds 1/2 located fewer)
NEAR_M = 25.0            # the joint fix within one fix's ellipse plus this
MAX_TRIES = 4            # joint fits per changed incident (each ~1 ms)


class Merges:
    def __init__(self, ctx: Context, ledger: Ledger, index, fixes: Fixes) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.index = index              # index.ReportIndex
        self.fixes = fixes
        self.joined = 0                 # pairs of fixes made one (for benchmarks)

    def join(self, incidents: list[Incident], now_us: int) -> list[Incident]:
        ledger = self.ledger
        out = {i.id: ledger.by_id[i.id] for i in incidents if ledger.by_id.get(i.id) is not None}
        for state in list(out.values()):
            if not self._located(state):
                continue
            tries = 0
            for other in self._candidates(state):
                if tries >= MAX_TRIES:
                    break
                tries += 1
                if self._joint(state, other, now_us):
                    older, younger = sorted((state, other), key=lambda s: s.number)
                    out[older.id] = older
                    ledger.retire(younger, out, now_us)
                    self.joined += 1
                    break
        return sorted((s.snapshot for s in out.values()), key=lambda i: i.id)

    def _located(self, state: IncidentState) -> bool:
        ledger = self.ledger
        return ledger.by_id.get(state.id) is state and state.number in ledger.open and \
            state.event_class in IMPULSIVE and state.snapshot.fix in FITTED and len(state.used) >= 3 and \
            not state.shots

    def _candidates(self, state: IncidentState):
        """Open fixes of a compatible class, no used node in common, within REACH_M and the
        travel time over it, whose used arrivals agree pairwise with this fix's; nearest first."""
        snap = state.snapshot
        used = [r for r in state.reports if r.key in state.used]
        nodes = {r.node_id for r in used}
        c = self.ctx.speed_of_sound
        found, seen = [], {state.number}
        for r in self.index.nearby(state.reports[0]):
            number = self.index.owner.get(r.key)
            if number in seen or number not in self.ledger.open:
                continue
            seen.add(number)
            other = self.ledger.open[number]
            if not self._located(other) or not compatible(other.event_class, state.event_class):
                continue
            o = other.snapshot
            theirs = [x for x in other.reports if x.key in other.used]
            if nodes & {x.node_id for x in theirs}:
                continue
            apart = mirror.apart_m(snap, o)
            if apart > REACH_M or abs(snap.time_utc_us - o.time_utc_us) > (apart / c + 1.0) * 1e6:
                continue
            if self._predicts(state, theirs) or self._predicts(other, used):
                if all(consistent(a, b, c, self.ctx.config) for a in used for b in theirs):
                    found.append((apart, other.number, other))
        return [s for _, _, s in sorted(found, key=lambda f: f[:2])]

    def _predicts(self, state: IncidentState, reports) -> bool:
        """The fix predicts at least half of the other fix's arrivals within its gate (one of
        two fixes of one sound, the right one, does): no joint fit is tried otherwise."""
        hits = sum(1 for r in reports if self.fixes.miss_us(state, r) is not None)
        return 2 * hits >= len(reports)

    @staticmethod
    def _beside(fix, frame: LocalFrame, a: IncidentState, b: IncidentState) -> bool:
        """The joint fix lies where one of the two fixes put the source (within its 95% major
        semi-axis plus NEAR_M): one of them was right. Two sounds' arrivals that fit some place
        together fit it between or beyond both."""
        for s in (a, b):
            snap = s.snapshot
            reach = (snap.ellipse_95.major_m if snap.ellipse_95 else 0.0) + NEAR_M
            for place in snap.places():
                x, y = frame.to_xy(*place)
                if math.hypot(fix.x - x, fix.y - y) <= reach:
                    return True
        return False

    def _joint(self, a: IncidentState, b: IncidentState, now_us: int) -> bool:
        """Fit both fixes' reports as one source from either place; apply the better fix that
        passes (to the older incident). False: nothing changed."""
        group = by_time(a.reports + b.reports)
        frame = LocalFrame(sum(r.lat for r in group) / len(group), sum(r.lon for r in group) / len(group))
        t_ref = min(r.onset_utc_us for r in group)
        arrivals = self.fixes.arrivals(group, frame, t_ref)
        keys = a.used | b.used
        chosen = [i for i, x in enumerate(arrivals) if x.report.key in keys]
        judge = self.fixes.judge(frame, t_ref, now_us, frozenset({a.id, b.id}))
        best = None
        for s in (a, b):
            snap = s.snapshot
            start = (*frame.to_xy(snap.lat, snap.lon), (snap.time_utc_us - t_ref) / 1e6)
            fix = cluster.fit_checked(arrivals, chosen, self.ctx.speed_of_sound, self.ctx.config, start, judge)
            if fix is None or len(fix.used) < len(chosen) - MAX_DROPPED or not self._beside(fix, frame, a, b):
                continue
            score = (len(fix.used), -fix.chi2 / max(fix.dof, 1))
            if best is None or score > best[0]:
                best = (score, fix)
        if best is None:
            return False
        fix = best[1]
        older, younger = sorted((a, b), key=lambda s: s.number)
        members = [chosen[k] for k in fix.used]
        shots = older.shots | younger.shots
        rejected = [i for i, x in enumerate(arrivals) if i not in members and x.report.key not in shots]
        older.reports = group
        older.used = frozenset(arrivals[i].report.key for i in members)
        older.rejected = frozenset(arrivals[i].report.key for i in rejected)
        older.shots = shots
        older.close_at_us = max(older.close_at_us, younger.close_at_us)
        for r in group:
            self.index.owner[r.key] = older.number
        younger.reports, younger.used, younger.rejected, younger.shots = [], frozenset(), frozenset(), frozenset()
        self.fixes.place(older, cluster.Source("tdoa", members, rejected, fix), arrivals, frame, t_ref, now_us)
        return True
