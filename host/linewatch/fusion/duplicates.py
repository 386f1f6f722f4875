"""One place, one time, no node in common: one source (impulsive classes outside the burst
family). With an unmodelled wind (or a wrong temperature) no calm source fits all of a
blast's arrivals, and subsets of them fit sources metres and a fraction of a second apart,
each from its own nodes (a node hears one source once; two real sources there would be heard
by the same nodes). The younger such fix joins the older: its reports become rejected
arrivals there."""
from __future__ import annotations

from ..geo import haversine_m
from . import hearing
from .incident import FITTED, Incident
from .lifecycle import Context, IncidentState, Ledger, by_time
from .report import BURST, IMPULSIVE, compatible


class Duplicates:
    def __init__(self, ctx: Context, ledger: Ledger, index) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.index = index              # index.ReportIndex

    def join(self, incidents: list[Incident], now_us: int) -> list[Incident]:
        ledger = self.ledger
        out = {i.id: ledger.by_id[i.id] for i in incidents if ledger.by_id.get(i.id) is not None}
        for state in list(out.values()):
            if ledger.by_id.get(state.id) is not state or state.number not in ledger.open or \
                    state.event_class in BURST or state.event_class not in IMPULSIVE or \
                    state.snapshot.fix not in FITTED:
                continue
            other = next(self._duplicates(state), None)
            if other is None:
                continue
            older, younger = sorted((state, other), key=lambda s: s.number)
            older.reports = by_time(older.reports + younger.reports)
            older.rejected = older.rejected | {r.key for r in younger.reports}
            older.close_at_us = max(older.close_at_us, younger.close_at_us)
            for r in younger.reports:
                self.index.owner[r.key] = older.number
            younger.reports, younger.used, younger.rejected, younger.shots = [], frozenset(), frozenset(), frozenset()
            ledger.snapshot(older, now_us)
            out[older.id] = older
            ledger.retire(younger, out, now_us)
        return sorted((s.snapshot for s in out.values()), key=lambda i: i.id)

    def _duplicates(self, state: IncidentState):
        """Open fixes of a compatible class (report.compatible) that are the same source as this one (see above)."""
        snap = state.snapshot
        nodes = {r.node_id for r in state.reports if r.key in state.used}
        seen = {state.number}
        for r in self.index.nearby(state.reports[0]):
            number = self.index.owner.get(r.key)
            if number in seen or number not in self.ledger.open:
                continue
            seen.add(number)
            other = self.ledger.open[number]
            o = other.snapshot
            if not compatible(other.event_class, state.event_class) or o.fix not in FITTED or \
                    nodes & {x.node_id for x in other.reports if x.key in other.used}:
                continue
            reach_m = self.ctx.config.burst_radius_m + sum(e.major_m for e in (snap.ellipse_95, o.ellipse_95) if e)
            if haversine_m(snap.lat, snap.lon, o.lat, o.lon) > reach_m:
                continue
            travel_s = max(haversine_m(snap.lat, snap.lon, x.lat, x.lon)
                           for x in state.reports + other.reports) / self.ctx.speed_of_sound
            slack_us = hearing.MODEL_SLACK * travel_s * 1e6 + self.ctx.config.window_margin_us
            if abs(snap.time_utc_us - o.time_utc_us) <= slack_us:
                yield other
