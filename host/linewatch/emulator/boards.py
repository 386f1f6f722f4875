"""The world's model of each node's board: which board it is, what its thermometer reads, and
how late its audio blocks are stamped.

Thermometer (profiles.BoardProfile.thermometer = "board"): firmware/hal/mcu.py reads the
accelerometer's die sensor (MPU-6050), else the chip's own; either sits in a closed box with
the electronics. Reading = the air at the node + self-heating + a per-node calibration offset
+ sun on the box (per-node shade 0..1, scaled by the sun's height) + reading noise.

Block stamps (profiles.TimingProfile.stamps = "driver"): the node stamps a block with its
clock when its sampling task has read the block's last sample (lwnode.node._sampling). The
I2S driver hands samples over in DMA chunks (ESP32: 256 frames = 16 ms; Pico W: 16 frames =
1 ms); a 512-sample block ends on a chunk boundary on both, so the chunk adds nothing, and
the stamp is late by the asyncio loop's latency: short on a quiet loop (`wake_latency_ms`,
exponential), long while another task holds the loop (flash writes, garbage collection,
MQTT: `stall_per_s` stalls of up to `stall_max_ms`; blocking calls such as the SNTP query
or a DNS lookup: `long_stall_per_h`, 100-500 ms). A stall cannot make a stamp later than the
driver's buffer: `machine.I2S(ibuf=...)` with the firmware's 512 x 4 x 6 bytes holds 96 ms
on both boards (their DMA keeps 8-byte stereo frames, so the buffer holds half the 192 ms
the firmware's sizing assumes); older samples are dropped (the dropped samples are not
modelled: the block keeps its samples, only its stamp is late).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from linewatch.emulator.nodeclock import _unit

I2S_BUFFER_US = 96_000
# What the esp32/rp2 boards add to their clock error for dating a block (firmware/hal/mcu.py
# _STAMP_US): the node's timeline follows the earliest stamps, within a millisecond.
STAMP_ERROR_US = 1000
LONG_STALL_US = (100_000, 500_000)
BLOCK_US = 32_000                    # 512 samples at 16 kHz
_STANDARD = NormalDist()


@dataclass(frozen=True)
class Thermometer:
    mode: str = "air"                # air: reads the air exactly; board: the model above
    offset_c: float = 0.0
    self_heating_c: float = 0.0
    sun_gain_c: float = 0.0          # this node's, shade included
    noise_c: float = 0.0
    key: int = 0

    def reading_c(self, air_c: float, sun: float, reading: int = 0) -> float:
        """What the board's sensor reads with the air at air_c and the sun at `sun` (0..1);
        `reading` numbers the readings, for the noise."""
        if self.mode == "air":
            return float(air_c)
        u = min(max(_unit(self.key, reading), 1e-12), 1.0 - 1e-12)
        noise = self.noise_c * _STANDARD.inv_cdf(u)
        return float(air_c + self.self_heating_c + self.offset_c + self.sun_gain_c * sun + noise)


@dataclass(frozen=True)
class StampTiming:
    """How late a block's stamp is, by the true time of its last sample (deterministic)."""
    key: int = 0
    wake_latency_us: float = 0.0
    stall_per_s: float = 0.0
    stall_max_us: float = 0.0
    long_stall_per_h: float = 0.0
    buffer_us: float = I2S_BUFFER_US

    @property
    def exact(self) -> bool:
        return self.wake_latency_us <= 0 and self.stall_per_s <= 0 and self.long_stall_per_h <= 0

    def delay_us(self, block_end_us: int) -> int:
        if self.exact:
            return 0
        block = int(block_end_us // BLOCK_US)
        late = -self.wake_latency_us * math.log(1.0 - _unit(self.key, 2 * block))
        second = int(block_end_us // 1_000_000)
        for s in (second - 1, second):
            for start, end in self._stalls(s):
                if start <= block_end_us < end:
                    late = max(late, end - block_end_us)
        return int(min(late, self.buffer_us))

    def _stalls(self, second: int):
        """Stalls starting within a second: (start us, end us)."""
        out = []
        base = second * 1_000_000
        u = _unit(self.key ^ 0x5A5A, second)
        count, p = 0, math.exp(-self.stall_per_s)        # Poisson by inversion
        cumulative = p
        while u > cumulative and count < 20:
            count += 1
            p *= self.stall_per_s / count
            cumulative += p
        for i in range(count):
            start = base + 1e6 * _unit(self.key ^ 0x1234, second * 32 + 2 * i)
            out.append((start, start + self.stall_max_us * _unit(self.key ^ 0x1234, second * 32 + 2 * i + 1)))
        if _unit(self.key ^ 0x7777, second) < self.long_stall_per_h / 3600.0:
            start = base + 1e6 * _unit(self.key ^ 0x7778, second)
            lo, hi = LONG_STALL_US
            out.append((start, start + lo + (hi - lo) * _unit(self.key ^ 0x7779, second)))
        return out


@dataclass(frozen=True)
class BoardModel:
    kind: str = "esp32"              # "esp32" | "rp2": PPS timing (nodeclock.py)
    thermometer: Thermometer = Thermometer()
    stamps: StampTiming = StampTiming()
