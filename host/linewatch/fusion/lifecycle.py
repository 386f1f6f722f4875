"""Incident lifecycle: ids, working state, versioned snapshots, withdrawal and finality.

Also the engine's event clock and the context every job of the engine shares (configuration,
speed of sound, who hears what), so the jobs read one current value of each.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ..geo import ContactLine
from . import hearing, tracks
from .config import FusionConfig
from .incident import Incident, incident_id
from .report import IMPULSIVE, Report, named_class, timed
from .sound import speed_of_sound


@dataclass
class IncidentState:
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
    published: bool = False           # some version of it went out (Ledger.visible)

    @property
    def id(self) -> str:
        return incident_id(self.number)


class EventClock:
    """The engine's clock in event time: the latest onset seen from a timed node, advanced
    between reports by the caller's clock (`max(latest onset, now_us - lag)`, lag = now_us -
    onset when that onset was seen)."""

    def __init__(self) -> None:
        self._latest_onset_us: int | None = None
        self._lag_us = 0

    def now(self, now_us: int) -> int:
        """The caller's clock until a timed report arrives."""
        if self._latest_onset_us is None:
            return now_us
        return max(self._latest_onset_us, now_us - self._lag_us)

    def observe(self, report: Report, now_us: int, max_clock_error_us: int) -> None:
        """Only a newer onset moves the clock: a late-delivered old report does not take it
        back, and an untimed node's clock does not count."""
        if not timed(report, max_clock_error_us):
            return
        if self._latest_onset_us is None or report.onset_utc_us > self._latest_onset_us:
            self._latest_onset_us = report.onset_utc_us
            self._lag_us = now_us - report.onset_utc_us


class Context:
    """What every job of the engine reads: the line, the configuration, the speed of sound in
    use, the event clock and who hears what (hearing.Hearing)."""

    def __init__(self, line: ContactLine, config: FusionConfig) -> None:
        self.line = line
        self.config = config
        self.speed_of_sound = speed_of_sound(config.temperature_c)
        self.clock = EventClock()
        self.hearing = hearing.Hearing(config)

    def event_now(self, now_us: int) -> int:
        return self.clock.now(now_us)

    def set_wind(self, speed_mps: float, from_deg: float) -> None:
        self.config = replace(self.config, wind_speed_mps=float(speed_mps), wind_from_deg=float(from_deg))
        self.hearing.config = self.config


