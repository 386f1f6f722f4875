"""Tracks of continuous sounds (drones, vehicles): successive detections joined into a path.

A rotor or engine has no sharp onset, so its position is taken from who hears it: the
signal-to-noise weighted centroid of the nodes that heard it within a short smoothing window.
A detection joins the track of the same class with a similar tone whose last position it can
have reached (hearing range plus the fastest plausible speed times the gap since the track
was last heard: a detection covers its onset to onset + duration). Vehicles get their own gap
and speed (config: a node reports a vehicle once it has gone, so reports come further apart). The track's
side of the line is followed with hysteresis; each change of side is a crossing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..geo import ContactLine, LocalFrame
from .config import FusionConfig
from .report import Report
from . import side as side_of_line


@dataclass(frozen=True)
class Crossing:
    time_utc_us: int
    lat: float
    lon: float
    from_side: str
    to_side: str
    reports: tuple[Report, ...]      # the detections either side of the crossing


@dataclass
class Track:
    event_class: str
    frequency_hz: float
    reports: list[Report] = field(default_factory=list)
    path: list[tuple[int, float, float]] = field(default_factory=list)   # smoothed (t, lat, lon)
    side: str | None = None
    side_since: int = 0               # index in reports of the first detection on `side`
    last_received_us: int = 0        # the engine's event clock when last heard (not wall time)

    @property
    def last_heard_us(self) -> int:
        """The end of the latest heard stretch (onset + duration) of the track's reports."""
        return max(r.onset_utc_us + r.duration_ms * 1000 for r in self.reports)


class Tracker:
    def __init__(self, line: ContactLine, config: FusionConfig):
        self.line = line
        self.config = config
        self.tracks: list[Track] = []

    def add(self, report: Report, now_us: int) -> tuple[Track, Crossing | None]:
        track = self._track_for(report)
        track.reports.append(report)
        track.reports.sort(key=lambda r: r.onset_utc_us)
        track.last_received_us = now_us
        weight = len(track.reports)
        track.frequency_hz += (report.frequency_hz - track.frequency_hz) / weight
        track.path = self._smoothed_path(track.reports)
        return track, self._crossing(track)

    def expire(self, now_us: int) -> list[Track]:
        """Tracks silent for longer than the gap: they are closed and forgotten."""
        done = [t for t in self.tracks if now_us - t.last_received_us > self._gap_s(t.event_class) * 1e6]
        self.tracks = [t for t in self.tracks if t not in done]
        return done

    def _gap_s(self, event_class: str) -> float:
        c = self.config
        return c.vehicle_track_gap_s if event_class == "vehicle" else c.track_gap_s

    def _speed_max_mps(self, event_class: str) -> float:
        c = self.config
        return c.vehicle_speed_max_mps if event_class == "vehicle" else c.track_speed_max_mps

    def _track_for(self, report: Report) -> Track:
        best = None
        for track in self.tracks:
            if track.event_class != report.event_class:
                continue
            # time between what the report heard and what the track has (either side of it)
            gap_s = max(0.0, report.onset_utc_us - track.last_heard_us,
                        track.reports[0].onset_utc_us - report.onset_utc_us - report.duration_ms * 1000) / 1e6
            if gap_s > self._gap_s(report.event_class):
                continue
            if track.frequency_hz > 0 and report.frequency_hz > 0 and \
                    abs(report.frequency_hz - track.frequency_hz) > self.config.track_frequency_tolerance * track.frequency_hz:
                continue
            _, lat, lon = track.path[-1]
            frame = LocalFrame(lat, lon)
            distance = math.hypot(*frame.to_xy(report.lat, report.lon))
            reach = 2 * self.config.hearing_range_m + self._speed_max_mps(report.event_class) * gap_s
            if distance <= reach and (best is None or distance < best[0]):
                best = (distance, track)
        if best is not None:
            return best[1]
        track = Track(report.event_class, float(report.frequency_hz))
        self.tracks.append(track)
        return track

    def _smoothed_path(self, reports: list[Report]) -> list[tuple[int, float, float]]:
        window_us = self.config.track_smoothing_s * 1e6
        path = []
        for i, report in enumerate(reports):
            near = [r for r in reports[: i + 1] if report.onset_utc_us - r.onset_utc_us <= window_us]
            weights = [max(r.snr_db, 0.0) + 1.0 for r in near]
            total = sum(weights)
            lat = sum(r.lat * w for r, w in zip(near, weights)) / total
            lon = sum(r.lon * w for r, w in zip(near, weights)) / total
            path.append((report.onset_utc_us, lat, lon))
        return path

    def _crossing(self, track: Track) -> Crossing | None:
        t_us, lat, lon = track.path[-1]
        frame = LocalFrame(lat, lon)
        signed = side_of_line.nearest(self.line, frame, 0.0, 0.0).signed_m
        if abs(signed) <= self.config.crossing_hysteresis_m:
            return None
        now_side = "L" if signed > 0 else "R"
        previous, last = track.side, len(track.reports) - 1
        if previous == now_side:
            return None
        track.side, track.side_since = now_side, last
        if previous is None:
            return None
        # Where the smoothed path went over: interpolate between its last point on the old side
        # and this one by their signed distances.
        t_a, lat_a, lon_a = track.path[last - 1]
        signed_a = side_of_line.nearest(self.line, frame, *frame.to_xy(lat_a, lon_a)).signed_m
        share = signed_a / (signed_a - signed) if signed_a != signed else 0.5
        share = max(0.0, min(1.0, share))
        return Crossing(int(t_a + (t_us - t_a) * share), lat_a + (lat - lat_a) * share,
                        lon_a + (lon - lon_a) * share, previous, now_side,
                        tuple(track.reports[max(0, last - 1): last + 1]))


def standing(track: Track, moving_db: float, moving_hz: float) -> bool:
    """Whether the track is what a source standing by one node gives: every report from that
    node, their peak levels within `moving_db` of each other and their tones within
    `moving_hz` (a generator or a pump runs at one level and one speed; a drone flying past
    a node nears and leaves it, and its blade-pass tone falls as it goes by). One report
    tells nothing of either (config.track_confirm_reports holds it); 0 dB: never."""
    reports = track.reports
    if moving_db <= 0 or len(reports) < 2 or len({r.node_id for r in reports}) > 1:
        return False
    levels = [r.peak_db for r in reports]
    tones = [r.frequency_hz for r in reports]
    return max(levels) - min(levels) < moving_db and max(tones) - min(tones) <= moving_hz


def heading_deg(path: list[tuple[int, float, float]], span_s: float) -> float | None:
    """Compass heading (degrees clockwise from north) of the path's last `span_s` seconds."""
    if len(path) < 2:
        return None
    end = path[-1][0]
    recent = [p for p in path if end - p[0] <= span_s * 1e6] or path[-2:]
    if len(recent) < 2:
        recent = path[-2:]
    frame = LocalFrame(recent[-1][1], recent[-1][2])
    ts = [(p[0] - end) / 1e6 for p in recent]
    xy = [frame.to_xy(p[1], p[2]) for p in recent]
    mean_t = sum(ts) / len(ts)
    var_t = sum((t - mean_t) ** 2 for t in ts)
    if var_t == 0.0:
        return None
    vx = sum((t - mean_t) * x for t, (x, _) in zip(ts, xy)) / var_t
    vy = sum((t - mean_t) * y for t, (_, y) in zip(ts, xy)) / var_t
    if math.hypot(vx, vy) < 0.1:
        return None
    return math.degrees(math.atan2(vx, vy)) % 360.0
