"""The fusion engine: reports in, incidents out. Stateful, deterministic, no I/O, no clock.

Every call gets the commission's current time (`now_us`) from the caller. Windows and
forgetting horizons are kept in EVENT time (onset times), so a replay or a virtual-time run
days away from the wall clock behaves like live operation: the engine's event clock is the
latest onset seen from a timed node, advanced between reports by the caller's clock
(`max(latest onset, now_us - lag)`, lag = now_us - onset when that onset was seen). `add` returns the
incidents that the report created or changed; `tick` closes incidents whose window for late
reports has passed and returns them once more with `provisional` false. Nothing else changes
an incident, so a caller that publishes what these two return publishes every state.

Impulsive reports (explosion, small arms, unknown) are re-associated with the open reports
they can share a source with (see cluster.py) each time one arrives; incident ids stay with
the group of reports they held most of. Continuous sounds (drone, vehicle) go to the tracker;
tamper reports are detections of their own.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..geo import EARTH_RADIUS_M, ContactLine, LocalFrame, haversine_m
from . import artillery, cluster, hearing, hyperbola, side as side_of_line, tracks
from .config import FusionConfig
from .ellipse import error_ellipse
from .incident import Incident, incident_id
from .report import BURST, CONTINUOUS, IMPULSIVE, Report, family
from .sound import CALM, speed_of_sound, travel_time_s

_DEG_M = 111_195.0      # metres per degree of latitude
MISFIT_MARGIN = 0.5     # a rival fix with as many nodes must fit this much better
MAX_PARKED = 20_000     # deferred wide searches kept (defer_wide): ~10 minutes of 30 a second


@dataclass
class _State:
    """The engine's working copy of one incident (the published Incident is a snapshot)."""
    number: int
    event_class: str
    formed_at_us: int
    reports: list[Report] = field(default_factory=list)
    used: frozenset = frozenset()
    rejected: frozenset = frozenset()
    shots: frozenset = frozenset()    # keys of a burst's other shots (neither used nor rejected)
    burst_end_us: int | None = None   # emission time of a burst's latest shot
    misfit: float = math.inf          # a tdoa fix's chi-square per degree of freedom
    snapshot: Incident | None = None
    close_at_us: int = 0
    final: bool = False
    track: tracks.Track | None = None
    formed_event_us: int = 0          # the engine's event clock when formed / last changed
    touched_event_us: int = 0

    @property
    def id(self) -> str:
        return incident_id(self.number)


