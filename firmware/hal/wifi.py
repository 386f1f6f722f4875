# Wi-Fi station link with exponential backoff, shared by the esp32 and rp2 boards. Takes the
# WLAN object in (the board makes it from `network`), so tests drive it with a fake.
import asyncio
import random

FIRST_DELAY_MS = 1000
MAX_DELAY_MS = 120000
ATTEMPT_MS = 15000       # DHCP on a weak link can take ~10 s
POLL_MS = 200


class WifiLink:
    def __init__(self, wlan, ssid, password, log=print, attempts_per_call=4,
                 attempt_ms=ATTEMPT_MS, first_delay_ms=FIRST_DELAY_MS,
                 max_delay_ms=MAX_DELAY_MS):
        self.wlan = wlan
        self.ssid = ssid
        self.password = password
        self.log = log
        self.attempts_per_call = attempts_per_call
        self.attempt_ms = attempt_ms
        self.first_delay_ms = first_delay_ms
        self.max_delay_ms = max_delay_ms
        self.delay_ms = first_delay_ms
        self.failures = 0
        self._was_up = False

    async def up(self):
        """True once associated with an address; False after a few failed attempts (the
        backoff delay keeps growing across calls until a connect succeeds)."""
        if self.wlan.isconnected():
            return True
        if self._was_up:
            self.log("wifi: link to %s lost" % self.ssid)
            self._was_up = False
        for _ in range(self.attempts_per_call):
            if await self._attempt():
                self.log("wifi: connected to %s after %d failures" % (self.ssid, self.failures))
                self.delay_ms = self.first_delay_ms
                self.failures = 0
                self._was_up = True
                return True
            self.failures += 1
            wait = self.delay_ms // 2 + random.getrandbits(16) % (self.delay_ms // 2 + 1)
            self.log("wifi: %s not reached (status %s), retry in %d ms"
                     % (self.ssid, self._status(), wait))
            await asyncio.sleep(wait / 1000)
            self.delay_ms = min(self.delay_ms * 2, self.max_delay_ms)
        return False

    async def _attempt(self):
        self.wlan.active(True)
        try:
            self.wlan.disconnect()   # a half-open association blocks a new connect on rp2
        except OSError:
            pass
        try:
            self.wlan.connect(self.ssid, self.password)
        except OSError as exc:
            self.log("wifi: connect failed: %s" % exc)
            return False
        for _ in range(max(1, self.attempt_ms // POLL_MS)):
            if self.wlan.isconnected():
                return True
            await asyncio.sleep(POLL_MS / 1000)
        return self.wlan.isconnected()

    def _status(self):
        try:
            return self.wlan.status()
        except (OSError, ValueError, TypeError):
            return "?"

    def power_save(self, saving):
        """Radio power management: PM_POWERSAVE (longest listen interval between beacons) on
        a low battery, else PM_PERFORMANCE (the ports' default: power save, but answering
        quickly). Both keep the association; docs/field-guide.md has the currents."""
        wlan = self.wlan
        try:
            wlan.config(pm=wlan.PM_POWERSAVE if saving else wlan.PM_PERFORMANCE)
        except (AttributeError, OSError, ValueError) as exc:   # a port without pm=
            self.log("wifi: power save not set: %r" % (exc,))

    def rssi(self):
        """dBm of the access point, 0 while not connected."""
        if not self.wlan.isconnected():
            return 0
        try:
            return self.wlan.status("rssi")
        except (OSError, ValueError, TypeError):
            return 0
