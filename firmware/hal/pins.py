# The board's pin map and hardware options: defaults per board, overridden by the config's
# "pins" and "hardware" sections (see firmware/README.md, "Wiring"). A bad value stops the
# boot with one line naming the field, like the rest of the config.
PIN_NAMES = ("mic_sck", "mic_ws", "mic_sd", "i2c_sda", "i2c_scl", "battery_adc",
             "gps_rx", "gps_tx", "gps_pps", "led")

# name: (default, lowest, highest)
HARDWARE = {
    "i2s_bus": (0, 0, 1),
    "i2c_bus": (0, 0, 1),
    "uart_bus": (1, 0, 2),
    "mic_shift": (14, 8, 24),       # 16 = top 16 bits; 14 = +12 dB for the quiet INMP441
    "gps_baud": (9600, 1200, 115200),
    "pps_error_us": (0, 0, 65535),  # 0: the board's own figure
}
HARDWARE_NUMBERS = {
    "battery_divider": (2.0, 1.0, 20.0),   # (R_top + R_bottom) / R_bottom
}


class HardwareError(ValueError):
    pass


def pin_map(raw_pins, defaults, highest_gpio):
    """{name: gpio or None} from the defaults and the config's "pins" (null disables)."""
    if not isinstance(raw_pins, dict):
        raise HardwareError("config: pins must be an object, got %r" % (raw_pins,))
    pins = dict(defaults)
    for name, value in raw_pins.items():
        if name not in PIN_NAMES:
            raise HardwareError("config: pins.%s is not a pin this board knows (known: %s)"
                                % (name, ", ".join(PIN_NAMES)))
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= highest_gpio):
            raise HardwareError("config: pins.%s must be a GPIO number 0..%d or null, got %r"
                                % (name, highest_gpio, value))
        pins[name] = value
    _no_shared_pins(pins)
    return pins


def _no_shared_pins(pins):
    seen = {}  # type: dict
    for name in PIN_NAMES:
        gpio = pins.get(name)
        if gpio is None:
            continue
        if gpio in seen:
            raise HardwareError("config: pins.%s and pins.%s both use GPIO %d"
                                % (seen[gpio], name, gpio))
        seen[gpio] = name


def hardware(raw, board_defaults=None):
    """Options of the config's "hardware" section with defaults filled in."""
    if not isinstance(raw, dict):
        raise HardwareError("config: hardware must be an object, got %r" % (raw,))
    out = {}  # type: dict
    for name, (default, lo, hi) in HARDWARE.items():
        out[name] = _value(raw, name, default, lo, hi, True)
    for name, spec in HARDWARE_NUMBERS.items():
        out[name] = _value(raw, name, spec[0], spec[1], spec[2], False)
    gps = raw.get("gps", False)
    if gps is not True and gps is not False:
        raise HardwareError("config: hardware.gps must be true or false, got %r" % (gps,))
    out["gps"] = gps
    for name in raw:
        if name not in out:
            raise HardwareError("config: hardware.%s is not a known option" % name)
    if board_defaults:
        for name, value in board_defaults.items():
            if name not in raw:
                out[name] = value
    return out


def _value(raw, name, default, lo, hi, integer):
    value = raw.get(name, default)
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or not lo <= value <= hi:
        raise HardwareError("config: hardware.%s must be %s %s..%s, got %r"
                            % (name, "an integer" if integer else "a number", lo, hi, value))
    return value
