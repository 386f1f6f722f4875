# Raspberry Pi Pico W (MicroPython 1.24+). Pins and their wiring: firmware/README.md, "Wiring".
import machine

from .mcu import McuBoard

DEFAULT_PINS = {
    "mic_sck": 16, "mic_ws": 17, "mic_sd": 18,   # rp2 I2S: WS must be SCK + 1
    "i2c_sda": 4, "i2c_scl": 5,
    "battery_adc": 29,          # VSYS / 3 on the board itself
    "gps_rx": 9, "gps_tx": 8, "gps_pps": 10,
    "led": None,                # the Pico W LED hangs off the Wi-Fi chip: Pin("LED")
}
VSYS_PIN = 29
WL_CS_PIN = 25
ADC_UV_PER_COUNT = 3300000 / 65535
TEMPERATURE_ADC = 4


class Board(McuBoard):
    name = "rp2"
    default_pins = DEFAULT_PINS
    highest_gpio = 29
    pps_hard_irq = True
    pps_error_us = 20
    board_hardware = {"battery_divider": 3.0, "uart_bus": 1}

    def __init__(self, config):
        super().__init__(config)
        self._temperature = machine.ADC(TEMPERATURE_ADC)
        if self._led is None and "led" not in (getattr(config, "raw", {}) or {}).get("pins", {}):
            self._led = machine.Pin("LED", machine.Pin.OUT, value=0)
        gpio = self.pins["battery_adc"]
        # VSYS is read through _vsys_mv only: holding GPIO29 as an ADC would stall the Wi-Fi
        self._battery = None if gpio is None or gpio == VSYS_PIN else machine.ADC(gpio)

    def _check_pins(self):
        p = self.pins
        if p["mic_sck"] is not None and p["mic_ws"] is not None and p["mic_ws"] != p["mic_sck"] + 1:
            raise ValueError("config: on rp2 pins.mic_ws must be pins.mic_sck + 1 (PIO I2S)")

    def mic_start(self, rate_hz, block_samples):
        self._check_pins()
        super().mic_start(rate_hz, block_samples)

    def battery_mv(self):
        if self.pins["battery_adc"] == VSYS_PIN:
            return self._vsys_mv()
        if self._battery is None:
            return 0
        return int(self._battery.read_u16() * ADC_UV_PER_COUNT
                   * self.hardware["battery_divider"] / 1000)

    def _vsys_mv(self):
        # On the Pico W, GPIO29 is also the Wi-Fi chip's SPI clock (and VBUS sense moved to
        # WL_GPIO2). Take the pin for one reading with interrupts off, so the CYW43 driver
        # cannot clock the SPI meanwhile, then give it back.
        state = machine.disable_irq()
        try:
            machine.Pin(WL_CS_PIN, machine.Pin.OUT, value=1)
            # pull=None (no pull) is valid MicroPython; the stubs only list the int constants
            machine.Pin(VSYS_PIN, machine.Pin.IN, pull=None)  # type: ignore[arg-type]
            raw = machine.ADC(VSYS_PIN).read_u16()
            machine.Pin(VSYS_PIN, machine.Pin.ALT, pull=machine.Pin.PULL_DOWN, alt=7)
        finally:
            machine.enable_irq(state)
        return int(raw * ADC_UV_PER_COUNT * self.hardware["battery_divider"] / 1000)

    def chip_temperature_c(self):
        volts = self._temperature.read_u16() * 3.3 / 65535
        return 27 - (volts - 0.706) / 0.001721      # RP2040 datasheet, section 4.9.5
