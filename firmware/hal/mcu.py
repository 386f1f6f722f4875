# What the ESP32 and the Pico W boards share: pins from the config, the microphone, the
# accelerometer, GPS with PPS, Wi-Fi, and the clock (GPS PPS, else SNTP, else the bare RTC).
# esp32.py and rp2.py add only what differs: default pins, battery, temperature, IRQ kind.
# A config "feed" section (hil tests on hardware) replaces the microphone with a sample file
# in flash (hal/feed.py, imported only then) and says so on the console at boot.
import os
import time

import machine
import micropython
import network
from micropython import const

from lwproto.const import (CLOCK_GPS_PPS, CLOCK_NONE, CLOCK_NTP, CAP_DEEP_SLEEP, CAP_PPS,
                           CAP_VIPER, CLOCK_ERROR_MAX_US, SENSOR_ACCEL, SENSOR_BATTERY,
                           SENSOR_GPS, SENSOR_MIC)

from . import BoardBase, accel, i2s_mic, pins, sntp
from .gps import Gps
from .wifi import WifiLink

EPOCH_2000_US = 946684800 * 1000000   # 1970-01-01 to 2000-01-01
NTP_RESYNC_MS = 3600000
NTP_DRIFT_PPM = 50
FAST_FEED_ERROR_US = 2000     # what hal/unix states for the same virtual clock
# The sampling task reads a block when the loop lets it, behind the I2S buffer; the node's
# timeline follows the earliest block stamps (clock.SampleTimeline), within a millisecond,
# and every frame's clock error says so.
_STAMP_US = const(1000)


def rtc_epoch_offset_us():
    """Microseconds to add to time.time_ns()//1000 for 1970 UTC (ESP32 counts from 2000)."""
    return EPOCH_2000_US if time.gmtime(0)[0] == 2000 else 0


