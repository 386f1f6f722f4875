# GPS receiver over UART: NMEA RMC/GGA for position and UTC, and the PPS pulse for time to
# the microsecond. Board-independent (no machine import): the board hands in bytes read from
# its UART and the ticks_us it captured on each PPS edge, so CPython tests drive it directly.
#
# Time discipline: receivers (u-blox, MTK, ATGM) send the NMEA burst for a second *after* that
# second's pulse. So at pulse k, the RMC read since pulse k-1 names the UTC second of pulse
# k-1, and the anchor is (ticks at pulse k-1, that second). The board must feed the UART bytes
# before reporting pulse k (esp32/rp2 read the UART in the PPS handler for this reason).

import time


def _plain_diff(a, b):
    return a - b


# MicroPython's ticks wrap; CPython's test ticks are plain integers that never do
ticks_diff = getattr(time, "ticks_diff", _plain_diff)

MAX_LINE = 96              # NMEA allows 82 characters; longer means noise or a lost newline
FIX_STALE_US = 10000000    # a position older than 10 s is no longer reported
ANCHOR_STALE_US = 60000000  # without pulses for 60 s, the board falls back to its RTC
DRIFT_PPM = 50             # crystal drift of the board's ticks between pulses
UERE_M = 5.0               # user equivalent range error: horizontal error ~ HDOP * UERE


def checksum_ok(line):
    """True for '$...*hh' where hh is the XOR of the characters between '$' and '*'."""
    star = line.rfind("*")
    if not line.startswith("$") or star < 0 or len(line) < star + 3:
        return False
    total = 0
    for ch in line[1:star]:
        total ^= ord(ch)
    try:
        return total == int(line[star + 1:star + 3], 16)
    except ValueError:
        return False


def days_from_civil(year, month, day):
    """Days since 1970-01-01 of a Gregorian date (Howard Hinnant's algorithm)."""
    if month <= 2:
        year -= 1
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def utc_us(date_field, time_field):
    """UTC microseconds since 1970 from RMC 'ddmmyy' and 'hhmmss.sss'; None when malformed."""
    if len(date_field) != 6 or len(time_field) < 6:
        return None
    try:
        day = int(date_field[0:2])
        month = int(date_field[2:4])
        year = 2000 + int(date_field[4:6])
        hours = int(time_field[0:2])
        minutes = int(time_field[2:4])
        seconds = float(time_field[4:])
    except ValueError:
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31 and hours < 24 and minutes < 60
            and 0 <= seconds < 61):
        return None
    whole = days_from_civil(year, month, day) * 86400 + hours * 3600 + minutes * 60
    return whole * 1000000 + int(seconds * 1000000 + 0.5)


def coordinate(value, hemisphere):
    """Degrees from NMEA 'dddmm.mmmm' and 'N'/'S'/'E'/'W'; None when empty or malformed."""
    if not value or hemisphere not in ("N", "S", "E", "W"):
        return None
    dot = value.find(".")
    if dot < 0:
        dot = len(value)
    if dot < 3:
        return None
    try:
        degrees = int(value[:dot - 2]) + float(value[dot - 2:]) / 60.0
    except ValueError:
        return None
    return -degrees if hemisphere in ("S", "W") else degrees


class Gps:
    """The receiver's state, fed with UART bytes and PPS edges."""

    def __init__(self, pps_error_us=100):
        self._line = bytearray()
        self.pps_error_us = pps_error_us
        self.lat = None
        self.lon = None
        self.alt_m = 0.0
        self.hdop = 99.0
        self.satellites = 0
        self.sentences = 0
        self.bad_sentences = 0
        self.pulses = 0
        self._fix_ticks = None
        self._rmc_us = None      # UTC of the latest valid RMC since the previous pulse
        self._last_pulse = None  # ticks of the previous pulse
        self.anchor_ticks = None
        self.anchor_utc_us = None

    # ---- NMEA
    def feed(self, data, now_ticks=0):
        """Take bytes from the UART (any chunking); parses every complete line."""
        for byte in data:
            if byte == 10:       # '\n'
                self._sentence(self._line, now_ticks)
                self._line = bytearray()
            elif byte != 13:
                if len(self._line) < MAX_LINE:
                    self._line.append(byte)
                else:
                    self.bad_sentences += 1
                    self._line = bytearray()

    def _sentence(self, raw, now_ticks):
        if not raw:
            return
        try:
            line = bytes(raw).decode()
        except UnicodeError:
            line = ""
        if not checksum_ok(line):
            self.bad_sentences += 1
            return
        self.sentences += 1
        fields = line[1:line.rfind("*")].split(",")
        kind = fields[0][2:]
        if kind == "RMC":
            self._rmc(fields, now_ticks)
        elif kind == "GGA":
            self._gga(fields, now_ticks)

    def _rmc(self, fields, now_ticks):
        if len(fields) < 10 or fields[2] != "A":
            return
        self._rmc_us = utc_us(fields[9], fields[1])
        lat = coordinate(fields[3], fields[4])
        lon = coordinate(fields[5], fields[6])
        if lat is not None and lon is not None:
            self.lat, self.lon, self._fix_ticks = lat, lon, now_ticks

    def _gga(self, fields, now_ticks):
        if len(fields) < 10 or fields[6] in ("", "0"):
            return
        lat = coordinate(fields[2], fields[3])
        lon = coordinate(fields[4], fields[5])
        if lat is None or lon is None:
            return
        try:
            self.satellites = int(fields[7] or "0")
            self.hdop = float(fields[8] or "99")
            self.alt_m = float(fields[9] or "0")
        except ValueError:
            self.bad_sentences += 1
            return
        self.lat, self.lon, self._fix_ticks = lat, lon, now_ticks

    def position(self, now_ticks=0):
        """(lat, lon, alt_m, error_m) while the fix is fresh, else None."""
        if self._fix_ticks is None:
            return None
        if ticks_diff(now_ticks, self._fix_ticks) > FIX_STALE_US:
            self._fix_ticks = None     # see time_us: wrapped ticks would revive an old fix
            return None
        return (self.lat, self.lon, self.alt_m, self.hdop * UERE_M)

    # ---- time
    def utc_of_last_sentence(self):
        """UTC microseconds of the latest valid RMC (NMEA-level time: ~0.5 s accurate)."""
        return self._rmc_us

    def pulse(self, ticks):
        """A PPS edge captured at `ticks`: pairs the previous edge with the RMC read since."""
        self.pulses += 1
        if self._last_pulse is not None and self._rmc_us is not None:
            self.anchor_ticks = self._last_pulse
            self.anchor_utc_us = self._rmc_us - self._rmc_us % 1000000
        self._rmc_us = None
        self._last_pulse = ticks

    def time_us(self, now_ticks):
        """(utc_us, error_us) from the PPS anchor, or None when no pulse paired recently."""
        anchor_utc = self.anchor_utc_us
        if self.anchor_ticks is None or anchor_utc is None:
            return None
        age = ticks_diff(now_ticks, self.anchor_ticks)
        if age < 0 or age > ANCHOR_STALE_US:
            self.anchor_ticks = None   # board ticks wrap (~18 min): a kept anchor would revive
            return None
        return (anchor_utc + age, self.pps_error_us + age * DRIFT_PPM // 1000000)
