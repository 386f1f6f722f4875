"""Node timing: how well each arrival is timed, and which nodes' clocks keep disagreeing.

An arrival's standard error (`arrival_sigma_s`) is what the commission knows of it: the clock
error its frame states (the board's figure, the firmware's drift allowance since the last sync
and the block-dating allowance), the detector's onset error (`timing_floor_us`, growing as the
SNR falls: a weak onset is picked late), and the node's surveyed position (`position_sd_m`: a
node 3 m from where it was surveyed is ~9 ms off along the ray, more than any GPS clock). What
grows with the path (turbulent travel-time scatter, `path_jitter_ms_per_sqrt_km`) is added by
the fit, which knows each node's range. A node with no time source times nothing
(`report.timed`).

`NodeTiming` learns from located sources heard by many nodes how far each node's arrivals lie
from where the fix predicts them. A node whose arrivals keep disagreeing, by more than its own
stated error and the model allow, is flagged with its estimated offset (the commission shows it
in the node's health) and its reports are down-weighted from then on: its stated clock error
grows by the offset and the spread, so it can no longer pull a fix or push a nearer node's good
arrival out as an outlier. Nothing is corrected: an offset learned from a few fixes is a
suspicion, not a calibration.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import replace

from .config import FusionConfig
from .report import Report

NOMINAL_C = 340.0                # m/s, for turning a position error into a time
KEEP = 16                        # latest fixes remembered per node
MIN_FIXES = 3                    # a node is judged from at least this many fixes
FLAG_SIGMAS = 3.0                # its median miss beyond this many of its own standard errors
FLAG_MIN_US = 10_000             # and beyond 10 ms
LEARN_MIN_NODES = 6              # a fix teaches only when this many nodes agree in it


def pick_sigma_us(report: Report, config: FusionConfig) -> float:
    """The detector's onset error: the floor at 20 dB SNR and above, x3 at 10 dB."""
    snr = min(max(float(report.snr_db), 10.0), 20.0)
    return config.timing_floor_us * 10.0 ** ((20.0 - snr) / 20.0)


def model_sigma_us(report: Report, config: FusionConfig) -> float:
    """Every error of an arrival but its clock's and the path's: onset and surveyed position."""
    position_us = config.position_sd_m / NOMINAL_C * 1e6
    return math.hypot(pick_sigma_us(report, config), position_us)


def arrival_sigma_s(report: Report, config: FusionConfig) -> float:
    """An arrival's standard error before the path's jitter (which the fit adds by range)."""
    return math.hypot(report.clock_error_us, model_sigma_us(report, config)) / 1e6


def jitter_s2_per_m(config: FusionConfig) -> float:
    """Travel-time variance per metre of path (turbulence: sigma grows with sqrt(range))."""
    per_sqrt_km = config.path_jitter_ms_per_sqrt_km / 1e3
    return per_sqrt_km * per_sqrt_km / 1000.0


class NodeTiming:
    """Per node, how far its arrivals fell from well-determined fixes (see the module)."""

    def __init__(self, config: FusionConfig) -> None:
        self.config = config
        self._misses: dict[int, OrderedDict] = {}     # node -> source number -> (miss us, sigma us)
        self._stated: dict[int, int] = {}              # node -> the clock error it last stated

    def learn(self, source: int, node: int, miss_us: float, sigma_us: float) -> None:
        """One arrival's miss (onset minus predicted) in the fix of source `source`, with the
        arrival's standard error but its clock's (onset, position, path); a refit of the same
        source replaces its earlier miss."""
        misses = self._misses.setdefault(node, OrderedDict())
        misses.pop(source, None)
        misses[source] = (float(miss_us), float(sigma_us))
        while len(misses) > KEEP:
            misses.popitem(last=False)

    def offset_us(self, node: int) -> tuple[float, float, int] | None:
        """(median miss, its spread (MAD x 1.48), fixes) for a node judged often enough."""
        misses = self._misses.get(node)
        if not misses or len(misses) < MIN_FIXES:
            return None
        values = sorted(m for m, _ in misses.values())
        median = _median(values)
        spread = 1.4826 * _median(sorted(abs(v - median) for v in values))
        return median, spread, len(values)

    def flagged(self, node: int) -> bool:
        judged = self.offset_us(node)
        if judged is None:
            return False
        median, _, _ = judged
        sigma = math.hypot(_median(sorted(s for _, s in self._misses[node].values())),
                           self._stated.get(node, 0))
        return abs(median) > max(FLAG_SIGMAS * sigma, FLAG_MIN_US)

    def weigh(self, report: Report) -> Report:
        """The report as fusion should weigh it: a flagged node's stated error grown by its
        estimated offset and spread (the onset itself is left as the node dated it)."""
        self._stated[report.node_id] = report.clock_error_us
        if not self._misses.get(report.node_id) or not self.flagged(report.node_id):
            return report
        median, spread, _ = self.offset_us(report.node_id)
        grown = math.hypot(report.clock_error_us, abs(median) + 3.0 * spread)
        return replace(report, clock_error_us=int(min(grown, self.config.max_clock_error_us)))

    def status(self) -> dict[int, dict]:
        """Nodes judged so far: {node: {offset_us, spread_us, fixes, flagged}}."""
        out = {}
        for node in self._misses:
            judged = self.offset_us(node)
            if judged is not None:
                median, spread, count = judged
                out[node] = {"offset_us": int(round(median)), "spread_us": int(round(spread)),
                             "fixes": count, "flagged": self.flagged(node)}
        return out


def _median(values: list[float]) -> float:
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])
