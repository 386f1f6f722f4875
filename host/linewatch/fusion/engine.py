"""The fusion engine: reports in, incidents out. Stateful, deterministic, no I/O, no clock.

Every call gets the commission's current time (`now_us`) from the caller. Windows and
forgetting horizons are kept in EVENT time (onset times), so a replay or a virtual-time run
days away from the wall clock behaves like live operation: the engine's event clock is the
latest onset seen from a timed node, advanced between reports by the caller's clock
(lifecycle.EventClock). `add` returns the incidents that the report created or changed; `tick`
closes incidents whose window for late reports has passed and returns them once more with
`provisional` false. Nothing else changes an incident, so a caller that publishes what these
two return publishes every state.

The engine only routes; each job has its module: impulsive reports are associated into
sources (association.py, with fixes.py for located incidents), shots into bursts (bursts.py),
one source's split fixes joined (duplicates.py), located explosions paired as launch and
impact (artillery.Pairing), continuous sounds tracked (tracking.py, tracks.py); open reports
are found through the spatial index (index.py), incidents numbered, snapshotted and closed by
the ledger (lifecycle.py). Tamper reports are detections of their own.
"""
from __future__ import annotations

from ..geo import ContactLine
from . import artillery
from .association import Association
from .bursts import Bursts
from .config import FusionConfig
from .duplicates import Duplicates
from .fixes import Fixes
from .incident import Incident, incident_number
from .index import ReportIndex
from .lifecycle import Context, Ledger, unique_incidents
from .merges import Merges
from .report import CONTINUOUS, IMPULSIVE, Report
from .sound import speed_of_sound
from .timing import NodeTiming
from .tracking import TrackIncidents


