"""Speed of sound in air, and the wind that carries it: the physics fusion depends on."""
from __future__ import annotations

import math

import numpy as np

CALM = (0.0, 0.0)


def speed_of_sound(temperature_c: float) -> float:
    """Metres per second in dry air at the given temperature (c = 331.3 sqrt(1 + T/273.15))."""
    if not math.isfinite(temperature_c) or temperature_c <= -273.15:
        raise ValueError("air temperature %r C is not physical" % (temperature_c,))
    return 331.3 * math.sqrt(1.0 + temperature_c / 273.15)


def wind_vector(speed_mps: float, from_deg: float) -> tuple[float, float]:
    """(east, north) velocity of the air for a wind blowing *from* a compass bearing (METAR)."""
    if not (math.isfinite(speed_mps) and math.isfinite(from_deg)) or not 0.0 <= speed_mps <= 60.0:
        raise ValueError("wind speed %r m/s from %r deg is not plausible" % (speed_mps, from_deg))
    if speed_mps == 0.0:
        return CALM
    towards = math.radians(from_deg) + math.pi
    return (speed_mps * math.sin(towards), speed_mps * math.cos(towards))


def travel_time_s(dx, dy, c: float, wind=CALM):
    """Time for sound to go from a source to a node (dx, dy = node - source, metres) at the
    effective speed c + w.u along the ray (u the unit vector source -> node)."""
    d = np.hypot(dx, dy)
    if wind[0] == 0.0 and wind[1] == 0.0:
        return d / c
    along = (wind[0] * np.asarray(dx) + wind[1] * np.asarray(dy)) / np.maximum(d, 1e-6)
    return d / (c + along)
