"""Sound from a source to a node: arrival time, received level, signal-to-noise ratio.

Fidelity: straight-ray propagation over flat ground. Delay = distance / c(T) (plus an optional
wind component along the ray); level = source level at 1 m - spherical spreading
(20 log10 r) - atmospheric absorption (dB/km at the source's dominant frequency). No ground
effect, no terrain shadowing, no refraction by temperature gradients.
"""
from __future__ import annotations

import math

import numpy as np

# Atmospheric absorption in dB/km at 20 °C, 70 % relative humidity (ISO 9613-1, octave bands).
ABSORPTION_DB_PER_KM = (
    (63.0, 0.1), (125.0, 0.4), (250.0, 1.0), (500.0, 1.9),
    (1000.0, 3.7), (2000.0, 9.7), (4000.0, 32.8), (8000.0, 117.0),
)

# A source is "heard" (truth.heard_by) when its received level exceeds the node's noise floor
# by this much; the node's own detector decides in the full chain.
DETECTION_SNR_DB = 10.0


def speed_of_sound(temperature_c: float) -> float:
    """Speed of sound in dry air, m/s."""
    if temperature_c <= -273.15:
        raise ValueError("temperature %r °C is below absolute zero" % temperature_c)
    return 331.3 * math.sqrt(1.0 + temperature_c / 273.15)


def absorption_db_per_km(frequency_hz):
    """Absorption at a frequency (scalar or array), log-frequency interpolation of the table."""
    f = np.asarray(frequency_hz, dtype=float)
    bands = np.log10([b for b, _ in ABSORPTION_DB_PER_KM])
    values = np.log10([a for _, a in ABSORPTION_DB_PER_KM])
    logf = np.log10(np.maximum(f, 1.0))
    # Extrapolate beyond the table with the end slopes (absorption grows ~ f^2 at the top).
    out = np.interp(logf, bands, values)
    lo = logf < bands[0]
    hi = logf > bands[-1]
    out = np.where(lo, values[0] + (logf - bands[0]) * (values[1] - values[0]) / (bands[1] - bands[0]), out)
    out = np.where(hi, values[-1] + (logf - bands[-1]) * (values[-1] - values[-2]) / (bands[-1] - bands[-2]), out)
    result = 10.0 ** out
    return float(result) if result.ndim == 0 else result


def spreading_loss_db(distance_m):
    """Spherical spreading relative to 1 m (no gain closer than 1 m)."""
    r = np.maximum(np.asarray(distance_m, dtype=float), 1.0)
    loss = 20.0 * np.log10(r)
    return float(loss) if loss.ndim == 0 else loss


def received_level_db(source_level_db: float, distance_m, frequency_hz: float):
    """Sound pressure level (dB SPL) at a distance from a source of the given level at 1 m."""
    r = np.asarray(distance_m, dtype=float)
    level = source_level_db - spreading_loss_db(r) - absorption_db_per_km(frequency_hz) * r / 1000.0
    return float(level) if np.ndim(level) == 0 else level


def travel_time_s(distance_m, temperature_c: float, wind_along_mps=0.0):
    """Time for sound to cover the distance; wind_along_mps is the wind's component source->node."""
    c = speed_of_sound(temperature_c) + np.asarray(wind_along_mps, dtype=float)
    t = np.asarray(distance_m, dtype=float) / c
    return float(t) if t.ndim == 0 else t


def snr_db(received_db, noise_floor_db):
    """Received level above the node's background noise floor."""
    out = np.asarray(received_db, dtype=float) - np.asarray(noise_floor_db, dtype=float)
    return float(out) if out.ndim == 0 else out


def distances_m(lat: float, lon: float, lats, lons, height_m: float = 0.0):
    """Slant distance from one point (optionally at a height) to many points on the ground."""
    la1, lo1 = math.radians(lat), math.radians(lon)
    la2, lo2 = np.radians(np.asarray(lats, dtype=float)), np.radians(np.asarray(lons, dtype=float))
    a = np.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    ground = 2 * 6_371_008.8 * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return np.hypot(ground, height_m)


def bearings_rad(lat: float, lon: float, lats, lons):
    """Initial bearing (radians clockwise from north) from one point to many."""
    la1, lo1 = math.radians(lat), math.radians(lon)
    la2, lo2 = np.radians(np.asarray(lats, dtype=float)), np.radians(np.asarray(lons, dtype=float))
    y = np.sin(lo2 - lo1) * np.cos(la2)
    x = math.cos(la1) * np.sin(la2) - math.sin(la1) * np.cos(la2) * np.cos(lo2 - lo1)
    return np.arctan2(y, x)


def wind_along(bearing_rad, wind_speed_mps: float, wind_from_deg: float):
    """Component of the wind along a ray of the given bearing (wind *from* a direction, like METAR)."""
    towards = math.radians(wind_from_deg) + math.pi
    return wind_speed_mps * np.cos(np.asarray(bearing_rad, dtype=float) - towards)