class FusionEngine:
    def __init__(self, line: ContactLine, config: FusionConfig | None = None):
        self.line = line
        self._ctx = Context(line, config or FusionConfig())
        self._seen: dict[tuple, int] = {}                   # report key -> event clock when seen
        self._index = ReportIndex(self._ctx.config, max(abs(lat) for lat, _ in line.vertices))
        self._pairing = None
        self._ledger = Ledger(self._ctx, self._index, lambda incident_id: self._pairing.forget_blast(incident_id))
        self._pairing = artillery.Pairing(self._ledger, self._ctx.config)
        self._timing = NodeTiming(self._ctx.config)
        self._fixes = Fixes(self._ctx, self._ledger, self._index, self._timing)
        self._bursts = Bursts(self._ctx, self._ledger, self._index, self._fixes)
        self._duplicates = Duplicates(self._ctx, self._ledger, self._index)
        self._merges = Merges(self._ctx, self._ledger, self._index, self._fixes)
        self._association = Association(self._ctx, self._ledger, self._index, self._fixes, self._bursts,
                                        self._pairing)
        self._tracks = TrackIncidents(self._ctx, self._ledger)

    # -- public API ---------------------------------------------------------------------------

    @property
    def config(self) -> FusionConfig:
        return self._ctx.config

    @property
    def speed_of_sound(self) -> float:
        return self._ctx.speed_of_sound

    @property
    def defer_wide(self) -> bool:
        """With defer_wide, add() leaves the search over the whole hearing range (~10 ms a
        report in crowded traffic) to settle(), which the service calls when no frame waits:
        a report that completes a fix near its node is then never queued behind those searches."""
        return self._association.defer_wide

    @defer_wide.setter
    def defer_wide(self, value: bool) -> None:
        self._association.defer_wide = bool(value)

    @property
    def wide_skipped(self) -> int:
        """Parked searches dropped (association.MAX_PARKED)."""
        return self._association.wide_skipped

    def set_temperature(self, temperature_c: float) -> None:
        """Air temperature from heartbeats or the operator; applies to fixes made from now on."""
        self._ctx.speed_of_sound = speed_of_sound(temperature_c)

    def set_wind(self, speed_mps: float, from_deg: float) -> None:
        """Wind from a met station or the operator (from_deg: the bearing it blows from);
        applies to fixes made from now on."""
        self._ctx.set_wind(speed_mps, from_deg)

    def add(self, report: Report, now_us: int) -> list[Incident]:
        if not isinstance(report, Report):
            raise TypeError("fusion takes Report values, not %s" % type(report).__name__)
        if report.key in self._seen:
            return []                                   # the same frame delivered twice
        report = self._timing.weigh(report)             # a node whose clock disagrees weighs less
        self._ctx.clock.observe(report, now_us, self.config.max_clock_error_us)
        self._seen[report.key] = self.event_now(now_us)
        self._ctx.hearing.observe(report, self.event_now(now_us))
        self._ledger.fresh = set()
        if report.event_class in CONTINUOUS:
            return self._ledger.publish(self._ledger.visible(self._tracks.add(report, now_us)))
        if report.event_class in IMPULSIVE:
            return self._ledger.publish(self._ledger.visible(self._joined(self._association.add(report, now_us), now_us)))
        return self._ledger.publish([self._ledger.new_detection(report, now_us).snapshot])

    def node_timing(self) -> dict[int, dict]:
        """What fusion learned of each node's clock from fixes many nodes agree on:
        {node: {offset_us, spread_us, fixes, flagged}} (timing.NodeTiming)."""
        return self._timing.status()

    def parked(self) -> int:
        """Reports whose wide search add() deferred (defer_wide), not yet settled."""
        return len(self._association.parked)

    def settle(self, now_us: int, limit: int = 1) -> list[Incident]:
        """Run up to `limit` deferred wide searches, oldest first (see defer_wide)."""
        out: list[Incident] = []
        parked = self._association.parked
        for _ in range(min(limit, len(parked))):
            self._ledger.fresh = set()
            report = parked.popleft()
            out += self._joined(self._association.settle(report, now_us), now_us)
        return self._ledger.publish(self._ledger.visible(unique_incidents(out)))

    def tick(self, now_us: int) -> list[Incident]:
        closed = []
        event_us = self.event_now(now_us)
        for state in list(self._ledger.open.values()):
            if state.track is None and event_us >= state.close_at_us:
                closed.append(self._ledger.close(state, now_us))
        for state in self._tracks.expire(event_us):
            closed.append(self._ledger.close(state, now_us))
        closed = self._ledger.publish(self._ledger.visible(closed))
        self._forget_old(event_us)
        return sorted(closed, key=lambda i: i.id)

    def event_now(self, now_us: int) -> int:
        """The engine's clock in event time: the caller's clock until a timed report arrives."""
        return self._ctx.event_now(now_us)

    def incident(self, incident_id_: str) -> Incident | None:
        """The latest version of an incident that went out, by the id it went out under."""
        return self._ledger.public_view(incident_id_)

    def number_after(self, last_id: str | None) -> None:
        """Public ids continue after this one (the commission's highest stored id: a restarted
        service never names a new incident as an old one); ids not of the form I-000123 are
        no number and change nothing."""
        number = incident_number(last_id)
        if number is not None:
            self._ledger.last_public = max(self._ledger.last_public, number)

    # -- routing and memory -------------------------------------------------------------------

    def _joined(self, incidents: list[Incident], now_us: int) -> list[Incident]:
        """A burst's shots into one incident, then one source's split fixes into one."""
        joined = self._duplicates.join(self._bursts.join(incidents, now_us), now_us)
        return self._merges.join(joined, now_us)

    def _forget_old(self, event_us: int) -> None:
        horizon = event_us - int((self.config.flight_max_s * 2 + self.config.max_baseline_m / 300.0) * 1e6) \
            - 2 * self.config.lateness_us
        for key in [k for k, seen in self._seen.items() if seen < horizon and k not in self._index.owner]:
            del self._seen[key]
        self._pairing.forget(horizon, self._ledger.forget(horizon))
        self._ctx.hearing.forget(horizon)
        self._fixes.air_memory.forget(event_us)
        self._index.forget_empty()
