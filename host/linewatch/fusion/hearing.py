"""Who could have heard a candidate source, and who should have but did not.

Any three arrivals fit some source exactly, so arrivals of different sounds at nodes far apart
(a blast heard by its 4 nearest nodes, another one 3 s later, a lone report) combine into
phantom fixes kilometres away, tens of seconds before the onsets, that take the real arrivals.
Two tests refuse such a fix, from what the engine itself knows:
- reach: an impulsive sound is not heard farther than `impulse_hearing_range_m`, so a
  three-node fix (exact, untestable) that far from any of its nodes is refused; a fourth
  arrival confirming it (chi-square) lets it stand;
- silence: nodes that reported recently (so are alive; the engine knows a node's position only
  from its reports) and lie nearer the candidate source than its farthest used node, yet have
  no impulsive onset near their predicted arrival, count against it. A fix is refused when at
  least as many such silent nodes as used nodes (and at least `SILENT_MIN`) exist: a node may
  miss a sound now and then, a phantom is contradicted by whole rows of nodes.
"""
from __future__ import annotations

import bisect
import math

import numpy as np

from ..geo import EARTH_RADIUS_M, LocalFrame
from . import tdoa
from .config import FusionConfig
from .report import IMPULSIVE, Report, timed

SILENT_MIN = 2              # fewer silent nearer nodes than this never refuse a fix
# Unmodelled wind (a 6 m/s wind not configured) and air temperature shift arrivals by up to
# this share of the travel time: a node is silent only outside that too.
MODEL_SLACK = 0.03
ALIVE_US = 600_000_000      # a node that reported within this long counts as listening
ONSET_SPAN_S = 1e6          # spacing of listeners in Judge._onset_keys (far beyond any time span)


class Hearing:
    """Node positions and recent impulsive onsets, from the reports the engine was given."""

    def __init__(self, config: FusionConfig) -> None:
        self.config = config
        self._where: dict[int, tuple[float, float, int, int]] = {}   # node -> lat, lon, seen, clock error
        self._onsets: dict[int, list[int]] = {}                       # node -> sorted impulsive onsets

    def observe(self, report: Report, event_us: int) -> None:
        self._where[report.node_id] = (report.lat, report.lon, event_us, report.clock_error_us)
        if report.event_class in IMPULSIVE and timed(report, self.config.max_clock_error_us):
            bisect.insort(self._onsets.setdefault(report.node_id, []), report.onset_utc_us)

    def forget(self, horizon_us: int) -> None:
        for node, onsets in list(self._onsets.items()):
            del onsets[:bisect.bisect_left(onsets, horizon_us)]
            if not onsets:
                del self._onsets[node]
        for node in [n for n, w in self._where.items() if w[2] < horizon_us - ALIVE_US]:
            del self._where[node]

    def judge(self, frame: LocalFrame, t_ref_us: int, c: float, event_us: int) -> "Judge":
        return Judge(self, frame, t_ref_us, c, event_us)


