"""Located incidents: where their source is heard when (prediction and gate), refitting a fix
with more arrivals, and turning a source (tdoa fix, hyperbola, detection) into an incident's
fields (position, ellipse, side of the line)."""
from __future__ import annotations

import math
from collections import OrderedDict

from ..geo import LocalFrame, haversine_m
from . import cluster, hearing, hyperbola, mirror, side as side_of_line, timing
from .airmemory import AirMemory
from .ellipse import error_ellipse
from .incident import FITTED, Incident
from .lifecycle import Context, IncidentState, Ledger, by_time
from .report import Report, timed
from .sound import CALM, travel_time_s

AIR_KEPT = 10_000          # located incidents whose fitted air is remembered for their gates


class Fixes:
    def __init__(self, ctx: Context, ledger: Ledger, index, node_timing: timing.NodeTiming | None = None) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.index = index              # index.ReportIndex
        self.node_timing = node_timing or timing.NodeTiming(ctx.config)
        # incident id -> (speed of sound, wind, their 1-sigma) its fix estimated
        self.air_of: OrderedDict[str, tuple[float, tuple[float, float], float, float]] = OrderedDict()
        self.air_memory = AirMemory()   # the air recent fixes of the segment estimated (airmemory.py)

    @property
    def config(self):
        return self.ctx.config

    @property
    def speed_of_sound(self) -> float:
        return self.ctx.speed_of_sound

    def arrivals(self, reports, frame: LocalFrame, t_ref: int) -> list[cluster.Arrival]:
        return [cluster.Arrival(r, *frame.to_xy(r.lat, r.lon), (r.onset_utc_us - t_ref) / 1e6,
                                cluster.timing_sigma_s(r, self.config)) for r in reports]

    def judge(self, frame: LocalFrame, t_ref: int, now_us: int, own: frozenset = frozenset()) -> hearing.Judge:
        """Refuses fixes no real source can give: too far to be heard, or nearer nodes silent;
        and gives the fits the air carried from recent fixes nearby (their own incidents', `own`,
        left out)."""
        judge = self.ctx.hearing.judge(frame, t_ref, self.speed_of_sound, self.ctx.event_now(now_us))
        judge.air = self.air_memory.prior(self.config.air, self.speed_of_sound, frame.lat0, frame.lon0,
                                          t_ref, own)
        return judge

    def predicted_us(self, snap: Incident, report: Report) -> float:
        """When the incident's located source is heard at the report's node, in the air its
        fix estimated (else the configured speed of sound and wind). A "mirror" fix predicts
        from its first place only, as a "tdoa" fix does: gating on either place let one
        blast's incident take another blast's reports where its second place predicted them
        (test_cluster_failover, "incident mixes blasts"); an arrival that tells the second
        place is the right one is taken by the anchored search, whose source with that node
        is stronger than the row's fix."""
        c, wind, _, _ = self.air_of.get(snap.id, (self.speed_of_sound, self.config.wind, 0.0, 0.0))
        if wind == CALM:
            return snap.time_utc_us + haversine_m(snap.lat, snap.lon, report.lat, report.lon) / c * 1e6
        dx, dy = LocalFrame(snap.lat, snap.lon).to_xy(report.lat, report.lon)
        return snap.time_utc_us + float(travel_time_s(dx, dy, c, wind)) * 1e6

    def gate_us(self, snap: Incident, report: Report) -> float:
        """How far from the prediction an arrival of the fix's source may lie: gate_sigmas
        standard errors (the arrival's, the path's jitter at its range, what the fix left
        unknown of the air over the travel time), the fix's spread (95% major semi-axis) over c,
        and the margin."""
        c, _, c_sd, wind_sd = self.air_of.get(snap.id, (self.speed_of_sound, CALM, 0.0, 0.0))
        distance_m = haversine_m(snap.lat, snap.lon, report.lat, report.lon)
        sigma_s = math.sqrt(cluster.timing_sigma_s(report, self.config) ** 2
                            + timing.jitter_s2_per_m(self.config) * distance_m
                            + (distance_m / c * math.hypot(c_sd, wind_sd) / c) ** 2)
        spread_m = snap.ellipse_95.major_m if snap.ellipse_95 else 0.0
        return (self.config.gate_sigmas * sigma_s + spread_m / c) * 1e6 + self.config.window_margin_us

    def miss_us(self, state: IncidentState, report: Report) -> float | None:
        """How far the report's onset is from the fix's prediction, None outside its gate."""
        snap = state.snapshot
        miss = abs(report.onset_utc_us - self.predicted_us(snap, report))
        return miss if miss <= self.gate_us(snap, report) else None

    def fitting_fix(self, report: Report, involved: list[IncidentState]) -> IncidentState | None:
        """The fix of three or more nodes that predicts the report best, within its gate."""
        best = None
        for state in involved:
            snap = state.snapshot
            if snap.fix not in FITTED or len(state.used) < 3 or report.node_id in {r.node_id for r in state.reports}:
                continue
            miss = abs(report.onset_utc_us - self.predicted_us(snap, report))
            if miss <= self.gate_us(snap, report) and (best is None or miss < best[0]):
                best = (miss, state)
        return None if best is None else best[1]

    def refit(self, state: IncidentState, report: Report, now_us: int) -> IncidentState | None:
        """The incident's fix redone with one more arrival, no search and no other incident
        touched; None when the refit does not pass the chi-square test (then the caller
        re-associates in full)."""
        return self.refit_with(state, [report], now_us)

    def refit_with(self, state: IncidentState, extras: list[Report], now_us: int,
                   strict: bool = False) -> IncidentState | None:
        """The fix redone with the extra reports; None (state untouched) when it fails, or when
        strict and it rejects one of them."""
        group = state.reports + extras
        report_keys = {r.key for r in extras}
        frame = LocalFrame(sum(r.lat for r in group) / len(group), sum(r.lon for r in group) / len(group))
        t_ref = min(r.onset_utc_us for r in group)
        arrivals = self.arrivals(group, frame, t_ref)
        chosen = [i for i, a in enumerate(arrivals) if a.report.key in state.used or a.report.key in report_keys]
        old = state.snapshot
        # From the first place only (a "mirror" fix's too, see predicted_us): the fit finds
        # the second again when the arrivals still fit it.
        start = (*frame.to_xy(old.lat, old.lon), (old.time_utc_us - t_ref) / 1e6)
        fix = cluster.fit_checked(arrivals, chosen, self.speed_of_sound, self.config, start,
                                  self.judge(frame, t_ref, now_us, frozenset({state.id})))
        if fix is None:
            return None
        members = [chosen[k] for k in fix.used]
        if strict and len(report_keys & {arrivals[i].report.key for i in members}) < len(report_keys):
            return None
        rejected = [i for i, a in enumerate(arrivals) if i not in members and a.report.key not in state.shots]
        state.reports = by_time(group)
        state.used = frozenset(arrivals[i].report.key for i in members)
        state.rejected = frozenset(arrivals[i].report.key for i in rejected)
        for report in extras:
            self.index.add(report, state.number)
        self.place(state, cluster.Source("tdoa", members, rejected, fix), arrivals, frame, t_ref, now_us)
        return state

    def place(self, state: IncidentState, source: cluster.Source, arrivals, frame, t_ref, now_us) -> None:
        """The incident's fields from its source: position, time, ellipse, side of the line,
        and when it closes."""
        c = self.speed_of_sound
        used = [arrivals[i] for i in source.members]
        first = min(used, key=lambda a: a.t_s)
        fields = dict(fix="detection", time_utc_us=first.report.onset_utc_us, lat=first.report.lat,
                      lon=first.report.lon, ellipse_95=None, side=None, side_probability=None,
                      distance_from_line_m=None)
        if source.kind == "tdoa":
            fix = source.fix
            state.misfit = fix.chi2 / fix.dof if fix.dof else math.inf
            placed = mirror.place(self.ctx.line, frame, fix)
            where = placed.side
            lat, lon = frame.to_latlon(fix.x, fix.y)
            self._remember_air(state, fix)
            self.air_memory.learn(state.id, lat, lon, t_ref + int(round(fix.t0_s * 1e6)), fix, self.speed_of_sound)
            self._learn_timing(state, fix, arrivals, source)
            fields.update(fix=placed.kind, time_utc_us=t_ref + int(round(fix.t0_s * 1e6)), lat=lat, lon=lon,
                          ellipse_95=error_ellipse(placed.cov_xy), side=where.side,
                          side_probability=where.probability, distance_from_line_m=where.distance_m,
                          mirror=placed.mirror)
        else:
            self.air_memory.drop(state.id)
        if source.kind == "hyperbola":
            a, b = used
            hyp = hyperbola.hyperbola((a.x, a.y), (b.x, b.y), a.t_s, b.t_s, c,
                                      reach_m=self.config.search_margin_m)
            where = side_of_line.side_of_points(self.ctx.line, frame, hyp.branch, hyp.x, hyp.y)
            lat, lon = frame.to_latlon(hyp.x, hyp.y)
            travel_s = math.hypot(hyp.x - first.x, hyp.y - first.y) / c
            fields.update(fix="hyperbola", time_utc_us=first.report.onset_utc_us - int(travel_s * 1e6),
                          lat=lat, lon=lon, side=where.side, side_probability=where.probability,
                          distance_from_line_m=where.distance_m)
        reach_us = int((self.config.max_baseline_m / c + 6 * max(a.sigma_s for a in used)) * 1e6)
        state.close_at_us = max(min(r.onset_utc_us for r in state.reports) + reach_us,
                                state.formed_event_us) + self.config.lateness_us
        self.ledger.snapshot(state, now_us, **fields)

    def _remember_air(self, state: IncidentState, fix) -> None:
        self.air_of.pop(state.id, None)
        if fix.c_mps:
            self.air_of[state.id] = (fix.c_mps, fix.wind, fix.air_sd[0], math.hypot(*fix.air_sd[1:]))
            while len(self.air_of) > AIR_KEPT:
                self.air_of.popitem(last=False)

    def _learn_timing(self, state: IncidentState, fix, arrivals, source: cluster.Source) -> None:
        """Each node's miss from a fix that many nodes agree on (timing.NodeTiming)."""
        if len(source.members) < timing.LEARN_MIN_NODES:
            return
        c = fix.c_mps or self.speed_of_sound
        for i in list(source.members) + list(source.rejected):
            a = arrivals[i]
            if not timed(a.report, self.config.max_clock_error_us):
                continue
            predicted = fix.t0_s + float(travel_time_s(a.x - fix.x, a.y - fix.y, c, fix.wind))
            sigma_us = math.sqrt(timing.model_sigma_us(a.report, self.config) ** 2
                                 + timing.jitter_s2_per_m(self.config) * math.hypot(a.x - fix.x, a.y - fix.y) * 1e12)
            self.node_timing.learn(state.number, a.report.node_id, (a.t_s - predicted) * 1e6, sigma_us)
