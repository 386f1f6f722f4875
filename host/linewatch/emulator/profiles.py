"""Realism profiles: how kind the emulated world is to the commission.

`ideal` is the world as it was first written: one temperature and one wind everywhere,
straight rays, exact block stamps, the world's true wind handed to the commission and
thermometers that read the air. `field` is what a commission meets on a real line: a cheap
met station's reading (or none), board thermometers warmer than the air, surveyed positions
with error, air that varies in space and time, per-path jitter, and board clocks and block
stamps as the boards keep them. docs/scenarios.md gives every default with its reason.

A scenario picks a profile by name (`[scenario] profile = "field"`, the default) and may
override single values in a `[realism]` table (`[realism.met] station = false`); the CLI's
`--profile` replaces the scenario's choice. Every key is checked: a typo is an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

DEFAULT_PROFILE = "field"


@dataclass(frozen=True)
class MetProfile:
    """What the commission is told about the air (its `[fusion]` config)."""
    mode: str = "exact"                  # exact: the world's true mean wind, no temperature
                                         # (the nodes' thermometers read the air); station: a
                                         # met station's reading; none: nothing
    temperature_bias_c: float = 0.0      # a cheap shield warms in the sun
    temperature_noise_c: float = 0.0     # 1-sigma of the station's reading
    wind_speed_bias_mps: float = 0.0
    wind_speed_noise_mps: float = 0.0    # 1-sigma, or the share below, whichever is larger
    wind_speed_noise_share: float = 0.0
    wind_direction_noise_deg: float = 0.0
    wind_direction_step_deg: float = 0.0  # 22.5: a 16-point vane; 0: continuous
    offset_m: float = 0.0                # the station stands this far behind the line's middle
                                         # (- is right of the line, the nodes' side)


@dataclass(frozen=True)
class BoardProfile:
    """The node's board as the commission sees it: its thermometer and its surveyed place."""
    thermometer: str = "air"             # air: reads the air exactly; board: its own sensor
    sensor_offset_sd_c: float = 0.0      # per-node calibration offset (1-sigma)
    self_heating_c: float = 0.0          # electronics in a closed box
    sun_gain_c: float = 0.0              # a box in full sun at solar noon (per-node shade 0..1)
    reading_noise_c: float = 0.0         # per reading
    survey_error_m: float = 5.0          # 1-sigma per axis, when the scenario does not say
    survey_blunder_share: float = 0.0    # nodes whose registered place is grossly wrong
    survey_blunder_m: float = 0.0        # how far off those are
    esp32_share: float = 1.0             # the rest are Pico W (rp2) boards


@dataclass(frozen=True)
class AirProfile:
    """The air between sources and nodes."""
    model: str = "uniform"               # uniform: one temperature, one wind; field: varying
    humidity_pct: float = 70.0           # for ISO 9613-1 absorption (field model)
    temperature_spatial_sd_c: float = 0.0    # across the line, over ~5-30 km
    temperature_diurnal_c: float = 0.0   # half the day's swing (warmest at 15:00 local)
    wind_spatial_share: float = 0.0      # 1-sigma of the large-scale wind, share of its speed
    wind_direction_sd_deg: float = 0.0   # large-scale veer across the line and the hours
    gust_share: float = 0.0              # turbulence intensity: gust 1-sigma / mean speed
    gust_period_s: float = 20.0
    jitter_ms_per_sqrt_km: float = 0.0   # turbulent travel-time scatter, 1-sigma at 1 km
    level_scatter_db: float = 0.0        # per path (scintillation, ground), 1-sigma
    upwind_shadow_db_per_mps_km: float = 0.0  # refraction loss going against the wind
    upwind_shadow_max_db: float = 0.0


@dataclass(frozen=True)
class TimingProfile:
    """Board clocks and how blocks of audio are stamped."""
    clocks: str = "simple"               # simple: the first model (fixed offset and drift);
                                         # field: NTP re-syncs, GPS PPS by board, honest errors
    stamps: str = "exact"                # exact: each block at its last sample; driver: when
                                         # the sampling task wakes, behind the I2S buffer
    stall_per_s: float = 0.0             # stalls of the asyncio loop (flash writes, gc ...)
    stall_max_ms: float = 0.0            # a stall lasts up to this
    long_stall_per_h: float = 0.0        # blocking calls (NTP query, DNS): up to the buffer
    wake_latency_ms: float = 0.0         # mean latency of the sampling task on a quiet loop
    pick_sd_ms: float = 0.0              # observe.py only: the detector's onset error


@dataclass(frozen=True)
class BackgroundProfile:
    """What a node's microphone hears besides the scenario's sources (background.py)."""
    model: str = "white"                 # white: the node's floor as white noise; field: the
                                         # floor as pink noise, wind on the microphone, rain
    wind_noise_db_at_5mps: float = 0.0   # wind on the microphone (foam screen) at 5 m/s there
    rain_share: float = 0.0              # share of the time it rains (per segment, in episodes)
    rain_noise_db: float = 0.0           # drops on the node's box, dB SPL
    vehicle_per_h: float = 0.0           # transients per node and hour (docs/scenarios.md)
    thunder_per_h: float = 0.0
    door_per_h: float = 0.0
    animal_per_h: float = 0.0
    work_per_h: float = 0.0


