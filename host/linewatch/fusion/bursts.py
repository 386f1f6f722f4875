"""Bursts (classes report.BURST: small arms and unknown): one incident is one source or one
burst from one place. A shot heard within `shot_gap_s` of the last one at the same node is a
later shot of that node's train and is never associated on its own (Bursts.follows). A later shot at a node that heard a located shot joins it at once; a
new or changed incident of the family joins an open located one fired there a burst's gap
apart (see docs/fusion.md, Bursts)."""
from __future__ import annotations

from ..geo import haversine_m
from . import mirror
from .fixes import Fixes
from .incident import FITTED, Incident
from .lifecycle import Context, IncidentState, Ledger, by_time
from .report import BURST, Report, family, timed

_FAMILIES = tuple(sorted({family(cls) for cls in BURST}))


class Bursts:
    def __init__(self, ctx: Context, ledger: Ledger, index, fixes: Fixes) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.index = index              # index.ReportIndex
        self.fixes = fixes
        # node -> (first shot's key, earliest and latest onset) of the shot train heard there
        self._trains: dict[int, tuple[tuple, int, int]] = {}

    @property
    def config(self):
        return self.ctx.config

    def join(self, incidents: list[Incident], now_us: int) -> list[Incident]:
        """One incident is one source, or one burst from one place: a shot located (or heard)
        where a recent located shot of the same family was fired joins that incident with all
        its reports. An incident this very report formed is dropped unpublished; an older one
        is withdrawn."""
        by_id = self.ledger.by_id
        out: dict[str, IncidentState] = {}
        for state in [by_id[i.id] for i in incidents]:
            if by_id.get(state.id) is not state:
                continue                                # dropped: joined a burst just now
            host = None
            if state.number in self.ledger.open and state.event_class in BURST and state.reports:
                host = self._host(state)
            if host is None:
                out[state.id] = state
                continue
            older, younger = (host, state) if host.number < state.number or state.snapshot.fix not in FITTED \
                else (state, host)
            self._join(older, younger, out, now_us)
        for state in list(out.values()):
            if state.number in self.ledger.open and state.event_class in BURST and state.snapshot.fix in FITTED:
                # shots heard before the burst was located, left as detections or hyperbolas
                for loose in list(self._candidates(state.reports[0], {state.number})):
                    if loose.snapshot.fix not in FITTED and loose.number in self.ledger.open and \
                            all(self._in_window(state, r) for r in loose.reports):
                        self._join(state, loose, out, now_us)
        return sorted((s.snapshot for s in out.values()), key=lambda i: i.id)

    def follows(self, report: Report) -> tuple | None:
        """The key of the first shot of the train this report continues at its node, or None
        (then the report starts a train). A burst is heard at each node as a train of shots
        0.07-0.3 s apart; only the train's first shot dates the burst there (a later shot,
        fired 0.1 s x k after it, would fit another place), so the later shots never enter
        association: they stay with the first shot's report, whichever incident holds it
        (Ledger.followers), and count as its shots."""
        if report.event_class not in BURST or not timed(report, self.config.max_clock_error_us):
            return None
        train = self._trains.get(report.node_id)
        gap_us = self.config.shot_gap_s * 1e6
        if train is not None and train[0] in self.index.owner and \
                train[1] - gap_us <= report.onset_utc_us <= train[2] + gap_us:
            self._trains[report.node_id] = (train[0], min(train[1], report.onset_utc_us),
                                            max(train[2], report.onset_utc_us))
            return train[0]
        self._trains[report.node_id] = (report.key, report.onset_utc_us, report.onset_utc_us)
        return None

    def add_follower(self, first: tuple, report: Report, now_us: int) -> list[Incident]:
        """A later shot of a train: the incident holding its first shot counts one shot more."""
        self.ledger.followers.setdefault(first, []).append(report)
        state = self.ledger.open.get(self.index.owner.get(first))
        if state is None:
            return []
        self.ledger.snapshot(state, now_us)
        return [state.snapshot]

    def of(self, report: Report) -> IncidentState | None:
        """A located burst whose later shot this report can be at a node that already heard
        it: joined at once, so later shots cannot mix with the first ones into false fixes."""
        best = None
        for host in self._candidates(report, set()):
            if host.snapshot.fix in FITTED and report.node_id in {r.node_id for r in host.reports} \
                    and self._in_window(host, report):
                if best is None or host.number < best.number:
                    best = host
        return best

    def add_shot(self, host: IncidentState, report: Report, now_us: int) -> IncidentState:
        snap = host.snapshot
        fired_us = report.onset_utc_us - (self.fixes.predicted_us(snap, report) - snap.time_utc_us)
        host.reports = by_time(host.reports + [report])
        host.shots = host.shots | {report.key}
        host.burst_end_us = max(max(self._span(host)), int(fired_us))
        self.index.add(report, host.number)
        self.ledger.snapshot(host, now_us)
        return host

    def _same_burst_fix(self, a: IncidentState, b: IncidentState) -> bool:
        """Two located shots fired close together in place and time (a burst's gap apart)."""
        sa, sb = a.snapshot, b.snapshot
        reach_m = self.config.burst_radius_m + sum(s.ellipse_95.major_m for s in (sa, sb) if s.ellipse_95)
        if mirror.apart_m(sa, sb) > reach_m:
            return False
        (a0, a1), (b0, b1) = self._span(a), self._span(b)
        gap_us = self.config.burst_gap_s * 1e6
        return b0 <= a1 + gap_us and a0 <= b1 + gap_us

    def _in_window(self, host: IncidentState, report: Report) -> bool:
        """The report can be a shot of the host's burst heard at its node: from the direct
        arrival of the first shot to that of a shot fired a burst's gap after the last."""
        if not timed(report, self.config.max_clock_error_us):
            return False
        snap = host.snapshot
        first, last = self._span(host)
        predicted_us = self.fixes.predicted_us(snap, report)
        gate_us = self.fixes.gate_us(snap, report)
        latest_us = predicted_us + (last - first) + self.config.burst_gap_s * 1e6 + gate_us
        return predicted_us - gate_us <= report.onset_utc_us <= latest_us

    def _merge(self, host: IncidentState, other: IncidentState, now_us: int) -> None:
        """The other incident's reports become the host's other shots (echoes stay rejected)."""
        keys = {r.key for r in other.reports}
        if other.snapshot.fix in FITTED:
            fired_us = max(self._span(other))
        else:
            fired_us = max(r.onset_utc_us - (self.fixes.predicted_us(host.snapshot, r) - host.snapshot.time_utc_us)
                           for r in other.reports)
        host.reports = by_time(host.reports + other.reports)
        host.shots = host.shots | (keys - other.rejected)
        host.rejected = host.rejected | other.rejected
        host.burst_end_us = max(max(self._span(host)), int(fired_us))
        host.close_at_us = max(host.close_at_us, other.close_at_us)
        for r in other.reports:
            self.index.owner[r.key] = host.number
        other.reports, other.used, other.rejected, other.shots = [], frozenset(), frozenset(), frozenset()
        self.ledger.snapshot(host, now_us)     # a named shot names the burst (Ledger.snapshot)

    def _join(self, host: IncidentState, other: IncidentState, out: dict, now_us: int) -> None:
        self._merge(host, other, now_us)
        out[host.id] = host
        self.ledger.retire(other, out, now_us)

    def _host(self, state: IncidentState) -> IncidentState | None:
        """The open located shot incident (same burst family) this incident belongs to, if any:
        nearest first."""
        best = None
        for host in self._candidates(state.reports[0], {state.number}):
            if host.snapshot.fix in FITTED:
                fits = self._same_burst_fix(host, state) if state.snapshot.fix in FITTED \
                    else all(self._in_window(host, r) for r in state.reports)
            else:
                fits = False
            if fits:
                snap, other = host.snapshot, state.snapshot
                where = (other.lat, other.lon) if other.fix in FITTED else (state.reports[0].lat, state.reports[0].lon)
                key = (haversine_m(snap.lat, snap.lon, *where), host.number)
                if best is None or key < best[0]:
                    best = (key, host)
        return None if best is None else best[1]

    def _candidates(self, first: Report, seen: set):
        """Open incidents of the burst family holding reports heard near the given one."""
        open_ = self.ledger.open
        for r in self.index.nearby(first, _FAMILIES):
            number = self.index.owner.get(r.key)
            if number not in seen and number in open_:
                seen.add(number)
                if open_[number].event_class in BURST:
                    yield open_[number]

    def _span(self, state: IncidentState) -> tuple[int, int]:
        first = state.snapshot.time_utc_us
        return first, max(first, state.burst_end_us or first)

