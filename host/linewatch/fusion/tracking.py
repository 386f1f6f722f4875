"""Continuous sounds (drones, vehicles) as incidents: each track (tracks.Tracker) is one
incident, republished with every report, and each line crossing is an incident of its own."""
from __future__ import annotations

from ..geo import LocalFrame
from . import side as side_of_line, tracks
from .incident import Incident
from .lifecycle import Context, IncidentState, Ledger
from .report import Report


class TrackIncidents:
    def __init__(self, ctx: Context, ledger: Ledger) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.tracker = tracks.Tracker(ctx.line, ctx.config)
        self._owner: dict[int, int] = {}                # id(track) -> incident number

    def add(self, report: Report, now_us: int) -> list[Incident]:
        track, crossing = self.tracker.add(report, self.ctx.event_now(now_us))
        number = self._owner.get(id(track))
        state = self.ledger.open.get(number) if number is not None else None
        if state is None:
            state = self.ledger.new_state(report.event_class, now_us)
            state.track = track
            self._owner[id(track)] = state.number
        state.reports = list(track.reports)
        self._snapshot_track(state, now_us)
        out = [state.snapshot]
        if crossing is not None:
            out.append(self._crossing_incident(track, crossing, now_us).snapshot)
        return out

    def expire(self, event_us: int) -> list[IncidentState]:
        """The open incidents of tracks that went silent (to be closed)."""
        out = []
        for track in self.tracker.expire(event_us):
            number = self._owner.pop(id(track), None)
            if number is not None and number in self.ledger.open:
                out.append(self.ledger.open[number])
        return out

    def _snapshot_track(self, state: IncidentState, now_us: int) -> None:
        track = state.track
        t_last, lat, lon = track.path[-1]
        frame = LocalFrame(lat, lon)
        distance = side_of_line.nearest(self.ctx.line, frame, 0.0, 0.0).distance_m
        self.ledger.snapshot(state, now_us, fix="detection", time_utc_us=track.path[0][0], lat=lat, lon=lon,
                             ellipse_95=None, side=track.side, side_probability=None,
                             distance_from_line_m=distance, track=tuple(track.path),
                             heading_deg=tracks.heading_deg(track.path, 3 * self.ctx.config.track_smoothing_s))

    def _crossing_incident(self, track: tracks.Track, crossing: tracks.Crossing, now_us: int) -> IncidentState:
        state = self.ledger.new_state(track.event_class, now_us)
        state.reports = list(crossing.reports)
        state.close_at_us = self.ctx.event_now(now_us) + self.ctx.config.lateness_us
        path = tuple(p for p in track.path if p[0] <= crossing.reports[-1].onset_utc_us)
        self.ledger.snapshot(state, now_us, fix="detection", time_utc_us=crossing.time_utc_us,
                             lat=crossing.lat, lon=crossing.lon, ellipse_95=None, side=crossing.to_side,
                             side_probability=None, distance_from_line_m=0.0, track=path,
                             heading_deg=tracks.heading_deg(list(path), 3 * self.ctx.config.track_smoothing_s))
        return state
