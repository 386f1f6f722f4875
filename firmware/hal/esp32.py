# ESP32 DevKit (MicroPython 1.24+). Pins and their wiring: firmware/README.md, "Wiring".
import esp32
import machine

from .mcu import McuBoard

DEFAULT_PINS = {
    "mic_sck": 32, "mic_ws": 25, "mic_sd": 33,
    "i2c_sda": 21, "i2c_scl": 22,
    "battery_adc": 35,          # ADC1: ADC2 pins read nothing while Wi-Fi is on
    "gps_rx": 16, "gps_tx": 17, "gps_pps": 27,
    "led": 2,
}


class Board(McuBoard):
    name = "esp32"
    default_pins = DEFAULT_PINS
    highest_gpio = 39
    # ESP32 GPIO interrupts reach Python through the scheduler whatever `hard` says, so
    # ticks_us is read up to a detector block late.
    pps_hard_irq = False
    pps_error_us = 2000
    board_hardware = {"uart_bus": 2}   # UART1's default pins are the flash on WROOM modules

    def __init__(self, config):
        super().__init__(config)
        self._battery = None
        gpio = self.pins["battery_adc"]
        if gpio is not None:
            self._battery = machine.ADC(machine.Pin(gpio), atten=machine.ADC.ATTN_11DB)

    def battery_mv(self):
        if self._battery is None:
            return 0
        # read_uv uses the chip's eFuse calibration; the divider scales it back to the cell
        return int(self._battery.read_uv() * self.hardware["battery_divider"] / 1000)

    def chip_temperature_c(self):
        read = getattr(esp32, "mcu_temperature", None)   # S2/S3/C3 ports have it
        if read is not None:
            return float(read())
        return (esp32.raw_temperature() - 32) / 1.8       # classic ESP32: Fahrenheit, rough