class Judge:
    """The two tests for fixes made in one local frame (onsets in seconds from t_ref_us)."""

    def __init__(self, hearing: Hearing, frame: LocalFrame, t_ref_us: int, c: float, event_us: int) -> None:
        self.hearing, self.t_ref_us, self.c, self.event_us = hearing, t_ref_us, c, event_us
        self.frame = frame
        self.air = None             # tdoa.Air the fits of this frame start from (None: the config's)
        self._listening: tuple | None = None

    def _listeners(self) -> tuple:
        """Nodes alive at the event clock, their clock errors and positions in the frame: made
        once, on the first silence test (most judges see only a few candidate fixes)."""
        if self._listening is None:
            alive = [(n, w) for n, w in self.hearing._where.items() if w[2] >= self.event_us - ALIVE_US]
            lat = np.array([w[0] for _, w in alive], dtype=float)
            lon = np.array([w[1] for _, w in alive], dtype=float)
            frame = self.frame
            x = np.radians(lon - frame.lon0) * EARTH_RADIUS_M * math.cos(math.radians(frame.lat0))
            y = np.radians(lat - frame.lat0) * EARTH_RADIUS_M
            self._listening = ([n for n, _ in alive], np.array([w[3] for _, w in alive], dtype=float),
                               np.column_stack([x, y]).reshape(-1, 2))
        return self._listening

    def _onset_keys(self, listeners: np.ndarray) -> np.ndarray:
        """The impulsive onsets of these listeners (s from t_ref), as one sorted array of
        position in `listeners` x ONSET_SPAN_S + onset: one searchsorted answers for all."""
        nodes = self._listeners()[0]
        since = self.t_ref_us - int(self.hearing.config.max_baseline_m / self.c * 2e6)
        parts = []
        for j, k in enumerate(listeners):
            onsets = self.hearing._onsets.get(nodes[k], ())
            if onsets:
                recent = np.array(onsets[bisect.bisect_left(onsets, since):], dtype=float)
                parts.append(j * ONSET_SPAN_S + (recent - self.t_ref_us) / 1e6)
        return np.concatenate(parts) if parts else np.zeros(0)

    def silent_nearer(self, anchor_xy, centres: np.ndarray, emitted_s: np.ndarray, half_diagonal_m: float,
                      window_s: float) -> np.ndarray:
        """For each search cell (centre, and the emission time the new report implies there):
        how many listening nodes are nearer every point of the cell than the new report's node,
        should have heard a sound from there by now, and have no impulsive onset near that
        time. A source is heard first by the nodes nearest it, so such silence refutes a place
        before any fit is tried (cluster._anchored_seed); the test is the fix's silence test
        (refutes) with the cell's size added to every distance and time."""
        nodes, clock_us, xy = self._listeners()
        none = np.zeros(len(centres), dtype=int)
        if not len(nodes) or not len(centres):
            return none
        d_anchor = np.hypot(centres[:, 0] - anchor_xy[0], centres[:, 1] - anchor_xy[1])
        # Only nodes within twice the farthest cell's distance can be nearer a cell than the anchor.
        near = np.flatnonzero(np.hypot(xy[:, 0] - anchor_xy[0], xy[:, 1] - anchor_xy[1]) < 2.0 * d_anchor.max())
        if not len(near):
            return none
        d = np.hypot(centres[:, 0, None] - xy[None, near, 0], centres[:, 1, None] - xy[None, near, 1])
        predicted_s = emitted_s[:, None] + d / self.c
        due = (predicted_s + half_diagonal_m * 2.0 / self.c) * 1e6 + self.t_ref_us <= self.event_us
        cell, j = np.nonzero((d + 2.0 * half_diagonal_m < d_anchor[:, None]) & due)
        if not len(cell):
            return none
        config = self.hearing.config
        sigma_s = np.hypot(clock_us[near[j]], config.timing_floor_us) / 1e6
        gate = window_s + config.gate_sigmas * sigma_s + MODEL_SLACK * d[cell, j] / self.c
        keys = self._onset_keys(near)
        t = j * ONSET_SPAN_S + predicted_s[cell, j]
        silent = np.searchsorted(keys, t + gate, side="right") == np.searchsorted(keys, t - gate)
        return np.bincount(cell[silent], minlength=len(centres))

    def refutes(self, fix: tdoa.TdoaFix, used) -> bool:
        """True when the fix of these used arrivals cannot be one real source (see module)."""
        config = self.hearing.config
        reach = np.array([math.hypot(a.x - fix.x, a.y - fix.y) for a in used])
        if fix.dof == 0 and reach.max() > config.impulse_hearing_range_m:
            return True         # three arrivals fit anything exactly: a 4th must confirm a far source
        nodes, clock_us, xy = self._listeners()
        if not len(nodes):
            return False
        distance = np.hypot(xy[:, 0] - fix.x, xy[:, 1] - fix.y)
        used_nodes = {a.report.node_id for a in used}
        spread_m = math.sqrt(max(0.0, fix.cov_xy[0][0] + fix.cov_xy[1][1]))
        needed = max(SILENT_MIN, len(used_nodes))
        silent = 0
        for k in np.flatnonzero(distance < reach.max()):
            node = nodes[k]
            if node in used_nodes:
                continue
            predicted_us = self.t_ref_us + float(tdoa.predicted_arrival_s(fix, xy[k, 0], xy[k, 1], self.c)) * 1e6
            if predicted_us > self.event_us:
                continue            # not heard there yet, as far as the engine's clock goes
            sigma_us = math.hypot(clock_us[k], config.timing_floor_us)
            gate_us = config.gate_sigmas * sigma_us + spread_m / self.c * 1e6 + config.window_margin_us \
                + MODEL_SLACK * (predicted_us - self.t_ref_us - fix.t0_s * 1e6)
            onsets = self.hearing._onsets.get(node, ())
            i = bisect.bisect_left(onsets, predicted_us - gate_us)
            if i < len(onsets) and onsets[i] <= predicted_us + gate_us:
                continue
            silent += 1
            if silent >= needed:
                return True
        return False
