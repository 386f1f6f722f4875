"""Pin map and hardware options: defaults, overrides and clear refusals."""
import pytest

from lwnode.hal import pins

DEFAULTS = {"mic_sck": 16, "mic_ws": 17, "mic_sd": 18, "i2c_sda": 4, "i2c_scl": 5,
            "battery_adc": 29, "gps_rx": 9, "gps_tx": 8, "gps_pps": 10, "led": None}


def test_defaults_when_the_config_names_no_pins():
    assert pins.pin_map({}, DEFAULTS, 29) == DEFAULTS


def test_override_and_disable():
    got = pins.pin_map({"mic_sd": 19, "gps_pps": None}, DEFAULTS, 29)
    assert got["mic_sd"] == 19 and got["gps_pps"] is None and got["mic_sck"] == 16


@pytest.mark.parametrize("raw,words", [
    ({"mic_sd": 40}, "pins.mic_sd must be a GPIO number 0..29"),
    ({"mic_sd": "18"}, "pins.mic_sd must be"),
    ({"mic_sd": True}, "pins.mic_sd must be"),
    ({"speaker": 3}, "pins.speaker is not a pin"),
    ({"mic_sd": 4}, "pins.mic_sd and pins.i2c_sda both use GPIO 4"),
])
def test_bad_pins_are_refused_by_name(raw, words):
    with pytest.raises(pins.HardwareError) as info:
        pins.pin_map(raw, DEFAULTS, 29)
    assert words in str(info.value)
    assert str(info.value).startswith("config: ")


def test_hardware_defaults_board_defaults_and_overrides():
    hw = pins.hardware({}, {"battery_divider": 3.0})
    assert hw["mic_shift"] == 14 and hw["battery_divider"] == 3.0 and hw["gps"] is False
    hw = pins.hardware({"battery_divider": 2.5, "gps": True}, {"battery_divider": 3.0})
    assert hw["battery_divider"] == 2.5 and hw["gps"] is True


@pytest.mark.parametrize("raw,field", [({"mic_shift": 30}, "hardware.mic_shift"),
                                       ({"battery_divider": "2"}, "hardware.battery_divider"),
                                       ({"gps": 1}, "hardware.gps"),
                                       ({"gain": 3}, "hardware.gain")])
def test_bad_hardware_options_are_refused_by_name(raw, field):
    with pytest.raises(pins.HardwareError, match=field):
        pins.hardware(raw)
