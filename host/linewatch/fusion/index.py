"""The spatial index of open impulsive reports: which incident holds each, and which open
reports could share a source with a new one (nearby cells, then the pairwise timing test)."""
from __future__ import annotations

import math

import numpy as np

from ..geo import EARTH_RADIUS_M, haversine_m
from . import cluster
from .config import FusionConfig
from .report import Report, compatible, family

_DEG_M = 111_195.0      # metres per degree of latitude


class ReportIndex:
    """Open reports in cells of `max_baseline_m` per class family, and their owner incidents."""

    def __init__(self, config: FusionConfig, max_abs_lat: float) -> None:
        self.config = config
        self.owner: dict[tuple, int] = {}                  # open report key -> incident number
        self._cells: dict[tuple, dict[tuple, Report]] = {}  # (family, cell) -> open impulsive reports
        self._cell_lat = config.max_baseline_m / _DEG_M
        self._cell_lon = self._cell_lat / max(math.cos(math.radians(min(max_abs_lat + 1.0, 89.0))), 1e-3)

    def cell(self, report: Report) -> tuple:
        return (family(report.event_class), math.floor(report.lat / self._cell_lat),
                math.floor(report.lon / self._cell_lon))

    def add(self, report: Report, number: int) -> None:
        self.owner[report.key] = number
        self._cells.setdefault(self.cell(report), {})[report.key] = report

    def release(self, report: Report, number: int) -> None:
        """The report leaves the index when the given incident (closing) still owns it."""
        if self.owner.get(report.key) == number:
            del self.owner[report.key]
            self._cells.get(self.cell(report), {}).pop(report.key, None)

    def forget_empty(self) -> None:
        for cell in [k for k, v in self._cells.items() if not v]:
            del self._cells[cell]

    def nearby(self, report: Report, families=None):
        """Open reports in the nine cells around the report's (of its own family, or of each
        of the given families in turn)."""
        fam, i, j = self.cell(report)
        for f in (fam,) if families is None else families:
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    yield from self._cells.get((f, i + di, j + dj), {}).values()

    def neighbours(self, report: Report, c: float) -> list[Report]:
        """The open reports that could share a source with this one (consistent(), classes
        that can name one sound included: report.compatible), in the index's order; one numpy
        pass over the nine cells (hundreds of reports in crowded traffic, which one call each
        made a tenth of the service's CPU)."""
        near = list(self.nearby(report))
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
        slack_us = distance / c * 1e6 + 3.0 * sigma_us + self.config.window_margin_us
        named = np.fromiter((compatible(m, report) for m in near), bool, n)
        ok = (node != report.node_id) & (distance <= self.config.max_baseline_m) & \
            (np.abs(onset - report.onset_utc_us) <= slack_us) & named
        return [near[k] for k in np.flatnonzero(ok)]


def consistent(a: Report, b: Report, c: float, config: FusionConfig) -> bool:
    """Two onsets can share a source: classes that can name one sound (report.compatible),
    within the travel time between their nodes plus 3 sigma
    of both clocks plus the margin."""
    if a.node_id == b.node_id or not compatible(a, b):
        return False
    distance = haversine_m(a.lat, a.lon, b.lat, b.lon)
    if distance > config.max_baseline_m:
        return False
    sigma = cluster.timing_sigma_s(a, config) + cluster.timing_sigma_s(b, config)
    slack_us = (distance / c + 3.0 * sigma) * 1e6 + config.window_margin_us
    return abs(a.onset_utc_us - b.onset_utc_us) <= slack_us
