"""The air carried across fixes: what the segment's recent over-determined fixes learnt of the
effective speed of sound and the wind, as the prior of the next fixes nearby.

A fix that estimates the air (tdoa.py: 6 or more arrivals the told air does not fit) ends with
a posterior of (c, wind east, wind north) from its prior and its arrivals. What its arrivals
alone said is the posterior's information minus the prior's (per component, information form
of a Kalman update), kept as a *lesson* at the fix's place and event time, one per incident (a
refit replaces its incident's lesson, so no arrival counts twice). The prior of a later fit at
(lat, lon, t) is the told air (config, met station, thermometers) plus every lesson's
information weighed by how long ago (e-folding `FORGET_S`) and how far away (Gaussian,
`REACH_M`) it was learnt: a random-walk air forgotten with time and distance. It is never
surer than `FLOOR_SD` (gusts of 20 s and the air between places stay unknown), and what stays
unknown goes into every fit's covariance and gates as before (tdoa.Air).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import replace

import numpy as np

from ..geo import EARTH_RADIUS_M
from .tdoa import Air, TdoaFix

FORGET_S = 1800.0            # a lesson's information falls by e in half an hour of event time
REACH_M = 10_000.0           # ... and to e^-1/2 at 10 km (the wind 20 km away is another wind)
FLOOR_SD = (0.7, 1.0)        # m/s, (speed of sound, wind per component): ~1 degC between places,
                             # gusts of a quarter of a few m/s
MAX_LESSONS = 2_000          # newest kept
MIN_USED = 6                 # a fix teaches from this many used arrivals (tdoa.AIR_MIN_ARRIVALS)
MAX_SHIFT_MPS = 30.0         # a lesson's own estimate beyond this from the told air is not air


class AirMemory:
    def __init__(self) -> None:
        # incident id -> (lat, lon, event_us, information (3,), mean (3,)): absolute c, wind e, n
        self._lessons: OrderedDict[str, tuple] = OrderedDict()
        self._arrays: tuple | None = None

    def __len__(self) -> int:
        return len(self._lessons)

    def prior(self, told: Air, c_told: float, lat: float, lon: float, event_us: int,
              exclude: set | frozenset = frozenset()) -> Air:
        """The air a fit at (lat, lon) at event time event_us starts from: `told` (centred on
        c_told + its offset) with the nearby recent lessons' information added. Lessons of the
        incidents in `exclude` (the fit's own earlier versions) are left out."""
        if not told.estimated or not self._lessons:
            return told
        keys, where, info, mean = self._stacked()
        dy = np.radians(where[:, 0] - lat) * EARTH_RADIUS_M
        dx = np.radians(where[:, 1] - lon) * EARTH_RADIUS_M * math.cos(math.radians(lat))
        age_s = np.abs(event_us - where[:, 2]) / 1e6
        weight = np.exp(-age_s / FORGET_S - 0.5 * (dx * dx + dy * dy) / (REACH_M * REACH_M))
        if exclude:
            weight = weight * np.array([k not in exclude for k in keys], dtype=float)
        if float(weight.max()) < 1e-3:
            return told
        told_sd = np.array([told.c_sd_mps, told.wind_sd_mps, told.wind_sd_mps])
        told_mean = np.array([c_told + told.c_offset_mps, told.wind[0], told.wind[1]])
        told_info = np.where(told_sd > 0.0, 1.0 / np.maximum(told_sd, 1e-9) ** 2, 0.0)
        total = told_info + weight @ info
        centre = np.where(total > 0.0, (told_info * told_mean + weight @ (info * mean)) / np.maximum(total, 1e-12),
                          told_mean)
        sd = np.where(told_sd > 0.0, np.maximum(1.0 / np.sqrt(np.maximum(total, 1e-12)),
                                                 [FLOOR_SD[0], FLOOR_SD[1], FLOOR_SD[1]]), 0.0)
        sd = np.minimum(sd, told_sd)
        return replace(told, c_offset_mps=float(centre[0] - c_told), wind=(float(centre[1]), float(centre[2])),
                       c_sd_mps=float(sd[0]), wind_sd_mps=float(max(sd[1], sd[2])))

    def learn(self, incident_id: str, lat: float, lon: float, event_us: int, fix: TdoaFix,
              c_told: float) -> None:
        """Keep what the fix's arrivals said of the air (its posterior less its prior), or
        forget the incident's lesson when the fix did not estimate the air."""
        lesson = _lesson(fix, c_told)
        self._lessons.pop(incident_id, None)
        self._arrays = None
        if lesson is None:
            return
        self._lessons[incident_id] = (lat, lon, event_us, *lesson)
        while len(self._lessons) > MAX_LESSONS:
            self._lessons.popitem(last=False)

    def drop(self, incident_id: str) -> None:
        """The incident is no longer a fix (its arrivals went elsewhere)."""
        if self._lessons.pop(incident_id, None) is not None:
            self._arrays = None

    def forget(self, horizon_us: int) -> None:
        old = [k for k, v in self._lessons.items() if v[2] < horizon_us - 4 * FORGET_S * 1e6]
        for k in old:
            del self._lessons[k]
        if old:
            self._arrays = None

    def _stacked(self) -> tuple:
        if self._arrays is None:
            values = list(self._lessons.values())
            self._arrays = (list(self._lessons.keys()),
                            np.array([v[:3] for v in values], dtype=float),
                            np.array([v[3] for v in values], dtype=float),
                            np.array([v[4] for v in values], dtype=float))
        return self._arrays


def _lesson(fix: TdoaFix, c_told: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(information, mean) per component of what the fix's arrivals alone said of the air."""
    prior = fix.prior
    if prior is None or not fix.c_mps or not any(fix.air_sd) or len(fix.used) < MIN_USED:
        return None
    post_sd = np.array(fix.air_sd, dtype=float)
    post = np.array([fix.c_mps, fix.wind[0], fix.wind[1]], dtype=float)
    prior_sd = np.array([prior.c_sd_mps, prior.wind_sd_mps, prior.wind_sd_mps], dtype=float)
    prior_mean = np.array([c_told + prior.c_offset_mps, prior.wind[0], prior.wind[1]], dtype=float)
    info = np.zeros(3)
    mean = prior_mean.copy()
    for k in range(3):
        if post_sd[k] <= 0.0 or prior_sd[k] <= 0.0:
            continue
        gain = 1.0 / post_sd[k] ** 2 - 1.0 / prior_sd[k] ** 2
        if gain <= 1e-9:
            continue
        info[k] = gain
        mean[k] = (post[k] / post_sd[k] ** 2 - prior_mean[k] / prior_sd[k] ** 2) / gain
    told = np.array([c_told, 0.0, 0.0])
    if not info.any() or not np.isfinite(mean).all() or (np.abs(mean - told) > MAX_SHIFT_MPS).any():
        return None
    return info, mean
