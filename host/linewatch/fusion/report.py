"""A node's event report as fusion sees it: one arrival of one sound at one node.

The aggregator builds these from verified frames; fusion never sees bytes. Validation happens
here so a bad report is refused with a clear message before it can reach any computation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

EVENT_CLASSES = ("unknown", "explosion", "small_arms", "drone", "vehicle", "tamper")

# Impulsive sounds have a sharp onset: their arrival times localize the source (TDOA).
IMPULSIVE = frozenset({"unknown", "explosion", "small_arms"})
# Continuous sounds (engines, rotors) have no usable onset: they are tracked, not timed.
CONTINUOUS = frozenset({"drone", "vehicle"})
# Weapons that fire bursts: several shots from one place within seconds are one incident.
# A shot the detector could not name ("unknown") joins a burst of small arms like its own.
BURST = frozenset({"unknown", "small_arms"})
# Tampering concerns one node only and is never fused across nodes.
LOCAL = frozenset({"tamper"})
# Where a node's time comes from (the frame's clock source; protocol/SPEC.md). A node with no
# time source stamps its own idea of UTC, which can be off by minutes: never timed.
CLOCK_SOURCES = ("none", "ntp", "gps_pps")


@dataclass(frozen=True)
class Report:
    """One event report from one node, with the evidence-log row of the frame that carried it."""
    node_id: int
    lat: float
    lon: float
    alt_m: float
    event_class: str
    onset_utc_us: int
    clock_error_us: int
    confidence: float
    peak_db: float
    duration_ms: int
    frequency_hz: int
    snr_db: float
    evidence_id: int | None
    received_at_us: int
    clock_source: str | None = None     # one of CLOCK_SOURCES; None: not said (trust the error)

    def __post_init__(self) -> None:
        where = "report from node 0x%04x" % self.node_id if isinstance(self.node_id, int) else "report"
        if not isinstance(self.node_id, int) or not 0 <= self.node_id <= 0xFFFF:
            raise ValueError("%s: node id %r is not a u16" % (where, self.node_id))
        if self.event_class not in EVENT_CLASSES:
            raise ValueError("%s: unknown event class %r" % (where, self.event_class))
        for name in ("lat", "lon", "alt_m", "confidence", "peak_db", "snr_db"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError("%s: %s %r is not a finite number" % (where, name, value))
        if not -90.0 <= self.lat <= 90.0 or not -180.0 <= self.lon <= 180.0:
            raise ValueError("%s: position (%r, %r) is off the globe" % (where, self.lat, self.lon))
        for name in ("onset_utc_us", "clock_error_us", "duration_ms", "frequency_hz", "received_at_us"):
            if not isinstance(getattr(self, name), int):
                raise ValueError("%s: %s %r is not an integer" % (where, name, getattr(self, name)))
        if self.clock_error_us < 0:
            raise ValueError("%s: negative clock error %d us" % (where, self.clock_error_us))
        if self.clock_source is not None and self.clock_source not in CLOCK_SOURCES:
            raise ValueError("%s: unknown clock source %r" % (where, self.clock_source))
        if self.evidence_id is not None and not isinstance(self.evidence_id, int):
            raise ValueError("%s: evidence id %r is not an integer" % (where, self.evidence_id))

    @property
    def key(self) -> tuple[int, str, int]:
        """What makes two reports the same arrival (a re-sent frame yields the same key)."""
        return (self.node_id, self.event_class, self.onset_utc_us)


def timed(report: Report, max_clock_error_us: int) -> bool:
    """The report's onset can time a source: the node has a time source and states an error
    within the limit (a node with none is not timed, whatever error it states)."""
    return report.clock_source != "none" and report.clock_error_us <= max_clock_error_us


# Different nodes name one sound differently: a far node that hears a blast faintly names it
# "unknown", a weak shot may be "unknown" at one node and "small_arms" at the next. So every
# impulsive class is fused in one family; only two *named* classes that differ (an explosion
# and a shot) never share a source (compatible()).
IMPULSIVE_FAMILY = "impulsive"
NAMED_IMPULSES = ("explosion", "small_arms")     # the order breaks a tie in named_class()


def family(event_class: str) -> str:
    """The class family inside which reports may be fused: the impulsive classes are one
    family (see IMPULSIVE_FAMILY); every other class is its own."""
    return IMPULSIVE_FAMILY if event_class in IMPULSIVE else event_class


# What an "unknown" report's spectrum says. The detector names an impulse by its spectral
# balance (frame `frequency_hz`, firmware/impulse.py): explosion at <= 400 Hz, small arms at
# >= 600 Hz, "unknown" when the balance or the duration fits neither. An unknown whose balance
# is a crack's is no blast heard far away: a far node hears a blast with its high frequencies
# absorbed, lower still. On generated field days (seeds 1-8, `lwtools.bench.source_diagnosis`)
# blasts named unknown had balances of 0-34 Hz, the background's unknowns (knocks, squeaks,
# doors: 962 reports) a median of 3,360 Hz, 90 % over 720 Hz, and 3 of 4 false fixes made of
# background reports joined such an unknown to two "explosions" (thumps at 27-30 Hz).
CRACK_MIN_HZ = 600           # firmware/impulse.py _SMALL_ARMS_MIN_HZ
THUMP_MAX_HZ = 400           # firmware/impulse.py _EXPLOSION_MAX_HZ


def sound_kind(report) -> str:
    """The class a report stands for when fusing: its own, or for an "unknown" what its
    spectral balance says ("crack" at >= CRACK_MIN_HZ, "thump" at <= THUMP_MAX_HZ). A class
    name (an incident's class) stands for itself."""
    if isinstance(report, str):
        return report
    if report.event_class != "unknown":
        return report.event_class
    if report.frequency_hz >= CRACK_MIN_HZ:
        return "crack"
    if report.frequency_hz <= THUMP_MAX_HZ:
        return "thump"
    return "unknown"


# Kinds that never name one sound: an explosion and a shot, and a crack-like unknown with a
# blast or a thump-like unknown (a thump may still be a shot: shots far away or in the rumble
# were named explosion at 108-389 Hz).
_CONFLICTS = frozenset({frozenset({"explosion", "small_arms"}), frozenset({"explosion", "crack"}),
                        frozenset({"thump", "crack"})})


def compatible(a, b) -> bool:
    """Two reports (or classes) can name one source: the same class, or one of them "unknown",
    unless an unknown's spectrum says otherwise (sound_kind)."""
    a, b = sound_kind(a), sound_kind(b)
    return a == b or frozenset({a, b}) not in _CONFLICTS


def named_class(classes) -> str:
    """What an incident of these reports' classes is called: the named impulsive class most of
    them give (a tie: the first of NAMED_IMPULSES), "unknown" when none names it."""
    counts = {name: 0 for name in NAMED_IMPULSES}
    for cls in classes:
        if cls in counts:
            counts[cls] += 1
    best = max(NAMED_IMPULSES, key=lambda name: counts[name])
    return best if counts[best] else "unknown"
