"""Tunable assumptions of the fusion engine, in one place, with their reasons."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .sound import wind_vector


@dataclass(frozen=True)
class FusionConfig:
    temperature_c: float = 15.0
    # Wind (speed, and the compass bearing it blows FROM, as a met station reports it): the
    # sound goes at c + w.u along each ray. Taken as known; 3 m/s ignored costs tens of metres.
    wind_speed_mps: float = 0.0
    wind_from_deg: float = 0.0
    # Onset picking and propagation (wind, terrain) error, added in quadrature to each node's
    # clock error: even a GPS-timed node does not know when a blast front reached it to 1 us.
    timing_floor_us: int = 1_000
    # Where the nodes are is known only as surveyed: 1 sigma per axis; along the ray it is a
    # timing error of its own (1.5 m ~ 4.4 ms). Half what a hurried handheld survey gives
    # (3 m, the emulator's field profile): wider weights let four arrivals of different
    # sounds pass the chi-square test as one phantom more often (docs/fusion.md).
    position_sd_m: float = 1.5
    # Turbulent travel-time scatter, 1 sigma, growing with the square root of the path
    # (0.5-1 ms at 1 km in the outdoor-acoustics literature): far arrivals weigh less.
    path_jitter_ms_per_sqrt_km: float = 0.7
    # How far the told air may be off (1 sigma): the speed of sound (a met station's or the
    # nodes' thermometers, away from the station and hours later: ~3 C is 2 m/s) and each
    # wind component (a cheap station, gusts, the wind elsewhere on the line). A fix with
    # spare arrivals estimates both; its ellipse carries what stays unknown. 0: taken as known.
    sound_speed_sd_mps: float = 2.0
    wind_sd_mps: float = 1.5
    # A two-node pair (a hyperbola) is published only with this set: one sound heard by two
    # nodes cannot be placed, and at the detectors' measured false-alarm rates (~10-20 per
    # node-hour in the field, emulator/false_alarms.py) unrelated lone reports at neighbouring
    # nodes pair within the travel time between them ~100 times per node-day. Held, such a
    # pair is evidence all the same and is published as the fix a third node makes of it.
    publish_pairs: bool = False
    # A clock worse than this (no GPS, no NTP) times nothing: its reports are detections only.
    max_clock_error_us: int = 500_000
    # Nodes further apart than this do not hear one source together (explosions: ~10 km each).
    max_baseline_m: float = 20_000.0
    # Farthest a node hears an impulsive sound (a blast ~10 km): a fix farther than this from
    # any of its nodes is not one source (phantoms of 3 arrivals of different sounds are).
    impulse_hearing_range_m: float = 10_000.0
    # How far outside the nodes' bounding box a source is sought (artillery lands far away).
    search_margin_m: float = 8_000.0
    # Extra slack on every timing window: frame timestamps are rounded, air is not still.
    window_margin_us: int = 50_000
    # An arrival joins a fix when within this many standard errors of its predicted time.
    gate_sigmas: float = 4.0
    # Chi-square probability above which an arrival is declared an outlier.
    outlier_p: float = 0.999
    # How long after the last possible arrival a late report may still update an incident.
    lateness_us: int = 10_000_000
    # Coarse search grid (points per axis) that seeds every fix; bounded to bound latency.
    grid_points: int = 72
    # Most open reports re-associated at once; a flood is cut to the closest in time.
    max_group: int = 64
    # Bursts (small arms): a shot joins a located shot of the same family fired at most this
    # long after the burst's last shot and this close to it (plus both 95% ellipses' axes).
    burst_gap_s: float = 2.0
    # A node hears a burst as a train of shots (0.07-0.15 s apart, every other one within its
    # detector's refractory time): a shot this soon after the last at the same node is a later
    # shot of that train, not a new arrival to associate.
    shot_gap_s: float = 0.5
    burst_radius_m: float = 300.0
    # Artillery: a launch and its impact (flight time, mean ground speed of the shell).
    flight_min_s: float = 5.0
    flight_max_s: float = 120.0
    shell_speed_min_mps: float = 200.0
    shell_speed_max_mps: float = 1000.0
    # Tracks of continuous sounds (drones, vehicles).
    track_gap_s: float = 60.0
    track_speed_max_mps: float = 70.0
    # A node reports a vehicle when it has gone (or every 60 s), so the next node's report may
    # come minutes later: 1 km between nodes at 5 m/s is 200 s.
    vehicle_track_gap_s: float = 300.0
    vehicle_speed_max_mps: float = 25.0
    hearing_range_m: float = 1_500.0
    track_frequency_tolerance: float = 0.2
    track_smoothing_s: float = 10.0
    # A drone or vehicle track is published once it holds this many reports (one node's
    # later ones or a neighbour's). One report is one node hearing a tone or a rumble for a
    # few seconds once: a cow's call, a generator starting, a car on a farm track, a gust
    # give that as well (emulator/background.py, false_alarms.py). A drone or vehicle near a
    # node is heard for tens of seconds, reported again by that node after its refractory
    # time (drone 10 s) or by the next node. Held, the report joins the track and is its
    # evidence once a second one comes; a track that never gets one is never published.
    track_confirm_reports: int = 2
    # A drone track that only one node hears, at one level and one tone, is a machine
    # standing there (a generator, a pump: a steady tone with harmonics), not yet a drone: a
    # drone flying 5-30 m/s goes 50-300 m between a node's reports (10 s apart), its level
    # there changes by several dB, and its blade-pass tone falls by 3-18 % (Doppler) as it
    # goes by. Such a track is held while its reports' peak levels span less than
    # track_moving_db and their tones no more than track_moving_hz (the drone detector's
    # fundamentals come on a grid of 8.3 Hz and a steady tone's wander by one step), and no
    # second node has joined it. track_moving_db 0: not held.
    track_moving_db: float = 2.5
    track_moving_hz: float = 10.0
    crossing_hysteresis_m: float = 50.0

    @property
    def air(self):
        """The air a fit is told (tdoa.Air): the configured wind as the prior's centre, the
        uncertainties above, the path's jitter."""
        from .tdoa import Air
        from .timing import jitter_s2_per_m
        return Air(0.0, self.wind, self.sound_speed_sd_mps, self.wind_sd_mps, jitter_s2_per_m(self))

    @property
    def wind(self) -> tuple[float, float]:
        """(east, north) air velocity, m/s."""
        return wind_vector(self.wind_speed_mps, self.wind_from_deg)

    def __post_init__(self) -> None:
        self.wind    # raises ValueError for an implausible wind
        if self.timing_floor_us <= 0:
            raise ValueError("timing_floor_us must be positive (it keeps every weight finite)")
        for name in ("position_sd_m", "path_jitter_ms_per_sqrt_km", "sound_speed_sd_mps", "wind_sd_mps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 100.0):
                raise ValueError("%s must be a number from 0 to 100, got %r" % (name, value))
        if self.max_baseline_m <= 0 or self.search_margin_m < 0:
            raise ValueError("max_baseline_m must be positive and search_margin_m not negative")
        if self.impulse_hearing_range_m <= 0:
            raise ValueError("impulse_hearing_range_m must be positive")
        if not 0.5 < self.outlier_p < 1.0:
            raise ValueError("outlier_p must lie between 0.5 and 1")
        if self.grid_points < 8 or self.max_group < 3:
            raise ValueError("grid_points must be >= 8 and max_group >= 3")
        if not 0 < self.flight_min_s < self.flight_max_s:
            raise ValueError("need 0 < flight_min_s < flight_max_s")
        if not isinstance(self.track_confirm_reports, int) or self.track_confirm_reports < 1:
            raise ValueError("track_confirm_reports must be a whole number >= 1")
        if not (isinstance(self.track_moving_db, (int, float)) and 0.0 <= self.track_moving_db <= 40.0):
            raise ValueError("track_moving_db must be a number of dB from 0 to 40, got %r" % (self.track_moving_db,))
        if not (isinstance(self.track_moving_hz, (int, float)) and 0.0 <= self.track_moving_hz <= 400.0):
            raise ValueError("track_moving_hz must be a number of Hz from 0 to 400, got %r" % (self.track_moving_hz,))
        if not 0 < self.shell_speed_min_mps < self.shell_speed_max_mps:
            raise ValueError("need 0 < shell_speed_min_mps < shell_speed_max_mps")