class FusionEngine:
    def __init__(self, line: ContactLine, config: FusionConfig | None = None):
        self.line = line
        self.config = config or FusionConfig()
        self.speed_of_sound = speed_of_sound(self.config.temperature_c)
        self._next = 1
        self._open: dict[int, _State] = {}
        self._owner: dict[tuple, int] = {}                 # open report key -> incident number
        self._cells: dict[tuple, dict[tuple, Report]] = {}  # (family, cell) -> open impulsive reports
        self._seen: dict[tuple, int] = {}                   # report key -> event clock when seen
        self._latest_onset_us: int | None = None            # event clock: latest timed onset seen,
        self._lag_us = 0                                    # and the caller's clock minus it then
        self._blasts: dict[str, artillery.Blast] = {}      # located explosions, for pairing
        self._pairs: dict[str, str] = {}                    # incident id -> partner id
        self._by_id: dict[str, _State] = {}
        self._tracker = tracks.Tracker(line, self.config)
        self._hearing = hearing.Hearing(self.config)          # who listens where, who heard what
        self._track_owner: dict[int, int] = {}              # id(track) -> incident number
        self._fresh: set[int] = set()                       # incidents formed by the current add()
        # With defer_wide, add() leaves the search over the whole hearing range (~10 ms a report
        # in crowded traffic) to settle(), which the service calls when no frame waits: a report
        # that completes a fix near its node is then never queued behind those searches.
        self.defer_wide = False
        self._parked: collections.deque[Report] = collections.deque()
        self.wide_skipped = 0                               # parked searches dropped (MAX_PARKED)
        max_abs_lat = max(abs(lat) for lat, _ in line.vertices)
        self._cell_lat = self.config.max_baseline_m / _DEG_M
        self._cell_lon = self._cell_lat / max(math.cos(math.radians(min(max_abs_lat + 1.0, 89.0))), 1e-3)

    # -- public API ---------------------------------------------------------------------------

    def set_temperature(self, temperature_c: float) -> None:
        """Air temperature from heartbeats or the operator; applies to fixes made from now on."""
        self.speed_of_sound = speed_of_sound(temperature_c)

    def set_wind(self, speed_mps: float, from_deg: float) -> None:
        """Wind from a met station or the operator (from_deg: the bearing it blows from);
        applies to fixes made from now on."""
        self.config = replace(self.config, wind_speed_mps=float(speed_mps), wind_from_deg=float(from_deg))
        self._hearing.config = self.config

    def add(self, report: Report, now_us: int) -> list[Incident]:
        if not isinstance(report, Report):
            raise TypeError("fusion takes Report values, not %s" % type(report).__name__)
        if report.key in self._seen:
            return []                                   # the same frame delivered twice
        self._observe(report, now_us)
        self._seen[report.key] = self.event_now(now_us)
        self._hearing.observe(report, self.event_now(now_us))
        self._fresh = set()
        if report.event_class in CONTINUOUS:
            return self._add_to_track(report, now_us)
        if report.event_class in IMPULSIVE:
            return self._join_duplicates(self._join_bursts(self._add_impulsive(report, now_us), now_us), now_us)
        return [self._publish(self._new_detection(report, now_us), now_us)]

    def parked(self) -> int:
        """Reports whose wide search add() deferred (defer_wide), not yet settled."""
        return len(self._parked)

    def settle(self, now_us: int, limit: int = 1) -> list[Incident]:
        """Run up to `limit` deferred wide searches, oldest first (see defer_wide)."""
        out: list[Incident] = []
        for _ in range(min(limit, len(self._parked))):
            self._fresh = set()
            report = self._parked.popleft()
            out += self._join_duplicates(self._join_bursts(self._settle_one(report, now_us), now_us), now_us)
        return self._unique_incidents(out)

    def tick(self, now_us: int) -> list[Incident]:
        closed = []
        event_us = self.event_now(now_us)
        for state in list(self._open.values()):
            if state.track is None and event_us >= state.close_at_us:
                closed.append(self._close(state, now_us))
        for track in self._tracker.expire(event_us):
            number = self._track_owner.pop(id(track), None)
            if number is not None and number in self._open:
                closed.append(self._close(self._open[number], now_us))
        self._forget_old(event_us)
        return sorted(closed, key=lambda i: i.id)

    def event_now(self, now_us: int) -> int:
        """The engine's clock in event time: the caller's clock until a timed report arrives."""
        if self._latest_onset_us is None:
            return now_us
        return max(self._latest_onset_us, now_us - self._lag_us)

    def _observe(self, report: Report, now_us: int) -> None:
        """Only a newer onset moves the event clock: a late-delivered old report does not take
        it back, and an untimed node's clock does not count."""
        if report.clock_error_us > self.config.max_clock_error_us:
            return
        if self._latest_onset_us is None or report.onset_utc_us > self._latest_onset_us:
            self._latest_onset_us = report.onset_utc_us
            self._lag_us = now_us - report.onset_utc_us

    def incident(self, incident_id_: str) -> Incident | None:
        state = self._by_id.get(incident_id_)
        return state.snapshot if state else None

    # -- impulsive sounds ---------------------------------------------------------------------

    def _add_impulsive(self, report: Report, now_us: int) -> list[Incident]:
        if report.clock_error_us > self.config.max_clock_error_us:
            return [self._publish(self._new_detection(report, now_us), now_us)]
        host = self._burst_of(report) if report.event_class in BURST else None
        if host is not None:
            return [self._add_shot(host, report, now_us)]
        neighbours = self._neighbours(report)
        if not neighbours:
            state = self._new_detection(report, now_us)
            self._index(report, state.number)
            return [self._publish(state, now_us)]
        involved = self._involved(report, neighbours)
        fitting = self._fitting_fix(report, involved)
        changed = None
        if fitting is not None:
            # The report arrives where an existing fix predicts: refit that incident alone,
            # which is what a full re-association would conclude, at a fraction of the cost.
            refitted = self._refit_with(fitting, [report], now_us, strict=True)
            if refitted is None:
                # The fix stands only by rejecting it: a source of its own nearby (the same
                # sector's next blast, a few seconds later, lands inside a fix's gate) takes
                # it; else the fix keeps it as rejected (an echo, or unmodelled wind).
                changed = self._anchored(report, neighbours, now_us, mode="local")
                if changed is None:
                    refitted = self._refit(fitting, report, now_us)
            if refitted is not None:
                changed = [refitted] + self._absorb(refitted, neighbours, now_us)
                return self._unique(changed + self._pair_blasts(changed, now_us))
        # No fix takes the report (a three-node fix it contradicts may be a phantom holding
        # arrivals of a real source): only a source containing it can be new.
        if changed is None:
            # A shot is not deferred: the burst's next shots join only a located shot (_burst_of).
            defer = self.defer_wide and report.event_class not in BURST
            changed = self._anchored(report, neighbours, now_us, mode="park" if defer else "full")
        return self._conclude(report, neighbours, involved, changed, now_us)

    def _settle_one(self, report: Report, now_us: int) -> list[Incident]:
        """The deferred wide search of a report add() left as a detection, pair or outlier:
        nothing to do when it was closed or located meanwhile."""
        owner = self._open.get(self._owner.get(report.key))
        if owner is None or report.key in owner.used and owner.snapshot.fix == "tdoa":
            return []
        neighbours = self._neighbours(report)
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
        if isinstance(changed, list) and changed and changed[-1].snapshot.fix == "tdoa":
            changed += self._absorb(changed[-1], neighbours, now_us)
        if isinstance(changed, tuple):
            # ... plus the incidents the new source draws on, which a flood cut may miss
            involved = sorted({id(s): s for s in involved + list(changed)}.values(), key=lambda s: s.number)
        else:
            return self._unique(changed + self._pair_blasts(changed, now_us))
        group = list({r.key: r for state in involved for r in state.reports + [report]}.values())
        if report.key not in self._owner:
            self._index(report, involved[0].number)
        changed = self._reassociate(group, involved, now_us)
        changed += self._pair_blasts(changed, now_us)
        return self._unique(changed)

    def _anchored(self, report: Report, neighbours: list[Report], now_us: int,
                  mode: str = "full") -> list[_State] | tuple | None:
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
        arrivals = [cluster.Arrival(r, *frame.to_xy(r.lat, r.lon), (r.onset_utc_us - t_ref) / 1e6,
                                    cluster.timing_sigma_s(r, self.config)) for r in group]
        search = cluster.local_source if local_only else cluster.anchored_source
        judge = self._judge(frame, t_ref, now_us)
        pool, locked = arrivals, set()
        if mode == "parked":
            # add() already searched near the node with every arrival; far away, the arrivals
            # of firm fixes (4+ arrivals, chi-square passed) are left out from the start: a
            # weaker source could not take them, and in crowded traffic they are many.
            locked = {key for s in {self._owner.get(a.report.key) for a in arrivals[1:]} - {None}
                      for key in self._firm_keys(self._open[s])}
            pool = [arrivals[0]] + [a for a in arrivals[1:] if a.report.key not in locked]
            search = lambda *args: cluster.anchored_source(*args, near_first=False)  # noqa: E731
        while True:
            source = None
            if len({a.report.node_id for a in pool[1:]}) >= cluster.tdoa.MIN_NODES - 1:
                source = search(pool, self.speed_of_sound, self.config, judge)
            if source is None:
                return self._no_source(report, arrivals, frame, t_ref, now_us, mode)
            members = [pool[i].report for i in source.members]
            states = [self._open[n] for n in sorted({self._owner[r.key] for r in members if r.key in self._owner})]
            donors = [s for s in states if s.snapshot.fix == "tdoa" and any(r.key in s.used for r in members)]
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

    def _no_source(self, report, arrivals, frame, t_ref, now_us, mode) -> list[_State] | None:
        if mode == "park":
            self._parked.append(report)
            if len(self._parked) > MAX_PARKED:      # overloaded for minutes: the oldest stay as they are
                self._parked.popleft()
                self.wide_skipped += 1
        if mode in ("local", "parked"):
            return None
        return self._attach(report, arrivals, frame, t_ref, now_us)

    @staticmethod
    def _firm_keys(state: _State) -> frozenset:
        """The arrivals a fix of four or more arrivals (chi-square passed) uses."""
        if state.snapshot is not None and state.snapshot.fix == "tdoa" and len(state.used) >= cluster.tdoa.MIN_TESTABLE:
            return state.used
        return frozenset()

    @staticmethod
    def _spares(state: _State, taken: set) -> bool:
        """A fix keeps four or more arrivals without the taken ones: both sources stand, and
        more reports are explained (a blast 3 s after another, ~1 km nearer one node, can fit
        the first fix at that node to a millisecond)."""
        return len(state.used - taken) >= cluster.tdoa.MIN_TESTABLE

    @staticmethod
    def _stronger(source: cluster.Source, state: _State) -> bool:
        """More nodes, or as many with less than half the misfit per degree of freedom."""
        if len(source.members) != len(state.used):
            return len(source.members) > len(state.used)
        return source.fix.chi2 / source.fix.dof < MISFIT_MARGIN * state.misfit

    def _form(self, report, source, arrivals, frame, t_ref, states, now_us) -> list[_State]:
        """A new fix from the new report and arrivals held by detections, hyperbolas or as
        rejected by fixes: it keeps the id of the incident it takes most reports from."""
        taken = {arrivals[i].report.key for i in source.members}
        loose = [s for s in states if s.snapshot.fix != "tdoa"]
        keeper = min(loose, key=lambda s: (-sum(r.key in taken for r in s.reports), s.number), default=None)
        changed = []
        for state in states:
            rest = [r for r in state.reports if r.key not in taken]
            if state.snapshot.fix == "tdoa" and state.used & taken:
                # What is left of a weaker fix is partitioned again on its own.
                changed += self._reassociate(rest, [state], now_us) if rest else [self._withdraw(state, now_us)]
            elif state.snapshot.fix == "tdoa":          # only rejected arrivals or shots were taken
                state.reports, state.rejected = rest, state.rejected - taken
                state.shots = state.shots - taken
                self._snapshot(state, now_us)
                changed.append(state)
            else:
                changed += self._regroup(state, rest, state is keeper, frame, t_ref, now_us)
        target = keeper or self._new_state(report.event_class, now_us)
        target.reports = sorted((arrivals[i].report for i in source.members),
                                key=lambda r: (r.onset_utc_us, r.node_id))
        target.used, target.rejected, target.shots = frozenset(taken), frozenset(), frozenset()
        for r in target.reports:
            self._owner[r.key] = target.number
        self._index(report, target.number)
        self._place(target, source, arrivals, frame, t_ref, now_us)
        return changed + [target]

    def _regroup(self, state, rest, kept, frame, t_ref, now_us) -> list[_State]:
        """What is left of a detection or hyperbola after a new fix took some of its reports:
        pairs and singles again; the incident itself is withdrawn when nothing stays in it."""
        arrivals = [cluster.Arrival(r, *frame.to_xy(r.lat, r.lon), (r.onset_utc_us - t_ref) / 1e6,
                                    cluster.timing_sigma_s(r, self.config)) for r in rest]
        parts = cluster.regroup_loose(arrivals, self.speed_of_sound, self.config)
        changed = []
        for k, part in enumerate(parts):
            target = state if k == 0 and not kept else self._new_state(state.event_class, now_us)
            target.reports = [arrivals[i].report for i in part.members]
            target.used, target.rejected = frozenset(r.key for r in target.reports), frozenset()
            target.shots, target.burst_end_us = frozenset(), None
            for r in target.reports:
                self._owner[r.key] = target.number
            self._place(target, part, arrivals, frame, t_ref, now_us)
            changed.append(target)
        if not parts and not kept:
            changed.append(self._withdraw(state, now_us))
        return changed

    def _attach(self, report, arrivals, frame, t_ref, now_us) -> list[_State]:
        """No source contains the new report yet: it is kept as rejected by a fix it may have
        come from (an echo), else it pairs with a lone detection, else it is one itself."""
        c = self.speed_of_sound
        anchor = arrivals[0]
        best = None
        for state in {id(s): s for s in (self._open[self._owner[a.report.key]] for a in arrivals[1:])}.values():
            snap = state.snapshot
            if snap.fix != "tdoa" or report.node_id in {r.node_id for r in state.reports}:
                continue
            used = [r for r in state.reports if r.key in state.used]
            if 2 * sum(1 for r in used if self._consistent(report, r)) < len(used):
                continue
            predicted_us = snap.time_utc_us + haversine_m(snap.lat, snap.lon, report.lat, report.lon) / c * 1e6
            miss = abs(report.onset_utc_us - predicted_us)
            if best is None or (miss, state.number) < best[:2]:
                best = (miss, state.number, state)
        if best is not None:
            state = best[2]
            state.reports = sorted(state.reports + [report], key=lambda r: (r.onset_utc_us, r.node_id))
            state.rejected = state.rejected | {report.key}
            self._index(report, state.number)
            self._snapshot(state, now_us)
            return [state]
        partner = None
        for k, a in enumerate(arrivals[1:], 1):
            state = self._open[self._owner[a.report.key]]
            if state.snapshot.fix == "detection" and len(state.reports) == 1 and \
                    cluster.pair_consistent(anchor, a, c, self.config):
                slack = abs(a.t_s - anchor.t_s)
                if partner is None or slack < partner[0]:
                    partner = (slack, k, state)
        if partner is None:
            state = self._new_detection(report, now_us)
            self._index(report, state.number)
            return [state]
        _, k, state = partner
        state.reports = sorted([report, arrivals[k].report], key=lambda r: (r.onset_utc_us, r.node_id))
        state.used, state.rejected = frozenset(r.key for r in state.reports), frozenset()
        self._index(report, state.number)
        self._place(state, cluster.Source("hyperbola", sorted([0, k])), arrivals, frame, t_ref, now_us)
        return [state]

    def _refit(self, state: _State, report: Report, now_us: int) -> _State | None:
        """The incident's fix redone with one more arrival, no search and no other incident
        touched; None when the refit does not pass the chi-square test (then the caller
        re-associates in full)."""
        return self._refit_with(state, [report], now_us)

    def _absorb(self, state: _State, neighbours: list[Report], now_us: int) -> list[_State]:
        """Re-gating, as a full partition does: open reports held by detections or hyperbolas
        that a (new or grown) fix predicts join it, e.g. the first arrivals of two overlapping
        blasts, paired before either fix existed. Their old incidents keep what is left."""
        candidates: dict[int, tuple[float, Report]] = {}
        nodes = {r.node_id for r in state.reports}
        for m in neighbours:
            owner = self._open.get(self._owner.get(m.key))
            if owner is None or owner is state or owner.snapshot.fix == "tdoa" or m.node_id in nodes:
                continue
            miss = self._miss_us(state, m)
            if miss is not None and (m.node_id not in candidates or miss < candidates[m.node_id][0]):
                candidates[m.node_id] = (miss, m)
        if not candidates:
            return []
        extras = [m for _, m in candidates.values()]
        donors = {self._owner[m.key]: self._open[self._owner[m.key]] for m in extras}
        if self._refit_with(state, extras, now_us) is None:
            return []
        frame = LocalFrame(state.snapshot.lat, state.snapshot.lon)
        t_ref = min(r.onset_utc_us for r in state.reports)
        changed = [state]
        for donor in donors.values():
            rest = [r for r in donor.reports if self._owner.get(r.key) == donor.number]
            changed += self._regroup(donor, rest, False, frame, t_ref, now_us)
        return changed

    def _miss_us(self, state: _State, report: Report) -> float | None:
        """How far the report's onset is from the fix's prediction, None outside its gate."""
        snap = state.snapshot
        spread_m = snap.ellipse_95.major_m if snap.ellipse_95 else 0.0
        predicted_us = self._predicted_us(snap, report)
        sigma_s = cluster.timing_sigma_s(report, self.config)
        gate_us = (self.config.gate_sigmas * sigma_s + spread_m / self.speed_of_sound) * 1e6 + self.config.window_margin_us
        miss = abs(report.onset_utc_us - predicted_us)
        return miss if miss <= gate_us else None

    def _predicted_us(self, snap: Incident, report: Report) -> float:
        """When the incident's located source is heard at the report's node (with the wind)."""
        wind = self.config.wind
        if wind == CALM:
            return snap.time_utc_us + haversine_m(snap.lat, snap.lon, report.lat, report.lon) / self.speed_of_sound * 1e6
        dx, dy = LocalFrame(snap.lat, snap.lon).to_xy(report.lat, report.lon)
        return snap.time_utc_us + float(travel_time_s(dx, dy, self.speed_of_sound, wind)) * 1e6

    def _refit_with(self, state: _State, extras: list[Report], now_us: int, strict: bool = False) -> _State | None:
        """The fix redone with the extra reports; None (state untouched) when it fails, or when
        strict and it rejects one of them."""
        group = state.reports + extras
        report_keys = {r.key for r in extras}
        frame = LocalFrame(sum(r.lat for r in group) / len(group), sum(r.lon for r in group) / len(group))
        t_ref = min(r.onset_utc_us for r in group)
        arrivals = [cluster.Arrival(r, *frame.to_xy(r.lat, r.lon), (r.onset_utc_us - t_ref) / 1e6,
                                    cluster.timing_sigma_s(r, self.config)) for r in group]
        chosen = [i for i, a in enumerate(arrivals) if a.report.key in state.used or a.report.key in report_keys]
        old = state.snapshot
        start = (*frame.to_xy(old.lat, old.lon), (old.time_utc_us - t_ref) / 1e6)
        fix = cluster.fit_checked(arrivals, chosen, self.speed_of_sound, self.config, start,
                                  self._judge(frame, t_ref, now_us))
        if fix is None:
            return None
        members = [chosen[k] for k in fix.used]
        if strict and len(report_keys & {arrivals[i].report.key for i in members}) < len(report_keys):
            return None
        rejected = [i for i, a in enumerate(arrivals) if i not in members and a.report.key not in state.shots]
        state.reports = sorted(group, key=lambda r: (r.onset_utc_us, r.node_id))
        state.used = frozenset(arrivals[i].report.key for i in members)
        state.rejected = frozenset(arrivals[i].report.key for i in rejected)
        for report in extras:
            self._index(report, state.number)
        self._place(state, cluster.Source("tdoa", members, rejected, fix), arrivals, frame, t_ref, now_us)
        return state

    def _fitting_fix(self, report: Report, involved: list[_State]) -> _State | None:
        best = None
        sigma_s = cluster.timing_sigma_s(report, self.config)
        for state in involved:
            snap = state.snapshot
            if snap.fix != "tdoa" or len(state.used) < 3 or report.node_id in {r.node_id for r in state.reports}:
                continue
            spread_m = snap.ellipse_95.major_m if snap.ellipse_95 else 0.0
            predicted_us = self._predicted_us(snap, report)
            gate_us = (self.config.gate_sigmas * sigma_s + spread_m / self.speed_of_sound) * 1e6 + self.config.window_margin_us
            miss = abs(report.onset_utc_us - predicted_us)
            if miss <= gate_us and (best is None or miss < best[0]):
                best = (miss, state)
        return None if best is None else best[1]

    def _judge(self, frame: LocalFrame, t_ref: int, now_us: int) -> hearing.Judge:
        """Refuses fixes no real source can give: too far to be heard, or nearer nodes silent."""
        return self._hearing.judge(frame, t_ref, self.speed_of_sound, self.event_now(now_us))

    def _involved(self, report: Report, neighbours: list[Report]) -> list[_State]:
        numbers = sorted({self._owner[m.key] for m in neighbours})
        states = [self._open[n] for n in numbers]
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

    def _reassociate(self, group: list[Report], involved: list[_State], now_us: int) -> list[_State]:
        frame = LocalFrame(sum(r.lat for r in group) / len(group), sum(r.lon for r in group) / len(group))
        t_ref = min(r.onset_utc_us for r in group)
        arrivals = [cluster.Arrival(r, *frame.to_xy(r.lat, r.lon), (r.onset_utc_us - t_ref) / 1e6,
                                    cluster.timing_sigma_s(r, self.config)) for r in group]
        sources = cluster.partition(arrivals, self.speed_of_sound, self.config, self._judge(frame, t_ref, now_us))
        keys = [{arrivals[i].report.key for i in s.members + s.rejected} for s in sources]
        assigned = self._match(involved, keys)
        changed = []
        for k, source in enumerate(sources):
            state = assigned.get(k) or self._new_state(arrivals[source.members[0]].report.event_class, now_us)
            used = frozenset(arrivals[i].report.key for i in source.members)
            rejected = frozenset(arrivals[i].report.key for i in source.rejected)
            if state.snapshot is not None and (used, rejected) == (state.used, state.rejected) and not state.shots:
                continue
            state.reports = sorted((arrivals[i].report for i in source.members + source.rejected),
                                   key=lambda r: (r.onset_utc_us, r.node_id))
            state.used, state.rejected = used, rejected
            state.shots, state.burst_end_us = frozenset(), None    # shots join again (_join_bursts)
            for r in state.reports:
                self._owner[r.key] = state.number
            self._place(state, source, arrivals, frame, t_ref, now_us)
            changed.append(state)
        matched = {id(s) for s in assigned.values()}
        for state in involved:
            if id(state) not in matched:
                changed.append(self._withdraw(state, now_us))
        return changed

    @staticmethod
    def _match(involved: list[_State], keys: list[set]) -> dict[int, _State]:
        """Each new group keeps the id of the old incident it shares most reports with."""
        overlaps = sorted((-len({r.key for r in s.reports} & ks), s.number, k, s)
                          for s in involved for k, ks in enumerate(keys)
                          if {r.key for r in s.reports} & ks)
        assigned: dict[int, _State] = {}
        taken = set()
        for _, number, k, state in overlaps:
            if k not in assigned and number not in taken:
                assigned[k] = state
                taken.add(number)
        return assigned

    def _place(self, state: _State, source: cluster.Source, arrivals, frame, t_ref, now_us) -> None:
        c = self.speed_of_sound
        used = [arrivals[i] for i in source.members]
        first = min(used, key=lambda a: a.t_s)
        fields = dict(fix="detection", time_utc_us=first.report.onset_utc_us, lat=first.report.lat,
                      lon=first.report.lon, ellipse_95=None, side=None, side_probability=None,
                      distance_from_line_m=None)
        if source.kind == "tdoa":
            fix = source.fix
            state.misfit = fix.chi2 / fix.dof if fix.dof else math.inf
            alternatives = []
            if fix.mirror is not None:
                weight = math.exp(-max(0.0, fix.mirror.chi2 - fix.chi2) / 2.0)
                alternatives.append((fix.mirror.x, fix.mirror.y, fix.mirror.covariance, weight))
            where = side_of_line.side_of_fix(self.line, frame, fix.x, fix.y, fix.covariance, alternatives)
            lat, lon = frame.to_latlon(fix.x, fix.y)
            fields.update(fix="tdoa", time_utc_us=t_ref + int(round(fix.t0_s * 1e6)), lat=lat, lon=lon,
                          ellipse_95=error_ellipse(fix.covariance), side=where.side,
                          side_probability=where.probability, distance_from_line_m=where.distance_m)
        elif source.kind == "hyperbola":
            a, b = used
            hyp = hyperbola.hyperbola((a.x, a.y), (b.x, b.y), a.t_s, b.t_s, c,
                                      reach_m=self.config.search_margin_m)
            where = side_of_line.side_of_points(self.line, frame, hyp.branch, hyp.x, hyp.y)
            lat, lon = frame.to_latlon(hyp.x, hyp.y)
            travel_s = math.hypot(hyp.x - first.x, hyp.y - first.y) / c
            fields.update(fix="hyperbola", time_utc_us=first.report.onset_utc_us - int(travel_s * 1e6),
                          lat=lat, lon=lon, side=where.side, side_probability=where.probability,
                          distance_from_line_m=where.distance_m)
        reach_us = int((self.config.max_baseline_m / c + 6 * max(a.sigma_s for a in used)) * 1e6)
        state.close_at_us = max(min(r.onset_utc_us for r in state.reports) + reach_us,
                                state.formed_event_us) + self.config.lateness_us
        self._snapshot(state, now_us, **fields)

    # -- bursts -------------------------------------------------------------------------------

    def _join_bursts(self, incidents: list[Incident], now_us: int) -> list[Incident]:
        """One incident is one source, or one burst from one place: a shot located (or heard)
        where a recent located shot of the same family was fired joins that incident with all
        its reports. An incident this very report formed is dropped unpublished; an older one
        is withdrawn."""
        out: dict[str, _State] = {}
        for state in [self._by_id[i.id] for i in incidents]:
            if self._by_id.get(state.id) is not state:
                continue                                # dropped: joined a burst just now
            host = None
            if state.number in self._open and state.event_class in BURST and state.reports:
                host = self._burst_host(state)
            if host is None:
                out[state.id] = state
                continue
            older, younger = (host, state) if host.number < state.number or state.snapshot.fix != "tdoa" \
                else (state, host)
            self._join(older, younger, out, now_us)
        for state in list(out.values()):
            if state.number in self._open and state.event_class in BURST and state.snapshot.fix == "tdoa":
                # shots heard before the burst was located, left as detections or hyperbolas
                for loose in list(self._burst_candidates(state.reports[0], {state.number})):
                    if loose.snapshot.fix != "tdoa" and loose.number in self._open and \
                            all(self._in_burst_window(state, r) for r in loose.reports):
                        self._join(state, loose, out, now_us)
        return sorted((s.snapshot for s in out.values()), key=lambda i: i.id)

    def _join_duplicates(self, incidents: list[Incident], now_us: int) -> list[Incident]:
        """One place, one time, no node in common: one source. With an unmodelled wind (or a
        wrong temperature) no calm source fits all of a blast's arrivals, and subsets of them
        fit sources metres and a fraction of a second apart, each from its own nodes (a node
        hears one source once; two real sources there would be heard by the same nodes). The
        younger such fix joins the older: its reports become rejected arrivals there."""
        out = {i.id: self._by_id[i.id] for i in incidents if self._by_id.get(i.id) is not None}
        for state in list(out.values()):
            if self._by_id.get(state.id) is not state or state.number not in self._open or \
                    state.event_class in BURST or state.event_class not in IMPULSIVE or \
                    state.snapshot.fix != "tdoa":
                continue
            other = next(self._duplicates(state), None)
            if other is None:
                continue
            older, younger = sorted((state, other), key=lambda s: s.number)
            older.reports = sorted(older.reports + younger.reports, key=lambda r: (r.onset_utc_us, r.node_id))
            older.rejected = older.rejected | {r.key for r in younger.reports}
            older.close_at_us = max(older.close_at_us, younger.close_at_us)
            for r in younger.reports:
                self._owner[r.key] = older.number
            younger.reports, younger.used, younger.rejected, younger.shots = [], frozenset(), frozenset(), frozenset()
            self._snapshot(older, now_us)
            out[older.id] = older
            if younger.number in self._fresh:
                self._open.pop(younger.number, None)
                self._by_id.pop(younger.id, None)
                self._blasts.pop(younger.id, None)
                out.pop(younger.id, None)
            else:
                out[younger.id] = self._withdraw(younger, now_us)
        return sorted((s.snapshot for s in out.values()), key=lambda i: i.id)

    def _duplicates(self, state: _State):
        """Open fixes of the same class that are the same source as this one (see above)."""
        snap = state.snapshot
        nodes = {r.node_id for r in state.reports if r.key in state.used}
        seen = {state.number}
        for r in self._nearby(state.reports[0]):
            number = self._owner.get(r.key)
            if number in seen or number not in self._open:
                continue
            seen.add(number)
            other = self._open[number]
            o = other.snapshot
            if other.event_class != state.event_class or o.fix != "tdoa" or \
                    nodes & {x.node_id for x in other.reports if x.key in other.used}:
                continue
            reach_m = self.config.burst_radius_m + sum(e.major_m for e in (snap.ellipse_95, o.ellipse_95) if e)
            if haversine_m(snap.lat, snap.lon, o.lat, o.lon) > reach_m:
                continue
            travel_s = max(haversine_m(snap.lat, snap.lon, x.lat, x.lon)
                           for x in state.reports + other.reports) / self.speed_of_sound
            slack_us = hearing.MODEL_SLACK * travel_s * 1e6 + self.config.window_margin_us
            if abs(snap.time_utc_us - o.time_utc_us) <= slack_us:
                yield other

    def _join(self, host: _State, other: _State, out: dict, now_us: int) -> None:
        self._merge_burst(host, other, now_us)
        out[host.id] = host
        if other.number in self._fresh:
            self._open.pop(other.number, None)
            self._by_id.pop(other.id, None)
            out.pop(other.id, None)
        else:
            out[other.id] = self._withdraw(other, now_us)

    def _burst_host(self, state: _State) -> _State | None:
        """The open located shot incident (same burst family) this incident belongs to, if any:
        nearest first."""
        best = None
        for host in self._burst_candidates(state.reports[0], {state.number}):
            if host.snapshot.fix == "tdoa":
                fits = self._same_burst_fix(host, state) if state.snapshot.fix == "tdoa" \
                    else all(self._in_burst_window(host, r) for r in state.reports)
            else:
                fits = False
            if fits:
                snap, other = host.snapshot, state.snapshot
                where = (other.lat, other.lon) if other.fix == "tdoa" else (state.reports[0].lat, state.reports[0].lon)
                key = (haversine_m(snap.lat, snap.lon, *where), host.number)
                if best is None or key < best[0]:
                    best = (key, host)
        return None if best is None else best[1]

    def _burst_of(self, report: Report) -> _State | None:
        """A located burst whose later shot this report can be at a node that already heard
        it: joined at once, so later shots cannot mix with the first ones into false fixes."""
        best = None
        for host in self._burst_candidates(report, set()):
            if host.snapshot.fix == "tdoa" and report.node_id in {r.node_id for r in host.reports} \
                    and self._in_burst_window(host, report):
                if best is None or host.number < best.number:
                    best = host
        return best

    def _add_shot(self, host: _State, report: Report, now_us: int) -> _State:
        snap = host.snapshot
        fired_us = report.onset_utc_us - (self._predicted_us(snap, report) - snap.time_utc_us)
        host.reports = sorted(host.reports + [report], key=lambda r: (r.onset_utc_us, r.node_id))
        host.shots = host.shots | {report.key}
        host.burst_end_us = max(max(self._burst_span(host)), int(fired_us))
        self._index(report, host.number)
        self._snapshot(host, now_us)
        return host

    def _burst_candidates(self, first: Report, seen: set):
        """Open incidents of the burst family holding reports heard near the given one."""
        _, i, j = self._cell(first)
        for cls in sorted(BURST):
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    for r in self._cells.get((family(cls), i + di, j + dj), {}).values():
                        number = self._owner.get(r.key)
                        if number not in seen and number in self._open:
                            seen.add(number)
                            if self._open[number].event_class in BURST:
                                yield self._open[number]

    def _burst_span(self, state: _State) -> tuple[int, int]:
        first = state.snapshot.time_utc_us
        return first, max(first, state.burst_end_us or first)

    def _same_burst_fix(self, a: _State, b: _State) -> bool:
        """Two located shots fired close together in place and time (a burst's gap apart)."""
        sa, sb = a.snapshot, b.snapshot
        reach_m = self.config.burst_radius_m + sum(s.ellipse_95.major_m for s in (sa, sb) if s.ellipse_95)
        if haversine_m(sa.lat, sa.lon, sb.lat, sb.lon) > reach_m:
            return False
        (a0, a1), (b0, b1) = self._burst_span(a), self._burst_span(b)
        gap_us = self.config.burst_gap_s * 1e6
        return b0 <= a1 + gap_us and a0 <= b1 + gap_us

    def _in_burst_window(self, host: _State, report: Report) -> bool:
        """The report can be a shot of the host's burst heard at its node: from the direct
        arrival of the first shot to that of a shot fired a burst's gap after the last."""
        if report.clock_error_us > self.config.max_clock_error_us:
            return False
        snap = host.snapshot
        first, last = self._burst_span(host)
        predicted_us = self._predicted_us(snap, report)
        sigma_s = cluster.timing_sigma_s(report, self.config)
        spread_m = snap.ellipse_95.major_m if snap.ellipse_95 else 0.0
        gate_us = (self.config.gate_sigmas * sigma_s + spread_m / self.speed_of_sound) * 1e6 + self.config.window_margin_us
        latest_us = predicted_us + (last - first) + self.config.burst_gap_s * 1e6 + gate_us
        return predicted_us - gate_us <= report.onset_utc_us <= latest_us

    def _merge_burst(self, host: _State, other: _State, now_us: int) -> None:
        """The other incident's reports become the host's other shots (echoes stay rejected)."""
        keys = {r.key for r in other.reports}
        if other.snapshot.fix == "tdoa":
            fired_us = max(self._burst_span(other))
        else:
            fired_us = max(r.onset_utc_us - (self._predicted_us(host.snapshot, r) - host.snapshot.time_utc_us)
                           for r in other.reports)
        host.reports = sorted(host.reports + other.reports, key=lambda r: (r.onset_utc_us, r.node_id))
        host.shots = host.shots | (keys - other.rejected)
        host.rejected = host.rejected | other.rejected
        host.burst_end_us = max(max(self._burst_span(host)), int(fired_us))
        host.close_at_us = max(host.close_at_us, other.close_at_us)
        if host.event_class == "unknown":
            host.event_class = other.event_class       # a named shot names the burst
        for r in other.reports:
            self._owner[r.key] = host.number
        other.reports, other.used, other.rejected, other.shots = [], frozenset(), frozenset(), frozenset()
        self._snapshot(host, now_us, event_class=host.event_class)

    def _shot_count(self, state: _State) -> int:
        """Shots heard: the most reports any one node gave the incident (echoes not counted).
        0 for what is not a shot or blast (tracks, tamper) and for a withdrawn incident."""
        if state.event_class not in IMPULSIVE:
            return 0
        per_node: dict[int, int] = {}
        for r in state.reports:
            if r.key not in state.rejected:
                per_node[r.node_id] = per_node.get(r.node_id, 0) + 1
        return max(per_node.values(), default=0)

    # -- continuous sounds --------------------------------------------------------------------

    def _add_to_track(self, report: Report, now_us: int) -> list[Incident]:
        track, crossing = self._tracker.add(report, self.event_now(now_us))
        number = self._track_owner.get(id(track))
        state = self._open.get(number) if number is not None else None
        if state is None:
            state = self._new_state(report.event_class, now_us)
            state.track = track
            self._track_owner[id(track)] = state.number
        state.reports = list(track.reports)
        self._snapshot_track(state, now_us)
        out = [self._publish(state, now_us)]
        if crossing is not None:
            out.append(self._publish(self._crossing_incident(track, crossing, now_us), now_us))
        return out

    def _snapshot_track(self, state: _State, now_us: int) -> None:
        track = state.track
        t_last, lat, lon = track.path[-1]
        frame = LocalFrame(lat, lon)
        distance = side_of_line.nearest(self.line, frame, 0.0, 0.0).distance_m
        self._snapshot(state, now_us, fix="detection", time_utc_us=track.path[0][0], lat=lat, lon=lon,
                       ellipse_95=None, side=track.side, side_probability=None,
                       distance_from_line_m=distance, track=tuple(track.path),
                       heading_deg=tracks.heading_deg(track.path, 3 * self.config.track_smoothing_s))

    def _crossing_incident(self, track: tracks.Track, crossing: tracks.Crossing, now_us: int) -> _State:
        state = self._new_state(track.event_class, now_us)
        state.reports = list(crossing.reports)
        state.close_at_us = self.event_now(now_us) + self.config.lateness_us
        path = tuple(p for p in track.path if p[0] <= crossing.reports[-1].onset_utc_us)
        self._snapshot(state, now_us, fix="detection", time_utc_us=crossing.time_utc_us,
                       lat=crossing.lat, lon=crossing.lon, ellipse_95=None, side=crossing.to_side,
                       side_probability=None, distance_from_line_m=0.0, track=path,
                       heading_deg=tracks.heading_deg(list(path), 3 * self.config.track_smoothing_s))
        return state

    # -- artillery ----------------------------------------------------------------------------

    def _pair_blasts(self, changed: list[_State], now_us: int) -> list[_State]:
        touched = []
        for state in changed:
            if state.event_class != "explosion":
                continue
            snap = state.snapshot
            blast = artillery.Blast(state.id, snap.time_utc_us, snap.lat, snap.lon) if snap.fix == "tdoa" else None
            partner_id = self._pairs.get(state.id)
            if partner_id is not None:
                partner = self._blasts.get(partner_id)
                if blast is not None and partner is not None and (
                        artillery.flight_speed(blast, partner, self.config) or
                        artillery.flight_speed(partner, blast, self.config)):
                    self._blasts[state.id] = blast
                    continue
                touched += self._unpair(state.id, partner_id, now_us)
            if blast is None:
                self._blasts.pop(state.id, None)
                continue
            self._blasts[state.id] = blast
            free = [b for b in self._blasts.values() if b.incident_id not in self._pairs]
            found = artillery.best_partner(blast, free, self.config)
            if found is not None:
                other, role = found
                launch, impact = (state.id, other.incident_id) if role == "launch" else (other.incident_id, state.id)
                touched += self._link(launch, impact, now_us)
        return touched

    def _link(self, launch: str, impact: str, now_us: int) -> list[_State]:
        self._pairs[launch], self._pairs[impact] = impact, launch
        out = []
        for number_id, fields in ((launch, {"impact_id": impact}), (impact, {"launch_id": launch})):
            state = self._by_id.get(number_id)
            if state is not None:
                self._snapshot(state, now_us, **fields)
                out.append(state)
        return out

    def _unpair(self, a: str, b: str, now_us: int) -> list[_State]:
        out = []
        for number_id in (a, b):
            self._pairs.pop(number_id, None)
            state = self._by_id.get(number_id)
            if state is not None:
                self._snapshot(state, now_us, launch_id=None, impact_id=None)
                out.append(state)
        return out

    # -- bookkeeping --------------------------------------------------------------------------

    def _new_state(self, event_class: str, now_us: int) -> _State:
        state = _State(self._next, event_class, now_us)
        self._fresh.add(state.number)
        state.formed_event_us = state.touched_event_us = self.event_now(now_us)
        self._next += 1
        self._open[state.number] = state
        self._by_id[state.id] = state
        return state

    def _new_detection(self, report: Report, now_us: int) -> _State:
        state = self._new_state(report.event_class, now_us)
        state.reports = [report]
        state.used = frozenset([report.key])
        state.close_at_us = max(report.onset_utc_us, self.event_now(now_us)) + self.config.lateness_us
        self._snapshot(state, now_us, fix="detection", time_utc_us=report.onset_utc_us, lat=report.lat,
                       lon=report.lon, ellipse_95=None, side=None, side_probability=None,
                       distance_from_line_m=None)
        return state

    def _snapshot(self, state: _State, now_us: int, **fields) -> None:
        state.touched_event_us = self.event_now(now_us)
        used_nodes = tuple(r.node_id for r in state.reports if r.key in state.used) \
            if state.used else tuple(dict.fromkeys(r.node_id for r in state.reports))
        rejected_nodes = tuple(r.node_id for r in state.reports if r.key in state.rejected)
        common = dict(nodes=used_nodes, rejected_nodes=rejected_nodes, shots=self._shot_count(state),
                      reports=tuple(r.evidence_id for r in state.reports if r.evidence_id is not None),
                      updated_at_us=now_us, provisional=not state.final)
        if state.snapshot is None:
            state.snapshot = Incident(
                id=state.id, event_class=state.event_class, status="new", formed_at_us=now_us, version=1,
                **{"fix": "detection", "time_utc_us": 0, "lat": None, "lon": None, "ellipse_95": None,
                   "side": None, "side_probability": None, "distance_from_line_m": None,
                   **common, **fields})
        else:
            state.snapshot = replace(state.snapshot, version=state.snapshot.version + 1, **common, **fields)

    def _publish(self, state: _State, now_us: int) -> Incident:
        return state.snapshot

    def _withdraw(self, state: _State, now_us: int) -> _State:
        """An incident whose every report now belongs to others: published once more, empty."""
        state.reports, state.used, state.rejected, state.shots = [], frozenset(), frozenset(), frozenset()
        state.final = True
        self._snapshot(state, now_us, fix="detection", lat=None, lon=None, ellipse_95=None, side=None,
                       side_probability=None, distance_from_line_m=None, launch_id=None, impact_id=None)
        self._open.pop(state.number, None)
        self._blasts.pop(state.id, None)
        return state

    def _close(self, state: _State, now_us: int) -> Incident:
        state.final = True
        self._snapshot(state, now_us)
        self._open.pop(state.number, None)
        for r in state.reports:
            if self._owner.get(r.key) == state.number:
                del self._owner[r.key]
                self._cells.get(self._cell(r), {}).pop(r.key, None)
        return state.snapshot

    def _forget_old(self, event_us: int) -> None:
        horizon = event_us - int((self.config.flight_max_s * 2 + self.config.max_baseline_m / 300.0) * 1e6) \
            - 2 * self.config.lateness_us
        for key in [k for k, seen in self._seen.items() if seen < horizon and k not in self._owner]:
            del self._seen[key]
        for bid in [b for b, blast in self._blasts.items() if blast.time_utc_us < horizon]:
            del self._blasts[bid]
        for sid in [s for s, st in self._by_id.items() if st.final and st.touched_event_us < horizon]:
            del self._by_id[sid]
            self._pairs.pop(sid, None)
        self._hearing.forget(horizon)
        for cell in [k for k, v in self._cells.items() if not v]:
            del self._cells[cell]

    def _cell(self, report: Report) -> tuple:
        return (family(report.event_class), math.floor(report.lat / self._cell_lat),
                math.floor(report.lon / self._cell_lon))

    def _index(self, report: Report, number: int) -> None:
        self._owner[report.key] = number
        self._cells.setdefault(self._cell(report), {})[report.key] = report

    def _nearby(self, report: Report):
        fam, i, j = self._cell(report)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                yield from self._cells.get((fam, i + di, j + dj), {}).values()

    def _neighbours(self, report: Report) -> list[Report]:
        """The open reports that could share a source with this one (_consistent), in the
        index's order; one numpy pass over the nine cells (hundreds of reports in crowded
        traffic, which one call each made a tenth of the service's CPU)."""
        near = list(self._nearby(report))
        if not near:
            return []
        n = len(near)
        lat = np.radians(np.fromiter((m.lat for m in near), float, n))
        lon = np.fromiter((m.lon for m in near), float, n)
        onset = np.fromiter((m.onset_utc_us for m in near), float, n)
        clock = np.fromiter((m.clock_error_us for m in near), float, n)
        node = np.fromiter((m.node_id for m in near), np.int64, n)
        p1 = math.radians(report.lat)
        a = np.sin((lat - p1) / 2) ** 2 + math.cos(p1) * np.cos(lat) * np.sin(np.radians(lon - report.lon) / 2) ** 2
        distance = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
        floor = self.config.timing_floor_us
        sigma_us = math.hypot(report.clock_error_us, floor) + np.hypot(clock, floor)
        slack_us = distance / self.speed_of_sound * 1e6 + 3.0 * sigma_us + self.config.window_margin_us
        ok = (node != report.node_id) & (distance <= self.config.max_baseline_m) & \
            (np.abs(onset - report.onset_utc_us) <= slack_us)
        return [near[k] for k in np.flatnonzero(ok)]

    def _consistent(self, a: Report, b: Report) -> bool:
        if a.node_id == b.node_id:
            return False
        distance = haversine_m(a.lat, a.lon, b.lat, b.lon)
        if distance > self.config.max_baseline_m:
            return False
        sigma = cluster.timing_sigma_s(a, self.config) + cluster.timing_sigma_s(b, self.config)
        slack_us = (distance / self.speed_of_sound + 3.0 * sigma) * 1e6 + self.config.window_margin_us
        return abs(a.onset_utc_us - b.onset_utc_us) <= slack_us

    @staticmethod
    def _unique_incidents(incidents: list[Incident]) -> list[Incident]:
        latest: dict[str, Incident] = {}
        for incident in incidents:
            latest[incident.id] = incident
        return sorted(latest.values(), key=lambda i: i.id)

    @staticmethod
    def _unique(states: list[_State]) -> list[Incident]:
        seen: dict[str, Incident] = {}
        for state in states:
            seen[state.id] = state.snapshot
        return sorted(seen.values(), key=lambda i: i.id)
