"""NMEA parsing and PPS time discipline of hal/gps.py (board-independent)."""
import datetime

import pytest

from lwnode.hal import gps


def sentence(body):
    total = 0
    for ch in body:
        total ^= ord(ch)
    return "$%s*%02X\r\n" % (body, total)


RMC = sentence("GPRMC,123519.00,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W")
GGA = sentence("GNGGA,123519.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")


def test_checksum_accepts_good_and_refuses_bad():
    assert gps.checksum_ok(RMC.strip())
    assert not gps.checksum_ok(RMC.strip()[:-1] + "0")
    assert not gps.checksum_ok("GPRMC,no,dollar*00")
    assert not gps.checksum_ok("$GPRMC,no star")


def test_coordinates_in_degrees_with_hemisphere_sign():
    assert gps.coordinate("4807.038", "N") == pytest.approx(48.1173)
    assert gps.coordinate("01131.000", "W") == pytest.approx(-11.516666, abs=1e-6)
    assert gps.coordinate("", "N") is None
    assert gps.coordinate("4807.038", "X") is None
    assert gps.coordinate("7.0", "N") is None


@pytest.mark.parametrize("date,time", [("230394", "123519.00"), ("010100", "000000"),
                                       ("290224", "235959.50"), ("311299", "120000.25")])
def test_utc_matches_datetime(date, time):
    expected = datetime.datetime(2000 + int(date[4:]), int(date[2:4]), int(date[:2]),
                                 int(time[:2]), int(time[2:4]), tzinfo=datetime.timezone.utc)
    us = int(expected.timestamp()) * 1000000 + round(float(time[4:]) * 1e6)
    assert gps.utc_us(date, time) == us


def test_utc_refuses_malformed_fields():
    assert gps.utc_us("2303", "123519") is None
    assert gps.utc_us("231394", "123519") is None
    assert gps.utc_us("230394", "12a519") is None


def test_position_from_bytes_in_any_chunking():
    receiver = gps.Gps()
    data = (RMC + GGA).encode()
    for i in range(0, len(data), 7):
        receiver.feed(data[i:i + 7], now_ticks=100)
    lat, lon, alt, err = receiver.position(now_ticks=200)
    assert (round(lat, 4), round(lon, 4), alt) == (48.1173, 11.5167, 545.4)
    assert err == pytest.approx(0.9 * gps.UERE_M)
    assert receiver.sentences == 2 and receiver.bad_sentences == 0


def test_void_fix_and_noise_give_no_position_and_are_counted():
    receiver = gps.Gps()
    receiver.feed(sentence("GPRMC,123519,V,,,,,,,230394,,").encode())
    receiver.feed(b"\xff\xfe garbage without newline" * 10 + b"\n")
    receiver.feed(RMC.replace("A,4807", "A,4808").encode())   # checksum now wrong
    assert receiver.position(0) is None
    assert receiver.bad_sentences >= 2


def test_position_goes_stale():
    receiver = gps.Gps()
    receiver.feed(GGA.encode(), now_ticks=0)
    assert receiver.position(gps.FIX_STALE_US) is not None
    assert receiver.position(gps.FIX_STALE_US + 1) is None


def test_pps_anchors_the_previous_pulse_to_the_rmc_second():
    receiver = gps.Gps(pps_error_us=20)
    second = gps.utc_us("230394", "123519.00")
    receiver.pulse(5000000)                   # pulse of 12:35:19 (RMC not yet read)
    assert receiver.time_us(5000100) is None
    receiver.feed(RMC.encode(), 5300000)       # its NMEA burst, 300 ms later
    receiver.pulse(6000003)                   # next pulse pairs the previous one
    utc, error = receiver.time_us(6500000)
    assert utc == second + 1500000
    assert error == 20 + 1500000 * gps.DRIFT_PPM // 1000000


def test_pulses_without_nmea_do_not_anchor_and_anchor_goes_stale():
    receiver = gps.Gps()
    receiver.pulse(0)
    receiver.pulse(1000000)
    assert receiver.time_us(1000001) is None
    receiver.feed(RMC.encode(), 1200000)
    receiver.pulse(2000000)
    assert receiver.time_us(1000000 + gps.ANCHOR_STALE_US) is not None
    assert receiver.time_us(1000001 + gps.ANCHOR_STALE_US) is None


def test_same_results_on_the_micropython_unix_port(micropython):
    code = ("from lwnode.hal import gps\n"
            "g = gps.Gps()\n"
            "g.feed(%r, 0)\n"
            "g.pulse(1)\n"
            "g.feed(%r, 2)\n"
            "g.pulse(1000001)\n"
            "print(g.position(3), g.time_us(1000001), gps.utc_us('290224', '235959.50'))\n"
            % ((RMC + GGA).encode(), RMC.encode()))
    result = micropython.run_code(code)
    assert result.returncode == 0, result.stdout + result.stderr
    receiver = gps.Gps()
    receiver.feed((RMC + GGA).encode(), 0)
    receiver.pulse(1)
    receiver.feed(RMC.encode(), 2)
    receiver.pulse(1000001)
    pos = receiver.position(3)
    expected = (pos, receiver.time_us(1000001), gps.utc_us("290224", "235959.50"))
    printed = result.stdout.strip()
    assert printed.startswith("(48.1173")
    assert printed.endswith("%s %s" % (expected[1], expected[2])), printed
