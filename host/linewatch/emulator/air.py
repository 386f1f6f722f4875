"""The world's air: temperature, humidity and wind over the line, in space and time, and what
they do to sound on its way from a source to a node.

Two models (profiles.AirProfile.model):

- `uniform` (profile `ideal`): one temperature and one wind everywhere and always; delay =
  distance / (c(T) + wind along the ray); absorption from the ISO 9613-2 octave table at
  10 °C, 70 % RH (propagation.ABSORPTION_DB_PER_KM). Fusion's own model, so fusion is right
  by construction.
- `field`: temperature = the scenario's + a diurnal swing + a smooth random field over the
  line (sum of random plane waves, ~5-30 km, drifting over the hours); wind = the scenario's
  mean, its speed and direction varied by a large-scale field, plus gusts (frozen turbulence
  advected by the mean wind); the delay integrates 1 / (c(T) + wind along the ray) along the
  straight ray at the times the wavefront passes each point; absorption by the ISO 9613-1
  formula at the path's temperature and humidity; going upwind costs a refraction loss (the
  shadow zone); each path gets a turbulent travel-time jitter growing with the square root of
  its length and a level scatter. Rays stay straight (no ducting, no terrain).

Everything random is drawn from the world's seed, so truth and audio agree; the per-path
jitter and level scatter are drawn by the caller (`path_noise`) from the rng it passes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from linewatch.emulator.profiles import AirProfile
from linewatch.emulator.randomness import stream
from linewatch.geo import EARTH_RADIUS_M

PATH_POINTS = 9                  # samples along a ray for the field model's integral
STANDARD_PRESSURE_KPA = 101.325


def speed_of_sound(temperature_c):
    """Speed of sound in dry air, m/s (scalar or array)."""
    t = np.asarray(temperature_c, dtype=float)
    if np.any(t <= -273.15):
        raise ValueError("temperature %r °C is below absolute zero" % (temperature_c,))
    c = 331.3 * np.sqrt(1.0 + t / 273.15)
    return float(c) if c.ndim == 0 else c


def iso9613_absorption_db_per_km(frequency_hz, temperature_c=20.0, humidity_pct=70.0,
                                 pressure_kpa: float = STANDARD_PRESSURE_KPA):
    """Atmospheric absorption, dB/km, by the formula of ISO 9613-1:1993 (pure tones);
    frequency, temperature and humidity may be arrays that broadcast together."""
    f = np.asarray(frequency_hz, dtype=float)
    t = np.asarray(temperature_c, dtype=float) + 273.15
    pr = pressure_kpa / STANDARD_PRESSURE_KPA
    c_sat = -6.8346 * (273.16 / t) ** 1.261 + 4.6151
    h = np.asarray(humidity_pct, dtype=float) * 10.0 ** c_sat / pr     # molar water vapour, %
    tr = t / 293.15
    fr_o = pr * (24.0 + 4.04e4 * h * (0.02 + h) / (0.391 + h))
    fr_n = pr * tr ** -0.5 * (9.0 + 280.0 * h * np.exp(-4.170 * (tr ** (-1.0 / 3.0) - 1.0)))
    alpha = 8.686 * f ** 2 * (1.84e-11 / pr * tr ** 0.5 + tr ** -2.5 * (
        0.01275 * np.exp(-2239.1 / t) / (fr_o + f ** 2 / fr_o)
        + 0.1068 * np.exp(-3352.0 / t) / (fr_n + f ** 2 / fr_n)))
    out = alpha * 1000.0
    return float(out) if np.ndim(out) == 0 else out


class _Field:
    """A smooth random field of unit standard deviation: a sum of K random plane waves with
    wavelengths and periods drawn in the given ranges; `advect` moves it with a wind."""

    def __init__(self, rng: np.random.Generator, k: int, wavelength_m: tuple[float, float],
                 period_s: tuple[float, float]) -> None:
        direction = rng.uniform(0.0, 2.0 * math.pi, k)
        number = 2.0 * math.pi / rng.uniform(*wavelength_m, k)
        self.kx = number * np.cos(direction)
        self.ky = number * np.sin(direction)
        self.omega = 2.0 * math.pi / rng.uniform(*period_s, k) * rng.choice((-1.0, 1.0), k)
        self.phase = rng.uniform(0.0, 2.0 * math.pi, k)
        self.scale = math.sqrt(2.0 / k)

    def at(self, x, y, t, advect: tuple[float, float] = (0.0, 0.0)):
        x = np.asarray(x, dtype=float)[..., None] - advect[0] * np.asarray(t, dtype=float)[..., None]
        y = np.asarray(y, dtype=float)[..., None] - advect[1] * np.asarray(t, dtype=float)[..., None]
        arg = self.kx * x + self.ky * y - self.omega * np.asarray(t, dtype=float)[..., None] + self.phase
        return self.scale * np.cos(arg).sum(axis=-1)


@dataclass(frozen=True)
class Paths:
    """Sound from one source to many nodes: what the air did on each straight ray."""
    distance_m: np.ndarray
    travel_s: np.ndarray         # without the per-path jitter (see path_noise)
    wind_along_mps: np.ndarray   # mean wind component from source to node
    temperature_c: np.ndarray    # mean along the ray
    humidity_pct: float
    shadow_db: np.ndarray        # upwind refraction loss


class Air:
    """Temperature and wind of the world at (lat, lon, scenario seconds)."""

    def __init__(self, temperature_c: float, wind_speed_mps: float, wind_from_deg: float,
                 profile: AirProfile, seed: int, origin: tuple[float, float], start_utc_us: int,
                 humidity_pct: float | None = None) -> None:
        self.profile = profile
        self.field = profile.model == "field"
        self.temperature_c = float(temperature_c)
        self.humidity_pct = float(profile.humidity_pct if humidity_pct is None else humidity_pct)
        self.wind_speed_mps = float(wind_speed_mps)
        self.wind_from_deg = float(wind_from_deg)
        towards = math.radians(wind_from_deg) + math.pi
        self.mean_wind = (wind_speed_mps * math.sin(towards), wind_speed_mps * math.cos(towards))
        self.lat0, self.lon0 = origin
        self._coslat = math.cos(math.radians(self.lat0))
        self.start_utc_us = int(start_utc_us)
        rng = stream(seed, "air")
        self._temperature = _Field(rng, 6, (5_000.0, 30_000.0), (1_800.0, 7_200.0))
        self._speed = _Field(rng, 6, (10_000.0, 40_000.0), (1_800.0, 7_200.0))
        self._veer = _Field(rng, 6, (10_000.0, 40_000.0), (1_800.0, 7_200.0))
        period = max(1.0, profile.gust_period_s)
        self._gust_u = _Field(rng, 8, (100.0, 800.0), (0.5 * period, 2.0 * period))
        self._gust_v = _Field(rng, 8, (100.0, 800.0), (0.5 * period, 2.0 * period))
        self._diurnal_at_start = self._diurnal(0.0, self.lon0)

    # ---- where and when -----------------------------------------------------------------

    def xy(self, lats, lons) -> tuple[np.ndarray, np.ndarray]:
        """Metres east and north of the world's origin (equirectangular: the fields only need
        to be smooth, not exact)."""
        x = np.radians(np.asarray(lons, dtype=float) - self.lon0) * EARTH_RADIUS_M * self._coslat
        y = np.radians(np.asarray(lats, dtype=float) - self.lat0) * EARTH_RADIUS_M
        return x, y

    def local_solar_hour(self, t_s, lon):
        utc_h = (self.start_utc_us / 1e6 + np.asarray(t_s, dtype=float)) / 3600.0
        return np.mod(utc_h + np.asarray(lon, dtype=float) / 15.0, 24.0)

    def _diurnal(self, t_s, lon):
        """Air temperature swing, warmest at 15:00 local solar time (0 at the scenario start)."""
        hour = self.local_solar_hour(t_s, lon)
        return self.profile.temperature_diurnal_c * np.cos(2.0 * math.pi * (hour - 15.0) / 24.0)

    def sun(self, t_s, lon):
        """0 at night .. 1 at solar noon (a clear sky)."""
        hour = self.local_solar_hour(t_s, lon)
        return np.clip(np.sin(math.pi * (hour - 6.0) / 12.0), 0.0, 1.0)

    # ---- the air at points -------------------------------------------------------------

    def temperature_at(self, lats, lons, t_s):
        """Air temperature, °C, at points (arrays broadcast) and scenario seconds."""
        if not self.field:
            return np.full(np.broadcast(np.asarray(lats), np.asarray(t_s)).shape, self.temperature_c) \
                if np.ndim(lats) or np.ndim(t_s) else self.temperature_c
        x, y = self.xy(lats, lons)
        t = np.asarray(t_s, dtype=float)
        out = (self.temperature_c + self._diurnal(t, lons) - self._diurnal_at_start
               + self.profile.temperature_spatial_sd_c * self._temperature.at(x, y, t))
        return float(out) if np.ndim(out) == 0 else out

    def wind_at(self, lats, lons, t_s, gusts: bool = True):
        """(east, north) wind, m/s, at points and scenario seconds."""
        if not self.field:
            shape = np.broadcast(np.asarray(lats), np.asarray(t_s)).shape
            return np.full(shape, self.mean_wind[0]), np.full(shape, self.mean_wind[1])
        x, y = self.xy(lats, lons)
        t = np.asarray(t_s, dtype=float)
        p = self.profile
        speed = np.maximum(0.0, self.wind_speed_mps * (1.0 + p.wind_spatial_share * self._speed.at(x, y, t)))
        towards = math.radians(self.wind_from_deg) + math.pi + math.radians(p.wind_direction_sd_deg) * self._veer.at(x, y, t)
        east, north = speed * np.sin(towards), speed * np.cos(towards)
        if gusts and p.gust_share > 0 and self.wind_speed_mps > 0:
            sd = p.gust_share * self.wind_speed_mps
            east = east + sd * self._gust_u.at(x, y, t, self.mean_wind)
            north = north + sd * self._gust_v.at(x, y, t, self.mean_wind)
        return east, north

    # ---- sound on its way ----------------------------------------------------------------

    def paths(self, lat: float, lon: float, t_emit_s: float, lats, lons, distance_m,
              bearing_rad) -> Paths:
        """What the air does to sound emitted at (lat, lon) at t_emit_s towards each node;
        `distance_m` and `bearing_rad` are the rays' (propagation.distances_m, bearings_rad)."""
        dist = np.asarray(distance_m, dtype=float)
        bearing = np.asarray(bearing_rad, dtype=float)
        if not self.field:
            towards = math.radians(self.wind_from_deg) + math.pi
            along = self.wind_speed_mps * np.cos(bearing - towards)
            travel = dist / (speed_of_sound(self.temperature_c) + along)
            return Paths(dist, travel, along, np.full(dist.shape, self.temperature_c),
                         self.humidity_pct, np.zeros(dist.shape))
        lats, lons = np.asarray(lats, dtype=float), np.asarray(lons, dtype=float)
        s = (np.arange(PATH_POINTS) + 0.5) / PATH_POINTS                 # along the ray, 0..1
        plat = lat + (lats[:, None] - lat) * s
        plon = lon + (lons[:, None] - lon) * s
        c0 = speed_of_sound(self.temperature_c)
        when = t_emit_s + dist[:, None] * s / c0
        temp = self.temperature_at(plat, plon, when)
        east, north = self.wind_at(plat, plon, when)
        along = east * np.sin(bearing)[:, None] + north * np.cos(bearing)[:, None]
        c_eff = speed_of_sound(temp) + along
        travel = dist * np.mean(1.0 / c_eff, axis=1)
        wind_along = np.mean(along, axis=1)
        p = self.profile
        shadow = np.minimum(p.upwind_shadow_max_db,
                            p.upwind_shadow_db_per_mps_km * np.maximum(0.0, -wind_along) * dist / 1000.0)
        return Paths(dist, travel, wind_along, np.mean(temp, axis=1), self.humidity_pct, shadow)

    def absorption_db_per_km(self, frequency_hz, temperature_c=None):
        """Absorption at frequencies (and the path's temperatures, broadcast): the octave
        table for the uniform model, ISO 9613-1 at the air's state for the field model."""
        if not self.field:
            from linewatch.emulator.propagation import absorption_db_per_km
            return absorption_db_per_km(frequency_hz)
        t = self.temperature_c if temperature_c is None else temperature_c
        return iso9613_absorption_db_per_km(frequency_hz, t, self.humidity_pct)

    def path_noise(self, distance_m, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(travel-time jitter s, level scatter dB) per path, drawn from rng (one draw of each
        per path, in order, so a caller drawing for all nodes gets the same for each node)."""
        dist = np.asarray(distance_m, dtype=float)
        z = rng.standard_normal((2,) + dist.shape)
        if not self.field:
            return np.zeros(dist.shape), np.zeros(dist.shape)
        p = self.profile
        jitter = z[0] * p.jitter_ms_per_sqrt_km * 1e-3 * np.sqrt(dist / 1000.0)
        return jitter, z[1] * p.level_scatter_db