@dataclass(frozen=True)
class Profile:
    name: str
    met: MetProfile = field(default_factory=MetProfile)
    board: BoardProfile = field(default_factory=BoardProfile)
    air: AirProfile = field(default_factory=AirProfile)
    timing: TimingProfile = field(default_factory=TimingProfile)
    background: BackgroundProfile = field(default_factory=BackgroundProfile)

    @property
    def is_ideal(self) -> bool:
        return self == IDEAL


IDEAL = Profile("ideal")

FIELD = Profile(
    "field",
    met=MetProfile(mode="station", temperature_bias_c=0.5, temperature_noise_c=1.0,
                   wind_speed_bias_mps=0.0, wind_speed_noise_mps=1.0, wind_speed_noise_share=0.1,
                   wind_direction_noise_deg=10.0, wind_direction_step_deg=22.5,
                   offset_m=-5000.0),
    board=BoardProfile(thermometer="board", sensor_offset_sd_c=1.5, self_heating_c=3.0,
                       sun_gain_c=10.0, reading_noise_c=0.25, survey_error_m=3.0,
                       survey_blunder_share=0.02, survey_blunder_m=30.0, esp32_share=0.6),
    air=AirProfile(model="field", humidity_pct=70.0, temperature_spatial_sd_c=1.0,
                   temperature_diurnal_c=4.0, wind_spatial_share=0.25, wind_direction_sd_deg=15.0,
                   gust_share=0.25, gust_period_s=20.0, jitter_ms_per_sqrt_km=0.7,
                   level_scatter_db=2.0, upwind_shadow_db_per_mps_km=1.0,
                   upwind_shadow_max_db=20.0),
    timing=TimingProfile(clocks="field", stamps="driver", stall_per_s=1.0, stall_max_ms=40.0,
                         long_stall_per_h=1.0, wake_latency_ms=0.3, pick_sd_ms=1.0),
    background=BackgroundProfile(model="field", wind_noise_db_at_5mps=55.0, rain_share=0.07,
                                 rain_noise_db=45.0, vehicle_per_h=1.0, thunder_per_h=0.1,
                                 door_per_h=0.3, animal_per_h=2.0, work_per_h=0.3),
)

PROFILES = {p.name: p for p in (IDEAL, FIELD)}
_GROUPS = ("met", "board", "air", "timing", "background")
_CHOICES = {("met", "mode"): ("exact", "station", "none"),
            ("board", "thermometer"): ("air", "board"),
            ("air", "model"): ("uniform", "field"),
            ("timing", "clocks"): ("simple", "field"),
            ("timing", "stamps"): ("exact", "driver"),
            ("background", "model"): ("white", "field")}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError("unknown realism profile %r (expected one of: %s)"
                         % (name, ", ".join(sorted(PROFILES)))) from None


def with_overrides(base: Profile, overrides: dict, where: str = "realism") -> Profile:
    """The profile with single values replaced: {"met": {"mode": "none"}, ...}. ValueError
    names the key (`realism.met.mode: ...`) for anything unknown or of the wrong kind."""
    if not isinstance(overrides, dict):
        raise ValueError("%s: expected a table, got %r" % (where, overrides))
    groups = {}
    for group, values in overrides.items():
        key = "%s.%s" % (where, group)
        if group not in _GROUPS:
            raise ValueError("%s: unknown key (expected one of: %s)" % (key, ", ".join(_GROUPS)))
        if not isinstance(values, dict):
            raise ValueError("%s: expected a table, got %r" % (key, values))
        current = getattr(base, group)
        known = {f.name: f for f in fields(current)}
        changes = {}
        for name, value in values.items():
            if name not in known:
                raise ValueError("%s.%s: unknown key (expected one of: %s)"
                                 % (key, name, ", ".join(known)))
            changes[name] = _checked(group, name, getattr(current, name), value, "%s.%s" % (key, name))
        groups[group] = replace(current, **changes)
    return replace(base, **groups) if groups else base


def _checked(group: str, name: str, current, value, key: str):
    choices = _CHOICES.get((group, name))
    if choices is not None:
        if value not in choices:
            raise ValueError("%s: %r is not one of: %s" % (key, value, ", ".join(choices)))
        return value
    number = _number(value, key, signed=name == "offset_m" or "_bias_" in name)
    if name.endswith("_share") and number > 1.0:
        raise ValueError("%s: a share must be <= 1, got %r" % (key, value))
    return number


def _number(value, key: str, signed: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError("%s: expected a number, got %r" % (key, value))
    if value < 0 and not signed:
        raise ValueError("%s: must be >= 0, got %r" % (key, value))
    return float(value)


def describe(p: Profile) -> str:
    """One line for logs and the CLI: which profile, and what is not the named default."""
    named = PROFILES.get(p.name)
    if named is None or named == p:
        return p.name
    changed = []
    for group in _GROUPS:
        mine, theirs = getattr(p, group), getattr(named, group)
        for f in fields(mine):
            if getattr(mine, f.name) != getattr(theirs, f.name):
                changed.append("%s.%s=%r" % (group, f.name, getattr(mine, f.name)))
    return "%s (%s)" % (p.name, ", ".join(changed))
