"""What a virtual board gives the firmware from the world, shared by both tiers' boards (the
full chain's virtual_node.VirtualBoard and direct.py's): the clock source and the error the
board states (nodeclock.py) with the time of its last sync, the thermometer (boards.py), and
the stamp of an audio block (the node clock at the block's end, plus how late the board's
sampling task reads it under the `field` profile), the accelerometer (ground.py).

A board class mixes this in before lwnode.hal.sim.Board, calls `_init_world`, and provides
`_true_now_us()` (the world's time now).
"""
from __future__ import annotations

from lwproto.const import CLOCK_ERROR_MAX_US, CLOCK_NONE

from linewatch.emulator.air import Air
from linewatch.emulator.boards import STAMP_ERROR_US
from linewatch.emulator.ground import AT_REST, Accelerometer
from linewatch.emulator.nodeclock import CLOCK_SOURCE_CODES
from linewatch.emulator.world import Node as WorldNode


class WorldBoard:
    world_node: WorldNode
    clock_quality: tuple[int, int]
    temperature: float
    accelerometer: Accelerometer | None = None       # set by the tier (it outlives a boot)
    tamper: tuple[str, int, int] | None = None       # (action, true start us, true end us)

    def accel_read(self):
        """At rest, shaken or tilted during a tamper action, the ground's vibration, noise."""
        if self.accelerometer is None:
            return AT_REST
        return self.accelerometer.read(self._true_now_us(), self.tamper)

    def _init_world(self, world_node: WorldNode, air: Air | None) -> None:
        self.world_node = world_node
        self.air = air
        self._readings = 0
        self._field_clock = world_node.clock.dynamic
        # what the esp32/rp2 boards add for dating a block (firmware/hal/mcu.py)
        self._stamp_allowance = 0 if world_node.board.stamps.exact else STAMP_ERROR_US

    def _true_now_us(self) -> int:
        raise NotImplementedError

    def _elapsed_s(self) -> float:
        return (self._true_now_us() - self._start_us_of_world()) / 1e6

    def _start_us_of_world(self) -> int:
        return self.world_node.clock.reference_us

    def block_stamp(self, node_end_us: int, true_end_us: int | None) -> int:
        """The node's stamp of a block whose last sample its clock dates at node_end_us (the
        window's stamp + samples) and which is heard at true_end_us: a clock whose error
        changes within a window (a PPS edge each second, a sync) stamps by its own time."""
        if self._field_clock and true_end_us is not None:
            stamp = self.world_node.clock.node_time_us(true_end_us)
        else:
            stamp = node_end_us
            true_end_us = self._true_now_us() if true_end_us is None else true_end_us
        stamps = self.world_node.board.stamps
        if not stamps.exact:
            stamp += stamps.delay_us(true_end_us)
        return stamp

    def clock(self):
        if self._field_clock:
            name, error = self.world_node.clock.reported(self._true_now_us())
            source = CLOCK_SOURCE_CODES[name]
        else:
            source, error = self.clock_quality
        if source != CLOCK_NONE and self._stamp_allowance:
            error = min(CLOCK_ERROR_MAX_US, error + self._stamp_allowance)
        return source, error

    def clock_synced_us(self):
        """Node time of the board's last sync (firmware/clock.py adds its drift since)."""
        if not self._field_clock:
            return None
        clock = self.world_node.clock
        synced = clock.synced_true_us(self._true_now_us())
        return None if synced is None else clock.node_time_us(synced)

    def temperature_c(self):
        if self.air is None:
            return self.temperature
        node = self.world_node
        t_s = self._elapsed_s()
        self._readings += 1
        return node.board.thermometer.reading_c(
            float(self.air.temperature_at(node.lat, node.lon, t_s)),
            float(self.air.sun(t_s, node.lon)), self._readings)
