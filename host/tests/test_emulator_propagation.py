import math

import pytest

from linewatch.emulator import propagation as p


def test_speed_of_sound_follows_temperature():
    assert p.speed_of_sound(0.0) == pytest.approx(331.3)
    assert p.speed_of_sound(20.0) == pytest.approx(343.2, abs=0.1)
    assert p.speed_of_sound(-20.0) == pytest.approx(318.9, abs=0.1)
    with pytest.raises(ValueError, match="absolute zero"):
        p.speed_of_sound(-300.0)


def test_absorption_matches_table_and_interpolates_in_log_frequency():
    assert p.absorption_db_per_km(1000.0) == pytest.approx(3.7)
    assert p.absorption_db_per_km(4000.0) == pytest.approx(32.8)
    between = p.absorption_db_per_km(math.sqrt(1000.0 * 2000.0))
    assert between == pytest.approx(math.sqrt(3.7 * 9.7), rel=1e-6)
    assert p.absorption_db_per_km(16000.0) > p.absorption_db_per_km(8000.0) > 100


def test_received_level_is_spreading_plus_absorption():
    assert p.spreading_loss_db(1000.0) == pytest.approx(60.0)
    assert p.spreading_loss_db(0.2) == 0.0
    # 150 dB at 1 m, 2 km away, 1 kHz: 150 - 66.02 - 7.4
    assert p.received_level_db(150.0, 2000.0, 1000.0) == pytest.approx(150 - 66.0206 - 7.4, abs=1e-3)


def test_travel_time_and_wind():
    assert p.travel_time_s(343.2, 20.0) == pytest.approx(1.0, abs=1e-3)
    assert p.travel_time_s(1000.0, 20.0, wind_along_mps=10.0) < p.travel_time_s(1000.0, 20.0)
    # Wind from the west blows towards the east: a ray to the east (bearing 90°) gains it.
    assert p.wind_along(math.radians(90), 5.0, 270.0) == pytest.approx(5.0)
    assert p.wind_along(math.radians(270), 5.0, 270.0) == pytest.approx(-5.0)


def test_distances_include_height():
    d = p.distances_m(48.0, 37.0, [48.0 + 1000 / 111_195.0], [37.0], height_m=100.0)
    assert d[0] == pytest.approx(math.hypot(1000.0, 100.0), rel=1e-3)
