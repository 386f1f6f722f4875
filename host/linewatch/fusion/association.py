"""Association of impulsive reports into sources (see docs/fusion.md, Association): a new
report refits the fix that predicts it, or starts a source that contains it (near its node
first, over the whole hearing range later), or is kept as an outlier, a pair or a detection;
a new source that would take a fix's arrivals re-associates the incidents involved."""
from __future__ import annotations

import collections

from ..geo import LocalFrame, haversine_m
from . import cluster
from .bursts import Bursts
from .fixes import Fixes
from .incident import FITTED, Incident
from .index import consistent
from .lifecycle import Context, IncidentState, Ledger, by_time, unique
from .report import BURST, Report, timed

MISFIT_MARGIN = 0.5     # a rival fix with as many nodes must fit this much better
MAX_PARKED = 20_000     # deferred wide searches kept (defer_wide): ~10 minutes of 30 a second


class Association:
    def __init__(self, ctx: Context, ledger: Ledger, index, fixes: Fixes, bursts: Bursts, pairing) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.index = index              # index.ReportIndex
        self.fixes = fixes
        self.bursts = bursts
        self.pairing = pairing          # artillery.Pairing
        # With defer_wide, add() leaves the search over the whole hearing range (~10 ms a report
        # in crowded traffic) to settle(), which the service calls when no frame waits: a report
        # that completes a fix near its node is then never queued behind those searches.
        self.defer_wide = False
        self.parked: collections.deque[Report] = collections.deque()
        self.wide_skipped = 0           # parked searches dropped (MAX_PARKED)

    @property
    def config(self):
        return self.ctx.config

    @property
    def speed_of_sound(self) -> float:
        return self.ctx.speed_of_sound

    def add(self, report: Report, now_us: int) -> list[Incident]:
        if not timed(report, self.config.max_clock_error_us):
            return [self.ledger.new_detection(report, now_us).snapshot]
        first = self.bursts.follows(report)
        if first is not None:
            return self.bursts.add_follower(first, report, now_us)
        host = self.bursts.of(report) if report.event_class in BURST else None
        if host is not None:
            return [self.bursts.add_shot(host, report, now_us)]
        neighbours = self.index.neighbours(report, self.speed_of_sound)
        if not neighbours:
            state = self.ledger.new_detection(report, now_us)
            self.index.add(report, state.number)
            return [state.snapshot]
        involved = self._involved(report, neighbours)
        fitting = self.fixes.fitting_fix(report, involved)
        changed = None
        if fitting is not None:
            # The report arrives where an existing fix predicts: refit that incident alone,
            # which is what a full re-association would conclude, at a fraction of the cost.
            refitted = self.fixes.refit_with(fitting, [report], now_us, strict=True)
            if refitted is None:
                # The fix stands only by rejecting it: a source of its own nearby (the same
                # sector's next blast, a few seconds later, lands inside a fix's gate) takes
                # it; else the fix keeps it as rejected (an echo, or unmodelled wind).
                changed = self._anchored(report, neighbours, now_us, mode="local")
                if changed is None:
                    refitted = self.fixes.refit(fitting, report, now_us)
            if refitted is not None:
                changed = [refitted] + self._absorb(refitted, neighbours, now_us)
                return unique(changed + self.pairing.pair(changed, now_us))
        # No fix takes the report (a three-node fix it contradicts may be a phantom holding
        # arrivals of a real source): only a source containing it can be new.
        if changed is None:
            # A shot is not deferred: the burst's next shots join only a located shot (Bursts.of).
            defer = self.defer_wide and report.event_class not in BURST
            changed = self._anchored(report, neighbours, now_us, mode="park" if defer else "full")
        return self._conclude(report, neighbours, involved, changed, now_us)

    def settle(self, report: Report, now_us: int) -> list[Incident]:
        """The deferred wide search of a report add() left as a detection, pair or outlier:
        nothing to do when it was closed or located meanwhile."""
        owner = self.ledger.open.get(self.index.owner.get(report.key))
        if owner is None or report.key in owner.used and owner.snapshot.fix in FITTED:
            return []
        neighbours = self.index.neighbours(report, self.speed_of_sound)
        if not neighbours:
            return []
        changed = self._anchored(report, neighbours, now_us, mode="parked")
        if changed is None:
            return []
        involved = self._involved(report, neighbours)
        if owner not in involved:
            involved = sorted(involved + [owner], key=lambda s: s.number)
        return self._conclude(report, neighbours, involved, changed, now_us)

    def _conclude(self, report, neighbours, involved, changed, now_us) -> list[Incident]:
        if isinstance(changed, list) and changed and changed[-1].snapshot.fix in FITTED:
            changed += self._absorb(changed[-1], neighbours, now_us)
        if isinstance(changed, tuple):
            # ... plus the incidents the new source draws on, which a flood cut may miss
            involved = sorted({id(s): s for s in involved + list(changed)}.values(), key=lambda s: s.number)
        else:
            return unique(changed + self.pairing.pair(changed, now_us))
        group = list({r.key: r for state in involved for r in state.reports + [report]}.values())
        if report.key not in self.index.owner:
            self.index.add(report, involved[0].number)
        changed = self._reassociate(group, involved, now_us)
        changed += self.pairing.pair(changed, now_us)
        return unique(changed)

    def _anchored(self, report: Report, neighbours: list[Report], now_us: int,
                  mode: str = "full") -> list[IncidentState] | tuple | None:
        """A report that fits no fix: the only source it can start is one that contains it,
        so only such sources are searched (cluster.anchored_source). When that source would
        take arrivals an existing fix uses, the incidents it draws on are returned as a tuple
        instead: full re-association of those decides. Modes: "full" as said; "local" only a
        testable source near the report's node (cluster.local_source) that needs no
        re-association, else None; "park" the same, else the report is attached (as a
        detection, pair or outlier) and parked for settle(); "parked" the full search for a
        parked report, None when it finds nothing."""
        local_only = mode in ("local", "park")
        group = [report] + neighbours
        frame = LocalFrame(report.lat, report.lon)
        t_ref = min(r.onset_utc_us for r in group)
        arrivals = self.fixes.arrivals(group, frame, t_ref)
        search = cluster.local_source if local_only else cluster.anchored_source
        judge = self.fixes.judge(frame, t_ref, now_us)
        pool, locked = arrivals, set()
        if mode == "parked":
            # add() already searched near the node with every arrival; far away, the arrivals
            # of firm fixes (4+ arrivals, chi-square passed) are left out from the start: a
            # weaker source could not take them, and in crowded traffic they are many.
            locked = {key for s in {self.index.owner.get(a.report.key) for a in arrivals[1:]} - {None}
                      for key in self._firm_keys(self.ledger.open[s])}
            pool = [arrivals[0]] + [a for a in arrivals[1:] if a.report.key not in locked]
            search = lambda *args: cluster.anchored_source(*args, near_first=False)  # noqa: E731
        while True:
            source = None
            if len({a.report.node_id for a in pool[1:]}) >= cluster.tdoa.MIN_NODES - 1:
                source = search(pool, self.speed_of_sound, self.config, judge)
            if source is None:
                return self._no_source(report, arrivals, frame, t_ref, now_us, mode)
            members = [pool[i].report for i in source.members]
            states = [self.ledger.open[n] for n in sorted({self.index.owner[r.key] for r in members if r.key in self.index.owner})]
            donors = [s for s in states if s.snapshot.fix in FITTED and any(r.key in s.used for r in members)]
            fix = source.fix
            # Strongest first, as in a full partition: a new source may take arrivals a fix uses
            # only when it passes the chi-square test with more nodes than that fix has, or as
            # many and fits them far better (any 4 arrivals fit some phantom within chi-square
            # now and then; the real source of 4 arrivals fits them to their timing errors).
            taken = {r.key for r in members}
            if not donors or (fix.dof >= 1 and fix.chi2 <= cluster.tdoa.chi2_quantile(fix.dof, self.config.outlier_p)
                              and all(self._stronger(source, s) or self._spares(s, taken) for s in donors)):
                return self._form(report, cluster.Source("tdoa", source.members, [], source.fix), pool,
                                  frame, t_ref, states, now_us)
            # A weaker source may not break up a fix of four or more arrivals that passed
            # chi-square (re-associating such a crowd split real fixes into phantoms): it is
            # sought again without their arrivals. Only exact three-node fixes are re-associated.
            firm = {key for s in donors for key in self._firm_keys(s)}
            if local_only:
                return self._no_source(report, arrivals, frame, t_ref, now_us, mode)
            if not firm - locked:
                return tuple(states)
            locked |= firm
            pool = [arrivals[0]] + [a for a in arrivals[1:] if a.report.key not in locked]

    def _no_source(self, report, arrivals, frame, t_ref, now_us, mode) -> list[IncidentState] | None:
        if mode == "park":
            self.parked.append(report)
            if len(self.parked) > MAX_PARKED:      # overloaded for minutes: the oldest stay as they are
                self.parked.popleft()
                self.wide_skipped += 1
        if mode in ("local", "parked"):
            return None
        return self._attach(report, arrivals, frame, t_ref, now_us)

    @staticmethod
    def _firm_keys(state: IncidentState) -> frozenset:
        """The arrivals a fix of four or more arrivals (chi-square passed) uses."""
        if state.snapshot is not None and state.snapshot.fix in FITTED and len(state.used) >= cluster.tdoa.MIN_TESTABLE:
            return state.used
        return frozenset()

    @staticmethod
    def _spares(state: IncidentState, taken: set) -> bool:
        """A fix keeps four or more arrivals without the taken ones: both sources stand, and
        more reports are explained (a blast 3 s after another, ~1 km nearer one node, can fit
        the first fix at that node to a millisecond)."""
        return len(state.used - taken) >= cluster.tdoa.MIN_TESTABLE

    @staticmethod
    def _stronger(source: cluster.Source, state: IncidentState) -> bool:
        """More nodes, or as many with less than half the misfit per degree of freedom."""
        if len(source.members) != len(state.used):
            return len(source.members) > len(state.used)
        return source.fix.chi2 / source.fix.dof < MISFIT_MARGIN * state.misfit

    def _form(self, report, source, arrivals, frame, t_ref, states, now_us) -> list[IncidentState]:
        """A new fix from the new report and arrivals held by detections, hyperbolas or as
        rejected by fixes: it keeps the id of the incident it takes most reports from."""
        taken = {arrivals[i].report.key for i in source.members}
        loose = [s for s in states if s.snapshot.fix not in FITTED]
        keeper = min(loose, key=lambda s: (-sum(r.key in taken for r in s.reports), s.number), default=None)
        changed = []
        for state in states:
            rest = [r for r in state.reports if r.key not in taken]
            if state.snapshot.fix in FITTED and state.used & taken:
                # What is left of a weaker fix is partitioned again on its own.
                changed += self._reassociate(rest, [state], now_us) if rest else [self.ledger.withdraw(state, now_us)]
            elif state.snapshot.fix in FITTED:          # only rejected arrivals or shots were taken
                state.reports, state.rejected = rest, state.rejected - taken
                state.shots = state.shots - taken
                self.ledger.snapshot(state, now_us)
                changed.append(state)
            else:
                changed += self._regroup(state, rest, state is keeper, frame, t_ref, now_us)
        target = keeper or self.ledger.new_state(report.event_class, now_us)
        target.reports = by_time(arrivals[i].report for i in source.members)
        target.used, target.rejected, target.shots = frozenset(taken), frozenset(), frozenset()
        for r in target.reports:
            self.index.owner[r.key] = target.number
        self.index.add(report, target.number)
        self.fixes.place(target, source, arrivals, frame, t_ref, now_us)
        return changed + [target]

    def _regroup(self, state, rest, kept, frame, t_ref, now_us) -> list[IncidentState]:
        """What is left of a detection or hyperbola after a new fix took some of its reports:
        pairs and singles again; the incident itself is withdrawn when nothing stays in it."""
        arrivals = self.fixes.arrivals(rest, frame, t_ref)
        parts = cluster.regroup_loose(arrivals, self.speed_of_sound, self.config)
        changed = []
        for k, part in enumerate(parts):
            target = state if k == 0 and not kept else self.ledger.new_state(state.event_class, now_us)
            target.reports = [arrivals[i].report for i in part.members]
            target.used, target.rejected = frozenset(r.key for r in target.reports), frozenset()
            target.shots, target.burst_end_us = frozenset(), None
            for r in target.reports:
                self.index.owner[r.key] = target.number
            self.fixes.place(target, part, arrivals, frame, t_ref, now_us)
            changed.append(target)
        if not parts and not kept:
            changed.append(self.ledger.withdraw(state, now_us))
        return changed

    def _attach(self, report, arrivals, frame, t_ref, now_us) -> list[IncidentState]:
        """No source contains the new report yet: it is kept as rejected by a fix it may have
        come from (an echo), else it pairs with a lone detection, else it is one itself."""
        c = self.speed_of_sound
        anchor = arrivals[0]
        best = None
        for state in {id(s): s for s in (self.ledger.open[self.index.owner[a.report.key]] for a in arrivals[1:])}.values():
            snap = state.snapshot
            if snap.fix not in FITTED or report.node_id in {r.node_id for r in state.reports}:
                continue
            used = [r for r in state.reports if r.key in state.used]
            if 2 * sum(1 for r in used if consistent(report, r, self.speed_of_sound, self.config)) < len(used):
                continue
            predicted_us = snap.time_utc_us + haversine_m(snap.lat, snap.lon, report.lat, report.lon) / c * 1e6
            if report.onset_utc_us < predicted_us - self.fixes.gate_us(snap, report):
                continue        # heard before that source's sound could get there: no echo of it
            miss = abs(report.onset_utc_us - predicted_us)
            if best is None or (miss, state.number) < best[:2]:
                best = (miss, state.number, state)
        if best is not None:
            state = best[2]
            state.reports = by_time(state.reports + [report])
            state.rejected = state.rejected | {report.key}
            self.index.add(report, state.number)
            self.ledger.snapshot(state, now_us)
            return [state]
        partner = None
        for k, a in enumerate(arrivals[1:], 1):
            state = self.ledger.open[self.index.owner[a.report.key]]
            if state.snapshot.fix == "detection" and len(state.reports) == 1 and \
                    cluster.pair_consistent(anchor, a, c, self.config):
                slack = abs(a.t_s - anchor.t_s)
                if partner is None or slack < partner[0]:
                    partner = (slack, k, state)
        if partner is None:
            state = self.ledger.new_detection(report, now_us)
            self.index.add(report, state.number)
            return [state]
        _, k, state = partner
        state.reports = by_time([report, arrivals[k].report])
        state.used, state.rejected = frozenset(r.key for r in state.reports), frozenset()
        self.index.add(report, state.number)
        self.fixes.place(state, cluster.Source("hyperbola", sorted([0, k])), arrivals, frame, t_ref, now_us)
        return [state]

    def _absorb(self, state: IncidentState, neighbours: list[Report], now_us: int) -> list[IncidentState]:
        """Re-gating, as a full partition does: open reports held by detections or hyperbolas
        that a (new or grown) fix predicts join it, e.g. the first arrivals of two overlapping
        blasts, paired before either fix existed. Their old incidents keep what is left."""
        candidates: dict[int, tuple[float, Report]] = {}
        nodes = {r.node_id for r in state.reports}
        for m in neighbours:
            owner = self.ledger.open.get(self.index.owner.get(m.key))
            if owner is None or owner is state or owner.snapshot.fix in FITTED or m.node_id in nodes:
                continue
            miss = self.fixes.miss_us(state, m)
            if miss is not None and (m.node_id not in candidates or miss < candidates[m.node_id][0]):
                candidates[m.node_id] = (miss, m)
        if not candidates:
            return []
        extras = [m for _, m in candidates.values()]
        donors = {self.index.owner[m.key]: self.ledger.open[self.index.owner[m.key]] for m in extras}
        if self.fixes.refit_with(state, extras, now_us) is None:
            return []
        frame = LocalFrame(state.snapshot.lat, state.snapshot.lon)
        t_ref = min(r.onset_utc_us for r in state.reports)
        changed = [state]
        for donor in donors.values():
            rest = [r for r in donor.reports if self.index.owner.get(r.key) == donor.number]
            changed += self._regroup(donor, rest, False, frame, t_ref, now_us)
        return changed

    def _involved(self, report: Report, neighbours: list[Report]) -> list[IncidentState]:
        numbers = sorted({self.index.owner[m.key] for m in neighbours})
        states = [self.ledger.open[n] for n in numbers]
        # A flood is cut to the incidents heard nearest to this node, whole incidents only:
        # near nodes share a source within a narrow time window, so near ones are seldom
        # unrelated (cutting by time kept unrelated far reports and dropped a source's own).
        states.sort(key=lambda s: (min(haversine_m(report.lat, report.lon, r.lat, r.lon) for r in s.reports),
                                   s.number))
        kept, size = [], 1
        for state in states:
            if size + len(state.reports) > self.config.max_group and kept:
                break
            kept.append(state)
            size += len(state.reports)
        return sorted(kept, key=lambda s: s.number)

    def _reassociate(self, group: list[Report], involved: list[IncidentState], now_us: int) -> list[IncidentState]:
        frame = LocalFrame(sum(r.lat for r in group) / len(group), sum(r.lon for r in group) / len(group))
        t_ref = min(r.onset_utc_us for r in group)
        arrivals = self.fixes.arrivals(group, frame, t_ref)
        judge = self.fixes.judge(frame, t_ref, now_us, frozenset(s.id for s in involved))
        sources = cluster.partition(arrivals, self.speed_of_sound, self.config, judge)
        keys = [{arrivals[i].report.key for i in s.members + s.rejected} for s in sources]
        assigned = self._match(involved, keys)
        changed = []
        for k, source in enumerate(sources):
            state = assigned.get(k) or self.ledger.new_state(arrivals[source.members[0]].report.event_class, now_us)
            used = frozenset(arrivals[i].report.key for i in source.members)
            rejected = frozenset(arrivals[i].report.key for i in source.rejected)
            if state.snapshot is not None and (used, rejected) == (state.used, state.rejected) and not state.shots:
                continue
            state.reports = by_time(arrivals[i].report for i in source.members + source.rejected)
            state.used, state.rejected = used, rejected
            state.shots, state.burst_end_us = frozenset(), None    # shots join again (Bursts.join)
            for r in state.reports:
                self.index.owner[r.key] = state.number
            self.fixes.place(state, source, arrivals, frame, t_ref, now_us)
            changed.append(state)
        matched = {id(s) for s in assigned.values()}
        for state in involved:
            if id(state) not in matched:
                changed.append(self.ledger.withdraw(state, now_us))
        return changed

    @staticmethod
    def _match(involved: list[IncidentState], keys: list[set]) -> dict[int, IncidentState]:
        """Each new group keeps the id of the old incident it shares most reports with."""
        overlaps = sorted((-len({r.key for r in s.reports} & ks), s.number, k, s)
                          for s in involved for k, ks in enumerate(keys)
                          if {r.key for r in s.reports} & ks)
        assigned: dict[int, IncidentState] = {}
        taken = set()
        for _, number, k, state in overlaps:
            if k not in assigned and number not in taken:
                assigned[k] = state
                taken.add(number)
        return assigned
