# The virtual board of the emulator (CPython). The emulator owns the world: it pushes the
# audio this node hears, sets its accelerometer and battery, gives it a clock (its true time
# with this node's offset and drift applied) and a network (`open_connection`, which may
# drop or delay). The firmware above hal/ runs unchanged on it.
#
#   board = Board(config, now_us=world_clock_for_node, open_connection=radio.open)
#   board.push_audio(block, first_index)     # int16 samples, absolute index of block[0]
#   board.end_audio()                        # mic_read returns 0: the node's run() may end
#
# Without `now_us` the board keeps a sample clock: start_us + samples delivered / rate.
import asyncio
from array import array

from lwproto.const import CAP_DEEP_SLEEP, CLOCK_NTP, SENSOR_ACCEL, SENSOR_BATTERY, SENSOR_MIC

from . import BoardBase


class Board(BoardBase):
    name = "sim"
    sensors = SENSOR_MIC | SENSOR_ACCEL | SENSOR_BATTERY
    capabilities = CAP_DEEP_SLEEP

    def __init__(self, config, now_us=None, open_connection=None, start_us=0,
                 clock_quality=(CLOCK_NTP, 1000), storage=None):
        BoardBase.__init__(self, config)
        self._now_us = now_us
        self._open = open_connection
        self._start_us = start_us
        self.clock_quality = clock_quality
        self._storage = storage
        self._audio = asyncio.Queue()
        self._rate = 16000
        self._delivered = 0
        self._pending = None           # (samples, offset) of a block partly handed over
        self.accel = (0, 0, 1000)      # milli-g; the emulator moves it for tamper scenarios
        self.battery = 3900
        self.temperature = 20.0
        self.link_up = True
        self.signal_dbm = -60
        self.resets = 0
        self.sleeps = []               # deep sleeps asked for, ms (the emulator's board sleeps)
        self.radio_saving = 0
        self.lines = []                # console, for tests and the emulator's log

    # ---- fed by the emulator ----------------------------------------------------------

    def push_audio(self, block, first_index=None):
        """Queue samples for the node. `first_index` is informational: the node numbers
        samples by count, so the emulator must push without gaps."""
        self._audio.put_nowait(block)

    def end_audio(self):
        self._audio.put_nowait(None)

    # ---- board interface --------------------------------------------------------------

    def mic_start(self, rate_hz, block_samples):
        self._rate = rate_hz

    async def mic_read(self, buf):
        await asyncio.sleep(0)    # like a real microphone, let the other tasks run per block
        if self._pending is None:
            block = await self._audio.get()
            if block is None:
                self._audio.put_nowait(None)   # stays ended
                return 0
            self._pending = (block, 0)
        block, offset = self._pending
        n = min(len(buf), len(block) - offset)
        buf[:n] = _int16(block[offset:offset + n])
        offset += n
        self._pending = None if offset >= len(block) else (block, offset)
        self._delivered += n
        return n

    def accel_read(self):
        return self.accel

    def battery_mv(self):
        return self.battery

    def temperature_c(self):
        return self.temperature

    def time_us(self):
        if self._now_us is not None:
            return int(self._now_us())
        return self._start_us + self._delivered * 1000000 // self._rate

    def ticks_us(self):
        return self.time_us()

    def clock(self):
        return self.clock_quality

    async def network_up(self):
        return self.link_up

    def rssi(self):
        return self.signal_dbm

    async def open_connection(self, host, port):
        if self._open is not None:
            return await self._open(host, port)
        return await asyncio.open_connection(host, port)

    def storage_dir(self):
        return self._storage or self.config.storage

    def reset(self):
        self.resets += 1
        raise SystemExit("sim board 0x%04x: reset requested" % self.config.node)

    def deep_sleep(self, ms):
        self.sleeps.append(ms)

    def radio_power(self, on):
        self.radio_saving = on

    def log(self, message):
        self.lines.append(message)
        print(message)


def _int16(chunk):
    """array('h') from an array('h'), a list of ints or a numpy int16 array (the emulator's)."""
    if isinstance(chunk, array):
        return chunk
    if isinstance(chunk, list):
        return array("h", chunk)
    return array("h", bytes(memoryview(chunk)))
