"""What a node's accelerometer reads (milli-g, once per audio block, as the firmware reads it):
at rest, moved or shaken during a tamper action, the ground's vibration from vehicles nearby,
and the sensor's own noise.

Ground vibration: a vehicle shakes the ground around it; at a node it is taken as random
motion on each axis (sampled once per 32 ms block, a 10-80 Hz vibration is as good as
random) whose RMS falls with distance as surface waves do, 1/sqrt(r), with the soil's damping
(`DAMPING_PER_M`): a heavy tracked vehicle ~40 mg at 10 m (1-5 mm/s peak particle velocity at
~20 Hz), a wheeled one ~4 mg (~0.3 mm/s). So a tracked vehicle stands over the sensor's
noise within ~50-80 m, a wheeled one within ~10-20 m. Left out: the soil's kind and moisture,
resonances of the pole the node is mounted on, vibration from explosions.
"""
from __future__ import annotations

import math
import random

import numpy as np

from linewatch.emulator import propagation as p
from linewatch.emulator.sources import Track

AT_REST = (0, 0, 1000)
SHAKE = ((0, 0, 1000), (650, -550, 1300))        # a tamper "shake": alternating readings
MOVED = (0, 720, 690)                            # tilted ~46 degrees
NOISE_MG = 4.0                                   # per axis, RMS (MPU-6050 at its 44 Hz filter)
VIBRATION_AT_10M_MG = {"wheeled": 4.0, "tracked": 40.0}
DAMPING_PER_M = 0.02
REACH_M = 300.0                                  # beyond: under 0.1 mg even for a tracked vehicle
STEP_S = 5.0                                     # tracks sampled this often to find who is near


def vibration_mg(kind: str, distance_m):
    """RMS ground acceleration per axis (milli-g) at distance_m from a vehicle of `kind`."""
    r = np.maximum(np.asarray(distance_m, dtype=float), 5.0)
    return VIBRATION_AT_10M_MG.get(kind, VIBRATION_AT_10M_MG["wheeled"]) * np.sqrt(10.0 / r) \
        * np.exp(-DAMPING_PER_M * (r - 10.0))


class Ground:
    """The ground vibration every node feels from the scenario's vehicles."""

    def __init__(self, world, sources) -> None:
        self.world = world
        self._near: dict[int, list[Track]] = {}
        lats, lons = world.node_lats, world.node_lons
        for s in sources:
            if not isinstance(s, Track) or s.event_class != "vehicle":
                continue
            times = np.arange(s.time_s, s.end_s + STEP_S, STEP_S)
            tl, tn = s.positions_at(times)
            slack = REACH_M + s.speed_mps * STEP_S
            pad = slack / 111_000.0 * 3.0           # degrees (a degree of longitude is shorter)
            box = np.flatnonzero((lats >= tl.min() - pad) & (lats <= tl.max() + pad)
                                 & (lons >= tn.min() - pad) & (lons <= tn.max() + pad))
            for i in box:
                d = p.distances_m(float(lats[i]), float(lons[i]), tl, tn, 0.0)
                if float(np.min(d)) <= slack:
                    self._near.setdefault(int(world.node_ids[i]), []).append(s)

    def vibration_mg(self, node, t_s: float) -> float:
        """RMS per axis (milli-g) at a node (world.Node) at scenario time t_s."""
        total = 0.0
        for s in self._near.get(node.id, ()):
            if s.time_s <= t_s <= s.end_s:
                lat, lon = s.position_at(t_s)
                d = float(p.distances_m(node.lat, node.lon, np.array([lat]), np.array([lon]), 0.0)[0])
                total += float(vibration_mg(s.kind, d)) ** 2
        return math.sqrt(total)


class Accelerometer:
    """One node's accelerometer, across its boots: a reading per call (the firmware reads one
    per audio block); the noise is drawn from the node's own stream, in call order."""

    def __init__(self, node, seed: int, start_utc_us: int, ground: Ground | None = None) -> None:
        self.node = node
        self.ground = ground
        self.start_utc_us = start_utc_us
        self._shake = 0
        self._rng = random.Random("%d/accel/%d" % (seed, node.id))

    def read(self, true_us: int, tamper: tuple[str, int, int] | None) -> tuple[int, int, int]:
        """The reading at true time true_us; tamper: (action, true start us, true end us)."""
        x, y, z = self._attitude(true_us, tamper)
        sd = NOISE_MG
        if self.ground is not None:
            sd = math.hypot(sd, self.ground.vibration_mg(self.node, (true_us - self.start_utc_us) / 1e6))
        g = self._rng.gauss
        return (int(round(x + g(0.0, sd))), int(round(y + g(0.0, sd))), int(round(z + g(0.0, sd))))

    def _attitude(self, now: int, tamper) -> tuple[int, int, int]:
        if tamper is None:
            return AT_REST
        action, start, end = tamper
        if not start <= now < end:
            return MOVED if action == "move" and now >= end else AT_REST
        if action == "move":
            return MOVED
        self._shake += 1
        return SHAKE[self._shake % 2]
