"""Artillery: pair the blast of a launch with the blast of its impact.

Both are explosions located by TDOA. The earlier is the launch when the later one follows
after a plausible flight time and at a range that a shell covers at a plausible mean ground
speed. Among several candidates the one whose speed is nearest the geometric middle of the
plausible range wins (ties: the lower incident id), so the choice is deterministic.
`Pairing` keeps the engine's located explosions and the pairs made of them.
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


class Pairing:
    """The engine's memory of located explosions and the pairs made of them: each change of an
    explosion incident may make, keep or break a pair; both incidents then name each other."""

    def __init__(self, ledger, config: FusionConfig) -> None:
        self.ledger = ledger                  # lifecycle.Ledger: incidents by id, snapshots
        self.config = config
        self.blasts: dict[str, Blast] = {}    # located explosions, for pairing
        self.pairs: dict[str, str] = {}       # incident id -> partner id

    def pair(self, changed: list, now_us: int) -> list:
        """The incidents (working states) whose pairing changed because of these changes."""
        touched = []
        for state in changed:
            if state.event_class != "explosion":
                continue
            snap = state.snapshot
            blast = Blast(state.id, snap.time_utc_us, snap.lat, snap.lon) if snap.fix == "tdoa" else None
            partner_id = self.pairs.get(state.id)
            if partner_id is not None:
                partner = self.blasts.get(partner_id)
                if blast is not None and partner is not None and (
                        flight_speed(blast, partner, self.config) or flight_speed(partner, blast, self.config)):
                    self.blasts[state.id] = blast
                    continue
                touched += self._unpair(state.id, partner_id, now_us)
            if blast is None:
                self.blasts.pop(state.id, None)
                continue
            self.blasts[state.id] = blast
            free = [b for b in self.blasts.values() if b.incident_id not in self.pairs]
            found = best_partner(blast, free, self.config)
            if found is not None:
                other, role = found
                launch, impact = (state.id, other.incident_id) if role == "launch" else (other.incident_id, state.id)
                touched += self._link(launch, impact, now_us)
        return touched

    def forget_blast(self, incident_id: str) -> None:
        """An incident withdrawn or dropped is no blast to pair with any more."""
        self.blasts.pop(incident_id, None)

    def forget(self, horizon_us: int, incident_ids: list[str]) -> None:
        """Blasts older than the horizon, and the pairs of incidents the ledger forgot."""
        for bid in [b for b, blast in self.blasts.items() if blast.time_utc_us < horizon_us]:
            del self.blasts[bid]
        for sid in incident_ids:
            self.pairs.pop(sid, None)

    def _link(self, launch: str, impact: str, now_us: int) -> list:
        self.pairs[launch], self.pairs[impact] = impact, launch
        out = []
        for number_id, fields in ((launch, {"impact_id": impact}), (impact, {"launch_id": launch})):
            state = self.ledger.by_id.get(number_id)
            if state is not None:
                self.ledger.snapshot(state, now_us, **fields)
                out.append(state)
        return out

    def _unpair(self, a: str, b: str, now_us: int) -> list:
        out = []
        for number_id in (a, b):
            self.pairs.pop(number_id, None)
            state = self.ledger.by_id.get(number_id)
            if state is not None:
                self.ledger.snapshot(state, now_us, launch_id=None, impact_id=None)
                out.append(state)
        return out