class McuBoard(BoardBase):
    default_pins = {}  # type: dict
    highest_gpio = 29
    pps_hard_irq = False     # whether Pin.irq(hard=True) runs in the real interrupt here
    pps_error_us = 100       # how late the PPS handler reads ticks_us, worst case
    board_hardware = {}  # type: dict  # board-specific defaults of the "hardware" section
    sensors = SENSOR_MIC | SENSOR_BATTERY
    capabilities = CAP_VIPER | CAP_DEEP_SLEEP

    def __init__(self, config):
        super().__init__(config)
        raw = getattr(config, "raw", {}) or {}
        self.pins = pins.pin_map(raw.get("pins", {}), self.default_pins, self.highest_gpio)
        self.hardware = pins.hardware(raw.get("hardware", {}), self.board_hardware)
        self._epoch_us = rtc_epoch_offset_us()
        self._ntp = None                 # (offset_us, error_us, ticks_ms at sync)
        self._mic = None
        self._feed = self._sample_feed(getattr(config, "feed", None))
        self._led = self._output(self.pins["led"])
        self.accelerometer = self._find_accelerometer()
        self.gps = None                  # the PPS handler may run before _start_gps returns
        self.gps = self._start_gps()
        wifi = getattr(config, "wifi", None) or {}
        self.wifi = WifiLink(network.WLAN(network.STA_IF), wifi.get("ssid"),
                             wifi.get("password"), log=self.log)

    # ---- sensors
    def _output(self, gpio):
        return machine.Pin(gpio, machine.Pin.OUT, value=0) if gpio is not None else None

    def _find_accelerometer(self):
        sda, scl = self.pins["i2c_sda"], self.pins["i2c_scl"]
        if sda is None or scl is None:
            return None
        bus = machine.I2C(self.hardware["i2c_bus"], sda=machine.Pin(sda),
                          scl=machine.Pin(scl), freq=400000)
        found = accel.find(bus)
        if found is None:
            self.log("hal: no MPU6050/ADXL345 answers on I2C (SDA %d, SCL %d)" % (sda, scl))
        else:
            self.sensors |= SENSOR_ACCEL
        return found

    def _sample_feed(self, feed):
        if not feed:
            return None
        from .feed import FileFeed
        found = FileFeed(feed, self._rtc_us)
        self.log("hal: MICROPHONE OFF: audio is the sample feed %s from flash (config feed:"
                 " for tests only, remove it before the field)" % found.describe())
        return found

    def mic_start(self, rate_hz, block_samples):
        if self._feed is not None:
            self._feed.start(rate_hz)
            return
        p = self.pins
        if p["mic_sck"] is None or p["mic_ws"] is None or p["mic_sd"] is None:
            raise ValueError("config: pins.mic_sck, mic_ws and mic_sd are needed for the "
                             "microphone")
        self._mic = i2s_mic.open_mic(self.hardware["i2s_bus"], p["mic_sck"], p["mic_ws"],
                                     p["mic_sd"], rate_hz, block_samples,
                                     self.hardware["mic_shift"])

    async def mic_read(self, buf):
        if self._feed is not None:
            return await self._feed.read(buf)
        if self._mic is None:
            raise RuntimeError("mic_read before mic_start")
        return await self._mic.read(buf)

    def accel_read(self):
        if self.accelerometer is None:
            return None
        try:
            return self.accelerometer.acceleration()
        except OSError:
            return None      # a loose wire is itself a tamper sign: the detector sees None

    def temperature_c(self):
        if self.accelerometer is not None:
            try:
                t = self.accelerometer.temperature_c()
                if t is not None:
                    return t
            except OSError:
                pass
        return self.chip_temperature_c()

    def chip_temperature_c(self):
        return 0.0

    # ---- GPS
    def _start_gps(self):
        if not self.hardware["gps"]:
            return None
        p = self.pins
        if p["gps_rx"] is None:
            raise ValueError("config: hardware.gps is true but pins.gps_rx is null")
        bus, baud, rx = self.hardware["uart_bus"], self.hardware["gps_baud"], p["gps_rx"]
        if p["gps_tx"] is None:   # receive-only wiring: the receiver keeps its factory setup
            self._uart = machine.UART(bus, baudrate=baud, rx=machine.Pin(rx), rxbuf=1024)
        else:
            self._uart = machine.UART(bus, baudrate=baud, rx=machine.Pin(rx),
                                      tx=machine.Pin(p["gps_tx"]), rxbuf=1024)
        gps = Gps(self.hardware["pps_error_us"] or self.pps_error_us)
        self.sensors |= SENSOR_GPS
        if p["gps_pps"] is not None:
            self._pps_ticks = time.ticks_us()
            self._pps_pending = self._pps_soft     # bound once: the hard IRQ must not allocate
            machine.Pin(p["gps_pps"], machine.Pin.IN).irq(
                trigger=machine.Pin.IRQ_RISING, handler=self._pps_edge, hard=self.pps_hard_irq)
            self.capabilities |= CAP_PPS
        return gps

    def _pps_edge(self, pin):
        self._pps_ticks = time.ticks_us()
        if self.pps_hard_irq:
            micropython.schedule(self._pps_pending, 0)
        else:
            self._pps_soft(0)

    def _pps_soft(self, _):
        self._poll_gps()          # the burst for the previous pulse must be parsed first
        if self.gps is not None:
            self.gps.pulse(self._pps_ticks)

    def _poll_gps(self):
        if self.gps is None:
            return
        n = self._uart.any()
        if n:
            data = self._uart.read(n)
            if data:
                self.gps.feed(data, time.ticks_us())

    def position(self):
        if self.gps is None:
            return None
        self._poll_gps()
        return self.gps.position(time.ticks_us())

    # ---- time
    def ticks_us(self):
        return time.ticks_us()

    def _rtc_us(self):
        return time.time_ns() // 1000 + self._epoch_us

    def time_us(self):
        return self._timing()[0]

    def clock(self):
        return self._timing()[1:]

    def _timing(self):
        """(utc_us, clock_source, error_us), best source first."""
        if self._feed is not None and not self._feed.realtime:
            # the fast feed's clock is its samples: exact by construction, as on hal/unix
            return (self._feed.virtual_us(), CLOCK_NTP, FAST_FEED_ERROR_US)
        if self.gps is not None:
            fix = self.gps.time_us(time.ticks_us())
            if fix is not None:
                return (fix[0], CLOCK_GPS_PPS, min(fix[1] + _STAMP_US, CLOCK_ERROR_MAX_US))
        if self._ntp is not None:
            offset, error, synced = self._ntp
            age_s = time.ticks_diff(time.ticks_ms(), synced) // 1000
            error += age_s * NTP_DRIFT_PPM
            return (self._rtc_us() + offset, CLOCK_NTP, min(error + _STAMP_US, CLOCK_ERROR_MAX_US))
        return (self._rtc_us(), CLOCK_NONE, CLOCK_ERROR_MAX_US)

    def _sync_ntp(self):
        if self._ntp is not None and \
                time.ticks_diff(time.ticks_ms(), self._ntp[2]) < NTP_RESYNC_MS:
            return
        host = (getattr(self.config, "raw", {}) or {}).get("ntp_host", "pool.ntp.org")
        try:
            offset, error = sntp.query(host, self._rtc_us)
        except (OSError, ValueError) as exc:
            self.log("hal: ntp %s failed: %s" % (host, exc))
            return
        self._ntp = (offset, error, time.ticks_ms())
        self.log("hal: ntp offset %d us, error %d us" % (offset, error))

    # ---- network
    async def network_up(self):
        if not await self.wifi.up():
            return False
        self._sync_ntp()
        return True

    def rssi(self):
        return self.wifi.rssi()

    def radio_power(self, on):
        self.wifi.power_save(on)

    # ---- system
    def storage_dir(self):
        try:
            os.mkdir("/data")
        except OSError:
            pass        # already there
        return "/data"

    def led(self, on):
        if self._led is not None:
            self._led.value(1 if on else 0)

    def reset(self):
        machine.reset()

    def deep_sleep(self, ms):
        # RAM is lost; the RTC keeps counting, and the board boots main.py again after ms
        machine.deepsleep(ms)
