# What a detector hands to the node app: one small value per detected event.


class Detection:
    """One detected event.

    cls          event class (lwproto.const: 0 unknown .. 5 tamper)
    confidence   0.0 .. 1.0
    onset_index  absolute sample index of the onset (the app turns it into UTC microseconds)
    peak_db      peak level in dB re full scale (tamper: jerk in dB re 1 g)
    duration_ms  how long the event lasted (drone: how long it was tracked)
    frequency_hz dominant frequency (drone: blade-pass fundamental; impulse: spectral balance
                 expressed as a frequency; 0 where it means nothing)
    snr_db       detection statistic in dB (the same quantity the class threshold applies to)
    """
    __slots__ = ("cls", "confidence", "onset_index", "peak_db", "duration_ms",
                 "frequency_hz", "snr_db")

    def __init__(self, cls, confidence, onset_index, peak_db, duration_ms, frequency_hz,
                 snr_db):
        self.cls = cls
        self.confidence = confidence
        self.onset_index = onset_index
        self.peak_db = peak_db
        self.duration_ms = duration_ms
        self.frequency_hz = frequency_hz
        self.snr_db = snr_db

    def __repr__(self):
        return "Detection(cls=%d conf=%.2f onset=%d peak=%.1fdB dur=%dms f=%dHz snr=%.1fdB)" % (
            self.cls, self.confidence, self.onset_index, self.peak_db, self.duration_ms,
            self.frequency_hz, self.snr_db)


def clamp01(v):
    if v < 0.0:
        return 0.0
    if v > 1.0:
        return 1.0
    return v