class Ledger:
    """The open incidents and the ones recently closed: numbering, snapshots (each change is a
    new version), withdrawal of an incident whose reports all went to others, and closing.

    Two numberings: each working incident has its own number (internal: held detections and
    candidates that never go out take one too), and what goes out is named by the public
    numbering, given when an incident is first published (publish()): I-000001, I-000002, ...
    with no gap, continuing after `last_public` (the commission's highest stored id, so a
    restarted service never reuses one)."""

    def __init__(self, ctx: Context, index, on_gone) -> None:
        self.ctx = ctx
        self.index = index              # index.ReportIndex: a closed incident's reports leave it
        self.on_gone = on_gone          # called with an incident id that is withdrawn or dropped
        self.next = 1
        self.open: dict[int, IncidentState] = {}
        self.by_id: dict[str, IncidentState] = {}
        self.last_public = 0
        self.public: dict[str, str] = {}                # internal id -> public id
        self.by_public: dict[str, str] = {}             # public id -> internal id
        self.fresh: set[int] = set()    # incidents formed by the current add()
        # first shot's key -> the later shots of its train at that node (bursts.Bursts.follows):
        # evidence and shots of whichever incident holds the first shot
        self.followers: dict[tuple, list[Report]] = {}

    def new_state(self, event_class: str, now_us: int) -> IncidentState:
        state = IncidentState(self.next, event_class, now_us)
        self.fresh.add(state.number)
        state.formed_event_us = state.touched_event_us = self.ctx.event_now(now_us)
        self.next += 1
        self.open[state.number] = state
        self.by_id[state.id] = state
        return state

    def new_detection(self, report: Report, now_us: int) -> IncidentState:
        state = self.new_state(report.event_class, now_us)
        state.reports = [report]
        state.used = frozenset([report.key])
        state.close_at_us = max(report.onset_utc_us, self.ctx.event_now(now_us)) + self.ctx.config.lateness_us
        self.snapshot(state, now_us, fix="detection", time_utc_us=report.onset_utc_us, lat=report.lat,
                      lon=report.lon, ellipse_95=None, side=None, side_probability=None,
                      distance_from_line_m=None)
        return state

    def snapshot(self, state: IncidentState, now_us: int, **fields) -> None:
        state.touched_event_us = self.ctx.event_now(now_us)
        if "fix" in fields:
            fields.setdefault("mirror", None)      # a mirror image belongs to its "mirror" fix only
        used_nodes = tuple(r.node_id for r in state.reports if r.key in state.used) \
            if state.used else tuple(dict.fromkeys(r.node_id for r in state.reports))
        rejected_nodes = tuple(r.node_id for r in state.reports if r.key in state.rejected)
        if state.event_class in IMPULSIVE and state.reports:
            # One sound named differently by different nodes: the incident takes the named
            # class most of its (not rejected) reports give (report.named_class).
            kept = [r.event_class for r in state.reports if r.key not in state.rejected]
            state.event_class = named_class(kept or [r.event_class for r in state.reports])
        held = [x for r in state.reports for x in [r] + self.followers.get(r.key, [])]
        common = dict(event_class=state.event_class, nodes=used_nodes, rejected_nodes=rejected_nodes,
                      shots=shot_count(state, self.followers),
                      reports=tuple(r.evidence_id for r in held if r.evidence_id is not None),
                      updated_at_us=now_us, provisional=not state.final)
        if state.snapshot is None:
            state.snapshot = Incident(
                id=state.id, status="new", formed_at_us=now_us, version=1,
                **{"fix": "detection", "time_utc_us": 0, "lat": None, "lon": None, "ellipse_95": None,
                   "side": None, "side_probability": None, "distance_from_line_m": None,
                   **common, **fields})
        else:
            state.snapshot = replace(state.snapshot, version=state.snapshot.version + 1, **common, **fields)

    def withdraw(self, state: IncidentState, now_us: int) -> IncidentState:
        """An incident whose every report now belongs to others: published once more, empty."""
        state.reports, state.used, state.rejected, state.shots = [], frozenset(), frozenset(), frozenset()
        state.final = True
        self.snapshot(state, now_us, fix="detection", lat=None, lon=None, ellipse_95=None, side=None,
                      side_probability=None, distance_from_line_m=None, launch_id=None, impact_id=None)
        self.open.pop(state.number, None)
        self.on_gone(state.id)
        return state

    def drop(self, state: IncidentState) -> None:
        """An incident formed by this very report and merged into another at once: never published."""
        self.open.pop(state.number, None)
        self.by_id.pop(state.id, None)
        self.on_gone(state.id)

    def retire(self, state: IncidentState, out: dict, now_us: int) -> None:
        """The other side of a merge: dropped when this add() formed it, else withdrawn."""
        if state.number in self.fresh:
            self.drop(state)
            out.pop(state.id, None)
        else:
            out[state.id] = self.withdraw(state, now_us)

    def close(self, state: IncidentState, now_us: int) -> Incident:
        state.final = True
        self.snapshot(state, now_us)
        self.open.pop(state.number, None)
        for r in state.reports:
            if self.index.owner.get(r.key) == state.number:
                self.followers.pop(r.key, None)
            self.index.release(r, state.number)
        return state.snapshot

    def visible(self, incidents: list[Incident]) -> list[Incident]:
        """What goes out of the engine. A lone impulsive report (a detection at one node) is
        no incident: one node alone cannot tell a blast from a door, a passing truck or its
        own fault, and it cannot be placed. It is held (and is evidence all the same) until a
        second node's report makes it a hyperbola or a fix; from then on every version of the
        incident goes out, its withdrawal and closing too. An incident never published is
        never withdrawn or closed in public. A published incident left with one node's
        reports is no incident any more either: it is withdrawn, and a new detection that is
        not published holds its reports (hold())."""
        out = []
        for incident in incidents:
            state = self.by_id.get(incident.id)
            lone = incident.event_class in IMPULSIVE and (incident.fix == "detection" or not incident.nodes)
            if state is not None and not state.published:
                if lone or self._held_pair(state, incident) or self._held_track(state):
                    continue
                state.published = True
            elif state is not None and lone and state.reports and state.number in self.open \
                    and state.snapshot is incident:
                incident = self.hold(state, incident.updated_at_us).snapshot
            out.append(incident)
        return out

    def publish(self, incidents: list[Incident]) -> list[Incident]:
        """What goes out, under public ids: an incident first seen here takes the next public
        number; its links to a launch or impact name the partner's public id, or none while
        the partner has not gone out."""
        for incident in incidents:
            if incident.id not in self.public:
                self.last_public += 1
                self.public[incident.id] = pid = incident_id(self.last_public)
                self.by_public[pid] = incident.id
        return [self._public(i) for i in incidents]

    def _public(self, incident: Incident) -> Incident:
        return replace(incident, id=self.public[incident.id], launch_id=self.public.get(incident.launch_id or ""),
                       impact_id=self.public.get(incident.impact_id or ""))

    def public_view(self, public_id: str) -> Incident | None:
        """The latest version of a published incident, by its public id."""
        state = self.by_id.get(self.by_public.get(public_id, ""))
        return self._public(state.snapshot) if state is not None and state.snapshot else None

    def _held_track(self, state: IncidentState) -> bool:
        """A drone or vehicle track with fewer reports than config.track_confirm_reports is not
        yet an incident: one node heard a tone or a rumble once (a cow, a generator, a car
        on a farm track give that too). It is published, with every report, once another
        report joins it. A drone track that one node hears at one level and one tone is a
        machine standing there (tracks.standing): held until its level or tone changes or
        another node hears it."""
        track = state.track
        if track is None:
            return False
        config = self.ctx.config
        return len(track.reports) < config.track_confirm_reports or (
            track.event_class == "drone" and tracks.standing(track, config.track_moving_db, config.track_moving_hz))

    def _held_pair(self, state: IncidentState, incident: Incident) -> bool:
        """A two-node pair is not yet an incident (config.publish_pairs): it is held until a
        third arrival makes it a fix. With pairs published, still a pair whose nodes named
        their sounds differently (one "unknown") is held: the classes fuse as one family
        (report.family), so lone false alarms at neighbouring nodes pair across classes too."""
        if incident.fix != "hyperbola":
            return False
        return not self.ctx.config.publish_pairs or len({r.event_class for r in state.reports}) > 1

    def hold(self, state: IncidentState, now_us: int) -> IncidentState:
        """A published incident whose reports all came from one node (the others went to a
        better source): withdrawn; its reports stay evidence in a new detection, held."""
        held = self.new_state(state.event_class, now_us)
        for name in ("reports", "used", "rejected", "shots", "burst_end_us", "close_at_us", "misfit"):
            setattr(held, name, getattr(state, name))
        snap = state.snapshot
        held.formed_event_us = state.formed_event_us
        self.snapshot(held, now_us, fix="detection", time_utc_us=snap.time_utc_us, lat=snap.lat, lon=snap.lon,
                      ellipse_95=None, side=None, side_probability=None, distance_from_line_m=None)
        for r in held.reports:
            if self.index.owner.get(r.key) == state.number:
                self.index.owner[r.key] = held.number
        self.fresh.discard(held.number)
        return self.withdraw(state, now_us)

    def forget(self, horizon_us: int) -> list[str]:
        """Final incidents untouched since the horizon: the ids forgotten."""
        gone = [s for s, st in self.by_id.items() if st.final and st.touched_event_us < horizon_us]
        for sid in gone:
            del self.by_id[sid]
            self.by_public.pop(self.public.pop(sid, ""), None)
        return gone


def shot_count(state: IncidentState, followers: dict | None = None) -> int:
    """Shots heard: the most reports any one node gave the incident, later shots of a train
    included (echoes not counted). 0 for what is not a shot or blast (tracks, tamper) and
    for a withdrawn incident."""
    if state.event_class not in IMPULSIVE:
        return 0
    per_node: dict[int, int] = {}
    for r in state.reports:
        if r.key not in state.rejected:
            per_node[r.node_id] = per_node.get(r.node_id, 0) + 1 + len((followers or {}).get(r.key, ()))
    return max(per_node.values(), default=0)


def unique(states: list[IncidentState]) -> list[Incident]:
    seen: dict[str, Incident] = {}
    for state in states:
        seen[state.id] = state.snapshot
    return sorted(seen.values(), key=lambda i: i.id)


def unique_incidents(incidents: list[Incident]) -> list[Incident]:
    latest: dict[str, Incident] = {}
    for incident in incidents:
        latest[incident.id] = incident
    return sorted(latest.values(), key=lambda i: i.id)


def by_time(reports) -> list[Report]:
    return sorted(reports, key=lambda r: (r.onset_utc_us, r.node_id))
