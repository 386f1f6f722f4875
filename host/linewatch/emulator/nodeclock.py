"""A node's idea of UTC, and what it says about its own error.

Two models (profiles.TimingProfile.clocks):

- `simple` (profile `ideal`): node time = true + offset + drift since the start + Gaussian
  jitter; the error it reports is fixed (gps_pps 2 us, ntp 2 sigma of its offset, none 60 s).
- `field`: as the boards' own code keeps time (firmware/hal/mcu.py, gps.py, sntp.py):
  * gps_pps: each second's PPS edge anchors the clock. The ESP32 reads ticks_us in a soft
    interrupt, late by up to 2 ms (mean 0.3 ms), so its clock runs early by that, anew each
    second, and it reports 2,000 us; the Pico W's hard interrupt is late by < 10 us and it
    reports 20 us.
  * ntp: one SNTP exchange at boot and every hour. The offset after a sync is off by the
    path's asymmetry (1-sigma 30 % of half the round trip; round trips log-normal around
    50 ms); between syncs the board's crystal drifts (1-sigma 10 ppm). It reports half the
    round trip + 1 ms, and its firmware adds 50 ppm of the time since the sync (clock.py).
  * none: a free-running clock set by hand (offset 1-sigma 30 s, drift 20 ppm); it reports
    the maximum error.

Clock faults a scenario sets per node (`clock_fault` events, sources.ClockFault) are applied
on top by `with_fault`: an offset or a step the node does not know about, an extra drift,
or a node that claims GPS PPS while its receiver is not locked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from lwproto.const import CLOCK_ERROR_MAX_US

CLOCK_SOURCES = ("none", "ntp", "gps_pps")        # wire codes 0, 1, 2
CLOCK_SOURCE_CODES = {name: code for code, name in enumerate(CLOCK_SOURCES)}
# The error a node with a free-running clock reports (it cannot know better).
FREE_RUNNING_ERROR_US = 60_000_000
NTP_RESYNC_S = 3600.0            # firmware/hal/mcu.py NTP_RESYNC_MS
NTP_SYNC_FLOOR_US = 1000         # firmware/hal/sntp.py: error = rtt / 2 + 1 ms
PPS_ERROR_US = {"esp32": 2000, "rp2": 20}          # firmware/hal/esp32.py, rp2.py
PPS_LATE_MEAN_US = {"esp32": 300.0, "rp2": 3.0}
SYNC_HORIZON_S = 48 * 3600.0     # NTP syncs drawn ahead (longer runs keep the last one)


def _unit(key: int, n: int) -> float:
    """A deterministic uniform in [0, 1) from two integers (splitmix64): cheap enough to call
    for every stamp, and the same in every process."""
    z = (key * 0x9E3779B97F4A7C15 + n * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z ^= z >> 31
    return (z >> 11) / float(1 << 53)


@dataclass(frozen=True)
class NodeClock:
    """The node's idea of UTC: true time + offset + drift since the run began (or since its
    last sync) + jitter, plus any faults."""
    source: str                  # how the clock is really disciplined
    offset_us: float
    drift_ppm: float
    jitter_us: float
    error_estimate_us: int       # what the node reports (at its last sync)
    reference_us: int = 0        # true UTC at which `offset_us` holds (the scenario start)
    # field model
    syncs: tuple[tuple[int, float, int], ...] = ()    # NTP: (true us, offset us, error us)
    pps_late_mean_us: float = 0.0        # GPS: mean late capture of each PPS edge
    pps_late_max_us: float = 0.0
    key: int = 0                         # for the per-second PPS draws
    # faults
    claimed_source: str | None = None    # what the node says its source is, when not `source`
    claimed_from_us: int = 0             # ... from this true time on
    claimed_error_us: int = 0            # ... with this error
    steps: tuple[tuple[int, float, float], ...] = ()  # (true us, jump us, extra drift ppm)

    @property
    def dynamic(self) -> bool:
        """Whether what the board states changes over time (field model, faults)."""
        return bool(self.syncs or self.key or self.claimed_source or self.steps)

    @property
    def source_code(self) -> int:
        """The wire code of the clock source (what the node says at the run's start)."""
        return CLOCK_SOURCE_CODES[self.reported(self.reference_us)[0]]

    def _claims(self, true_us: float) -> bool:
        return self.claimed_source is not None and true_us >= self.claimed_from_us

    def _sync_before(self, true_us: float):
        """The last NTP sync at or before true_us, or None."""
        last = None
        for sync in self.syncs:
            if sync[0] > true_us:
                break
            last = sync
        return last

    def offset_at(self, true_us: float) -> float:
        """Node time minus true time, without the per-reading jitter."""
        sync = self._sync_before(true_us)
        if sync is not None:
            offset = sync[1] + self.drift_ppm * 1e-6 * (true_us - sync[0])
        else:
            offset = self.offset_us + self.drift_ppm * 1e-6 * (true_us - self.reference_us)
        if self.pps_late_mean_us > 0:
            second = int(true_us // 1_000_000)
            late = -self.pps_late_mean_us * math.log(1.0 - _unit(self.key, second))
            offset -= min(late, self.pps_late_max_us)
        for at, jump, drift in self.steps:
            if true_us >= at:
                offset += jump + drift * 1e-6 * (true_us - at)
        return offset

    def node_time_us(self, true_us: float, rng: np.random.Generator | None = None) -> int:
        t = true_us + self.offset_at(true_us)
        if rng is not None and self.jitter_us > 0:
            t += rng.normal(0.0, self.jitter_us)
        return int(round(t))

    def true_time_us(self, node_us: float) -> float:
        """Inverse of node_time_us without jitter (two fixed-point passes: offsets are far
        smaller than the spans over which they change)."""
        true = float(node_us) - self.offset_at(node_us)
        return float(node_us) - self.offset_at(true)

    def reported(self, true_us: float) -> tuple[str, int]:
        """(source, error us) the board states for its clock at true_us, before the firmware
        adds its own drift allowance since the sync (firmware/clock.py)."""
        if self._claims(true_us):
            return self.claimed_source, int(min(CLOCK_ERROR_MAX_US, self.claimed_error_us))
        sync = self._sync_before(true_us)
        error = sync[2] if sync is not None else self.error_estimate_us
        return self.source, int(min(CLOCK_ERROR_MAX_US, error))

    def stated_error_us(self, start_us: int, end_us: int, allowance_us: int = 0,
                        drift_ppm: float = 50.0) -> int:
        """The largest clock error the node's frames state between start_us and end_us: the
        board's figure after each sync, the firmware's drift_ppm since it, and the board's
        stamp allowance (capped at the wire's largest)."""
        if not self.dynamic:
            return int(self.error_estimate_us)
        worst = 0
        times = [start_us] + [s[0] for s in self.syncs if start_us < s[0] < end_us] + [end_us]
        for at, until in zip(times, times[1:] + [end_us]):
            source, error = self.reported(at)
            if source == "none":
                return CLOCK_ERROR_MAX_US
            synced = self.synced_true_us(at)
            age = 1_000_000 if synced is None or self.pps_late_mean_us > 0 or self._claims(at) \
                else max(until, at) - synced
            worst = max(worst, error + allowance_us + int(age * drift_ppm // 1_000_000))
        return int(min(CLOCK_ERROR_MAX_US, worst))

    def synced_true_us(self, true_us: float) -> int | None:
        """True time of the board's last sync (NTP exchange or PPS edge), None if it never says."""
        if self._claims(true_us) or self.pps_late_mean_us > 0:
            return int(true_us // 1_000_000) * 1_000_000
        if self.syncs:
            sync = self._sync_before(true_us)
            return None if sync is None else sync[0]
        return None


def draw_clock(source: str, rng: np.random.Generator, reference_us: int) -> NodeClock:
    """The `simple` model: a clock typical of its source, fixed offset and drift."""
    if source == "gps_pps":
        return NodeClock(source, rng.normal(0.0, 1.0), 0.0, 1.0, 2, reference_us)
    if source == "ntp":
        sd_us = rng.uniform(1_000.0, 10_000.0)
        return NodeClock(source, rng.normal(0.0, sd_us), rng.normal(0.0, 0.2), 300.0,
                         int(2 * sd_us), reference_us)
    if source == "none":
        return NodeClock(source, rng.normal(0.0, 30e6), rng.normal(0.0, 20.0), 20.0,
                         FREE_RUNNING_ERROR_US, reference_us)
    raise ValueError("unknown clock source %r (expected one of %s)" % (source, ", ".join(CLOCK_SOURCES)))


def draw_field_clock(source: str, board: str, rng: np.random.Generator, reference_us: int,
                     key: int) -> NodeClock:
    """The `field` model (module docstring): as the board's own firmware keeps time."""
    if source == "gps_pps":
        error = PPS_ERROR_US[board]
        return NodeClock(source, 0.0, 0.0, 0.0, error, reference_us,
                         pps_late_mean_us=PPS_LATE_MEAN_US[board], pps_late_max_us=float(error),
                         key=key)
    if source == "ntp":
        half_rtt_us = 0.5 * float(rng.lognormal(math.log(50_000.0), 0.6))
        drift = float(rng.normal(0.0, 10.0))
        first = reference_us + int(rng.uniform(0.0, 5e6))
        syncs = []
        at = first
        while at < reference_us + SYNC_HORIZON_S * 1e6:
            rtt_half = half_rtt_us * float(rng.uniform(0.7, 1.5))
            syncs.append((int(at), float(rng.normal(0.0, 0.3 * rtt_half)),
                          int(rtt_half + NTP_SYNC_FLOOR_US)))
            at += NTP_RESYNC_S * 1e6
        # before the first exchange the board runs on its RTC: far off, and it says so
        return NodeClock(source, float(rng.normal(0.0, 30e6)), drift, 0.0,
                         CLOCK_ERROR_MAX_US, reference_us, syncs=tuple(syncs), key=key)
    if source == "none":
        return NodeClock(source, float(rng.normal(0.0, 30e6)), float(rng.normal(0.0, 20.0)), 0.0,
                         FREE_RUNNING_ERROR_US, reference_us, key=key)
    raise ValueError("unknown clock source %r (expected one of %s)" % (source, ", ".join(CLOCK_SOURCES)))


CLOCK_FAULTS = ("offset", "step", "drift", "false_lock")


def with_fault(clock: NodeClock, fault: str, at_us: int, offset_us: float = 0.0,
               drift_ppm: float = 0.0, board: str = "esp32") -> NodeClock:
    """The clock with a fault from at_us on (the node does not know: what it reports stays):
    offset/step: a jump of offset_us; drift: an extra drift_ppm; false_lock: the node claims
    GPS PPS (and reports its PPS error) while its time is off by offset_us and drifts."""
    if fault not in CLOCK_FAULTS:
        raise ValueError("unknown clock fault %r (expected one of %s)" % (fault, ", ".join(CLOCK_FAULTS)))
    stepped = replace(clock, steps=tuple(sorted(clock.steps + ((int(at_us), float(offset_us), float(drift_ppm)),))))
    if fault != "false_lock":
        return stepped
    return replace(stepped, claimed_source="gps_pps", claimed_from_us=int(at_us),
                   claimed_error_us=PPS_ERROR_US.get(board, 2000),
                   syncs=tuple(s for s in clock.syncs if s[0] < at_us), pps_late_mean_us=0.0)
