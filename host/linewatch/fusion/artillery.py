"""Artillery: pair the blast of a launch with the blast of its impact.

Both are explosions located by TDOA. The earlier is the launch when the later one follows
after a plausible flight time and at a range that a shell covers at a plausible mean ground
speed. Among several candidates the one whose speed is nearest the geometric middle of the
plausible range wins (ties: the lower incident id), so the choice is deterministic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..geo import haversine_m
from .config import FusionConfig


@dataclass(frozen=True)
class Blast:
    incident_id: str
    time_utc_us: int
    lat: float
    lon: float


def flight_speed(launch: Blast, impact: Blast, config: FusionConfig) -> float | None:
    """Mean ground speed of the shell if `impact` can be where `launch` landed, else None."""
    flight_s = (impact.time_utc_us - launch.time_utc_us) / 1e6
    if not config.flight_min_s <= flight_s <= config.flight_max_s:
        return None
    speed = haversine_m(launch.lat, launch.lon, impact.lat, impact.lon) / flight_s
    if not config.shell_speed_min_mps <= speed <= config.shell_speed_max_mps:
        return None
    return speed


def best_partner(blast: Blast, candidates: list[Blast], config: FusionConfig) -> tuple[Blast, str] | None:
    """The best unpaired partner and `blast`'s role in the pair ("launch" or "impact")."""
    middle = math.sqrt(config.shell_speed_min_mps * config.shell_speed_max_mps)
    best = None
    for other in candidates:
        if other.incident_id == blast.incident_id:
            continue
        if other.time_utc_us >= blast.time_utc_us:
            speed, role = flight_speed(blast, other, config), "launch"
        else:
            speed, role = flight_speed(other, blast, config), "impact"
        if speed is None:
            continue
        score = (abs(math.log(speed / middle)), other.incident_id)
        if best is None or score < best[0]:
            best = (score, other, role)
    return None if best is None else (best[1], best[2])
