"""What the commission is told about the air: its met station's reading, or the world's truth
(profile `ideal`), or nothing.

The station stands behind the middle of the line (profiles.MetProfile.offset_m) and is read
once, when the commission's config is written: air temperature and the mean wind there (a
station reports a 2-10 minute mean, so gusts are left out), with a fixed bias and a random
error of a cheap station, the direction rounded to its vane's 16 points.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from linewatch.emulator.randomness import stream
from linewatch.emulator.world import World


@dataclass(frozen=True)
class MetReading:
    """None where the commission has no figure."""
    temperature_c: float | None
    wind_speed_mps: float | None
    wind_from_deg: float | None
    source: str                       # "exact", "station" or "none"
    where: tuple[float, float] | None = None    # the station's (lat, lon)


def read_met(world: World, at_s: float = 0.0) -> MetReading:
    met = world.profile.met
    env = world.environment
    if met.mode == "none":
        return MetReading(None, None, None, "none")
    if met.mode == "exact":
        # The first model: the world's one wind, no temperature (the nodes' thermometers
        # read the air exactly, and the commission takes their median).
        return MetReading(None, env.wind_speed_mps, env.wind_from_deg, "exact")
    lat, lon = world.line.point_at(world.line.length_m / 2.0, met.offset_m)
    rng = stream(world.seed, "met")
    air = world.air
    temperature = float(air.temperature_at(lat, lon, at_s)) + met.temperature_bias_c \
        + float(rng.normal(0.0, met.temperature_noise_c))
    east, north = air.wind_at(lat, lon, at_s, gusts=False)
    east, north = float(east), float(north)
    speed = math.hypot(east, north)
    noise_sd = max(met.wind_speed_noise_mps, met.wind_speed_noise_share * speed)
    speed = max(0.0, speed + met.wind_speed_bias_mps + float(rng.normal(0.0, noise_sd)))
    direction = (math.degrees(math.atan2(-east, -north)) + float(rng.normal(0.0, met.wind_direction_noise_deg))) % 360.0
    if met.wind_direction_step_deg > 0:
        direction = (round(direction / met.wind_direction_step_deg) * met.wind_direction_step_deg) % 360.0
    return MetReading(round(temperature, 1), round(speed, 1), round(direction, 1), "station", (lat, lon))
