# The virtual board on the MicroPython unix port: the hil tests and benchmarks run the real
# firmware on it. Audio comes from a raw int16 little-endian file (or a TCP socket), the
# accelerometer from a small text file of "x y z" lines in milli-g, time from the host clock.
#
# config "feed" (see README):
#   audio      path of the raw int16 file          socket   "host:port" instead of a file
#   realtime   true: play at the sample rate; false: as fast as the node takes it, with a
#              virtual clock that follows the samples (start_us + samples / rate)
#   plays      how many times the file is played (default 1; 0: forever), then the feed
#              ends (mic_read -> 0)
#   start_us   UTC of sample 0 on the virtual clock (default: the host clock at start)
#   accel      path of the accelerometer file (one line per audio block, last line repeats)
#   exit_at_end  the node stops when the feed ends (benchmarks)
import asyncio
import time

from lwproto.const import CLOCK_NTP, SENSOR_ACCEL, SENSOR_MIC

from . import BoardBase


class Board(BoardBase):
    name = "unix"
    sensors = SENSOR_MIC

    def __init__(self, config):
        BoardBase.__init__(self, config)
        feed = config.feed if config is not None else {}
        self.feed = feed
        self.realtime = bool(feed.get("realtime", True))
        self.plays = int(feed.get("plays", 1))
        self._played_files = 1
        self._accel = _load_accel(feed["accel"]) if feed.get("accel") else None
        if self._accel:
            self.sensors = SENSOR_MIC | SENSOR_ACCEL
        self._accel_at = 0
        self._file = None
        self._reader = None
        self._rate = 16000
        self._played = 0                 # samples handed to the node
        self._start_us = feed.get("start_us") or time.time_ns() // 1000
        self._start_wall_us = time.time_ns() // 1000
        self._ended_at = None            # (virtual us, wall us) when a fast feed ended

    # ---- audio ------------------------------------------------------------------------

    def mic_start(self, rate_hz, block_samples):
        self._rate = rate_hz
        if self.feed.get("audio"):
            self._file = open(self.feed["audio"], "rb")
        elif not self.feed.get("socket"):
            raise OSError("unix board: config feed needs 'audio' (a raw int16 file) or 'socket'")
        self._start_wall_us = time.time_ns() // 1000

    async def mic_read(self, buf):
        if self._file is None and self._reader is None and self.feed.get("socket"):
            host, port = self.feed["socket"].rsplit(":", 1)
            self._reader, _ = await asyncio.open_connection(host, int(port))
        n = (self._file.readinto(buf) if self._file else await self._read_socket(buf)) // 2
        if not n and self._file and (not self.plays or self._played_files < self.plays):
            self._played_files += 1
            self._file.seek(0)
            n = self._file.readinto(buf) // 2
        if not n:
            if self._ended_at is None:
                self._ended_at = (self._virtual_us(), time.time_ns() // 1000)
            return 0
        self._played += n
        if self.realtime:
            due_us = self._start_wall_us + self._played * 1000000 // self._rate
            wait_ms = (due_us - time.time_ns() // 1000) // 1000
            await asyncio.sleep_ms(max(0, wait_ms))
        else:
            await asyncio.sleep_ms(0)    # let uplink and health run between blocks
        return n

    async def _read_socket(self, buf):
        # Socket feeds are for test rigs: a short block is padded by the next read.
        got = await self._reader.readinto(buf)
        return got - (got & 1)

    def accel_read(self):
        if not self._accel:
            return None
        sample = self._accel[min(self._accel_at, len(self._accel) - 1)]
        self._accel_at += 1
        return sample

    # ---- time -------------------------------------------------------------------------

    def _virtual_us(self):
        return self._start_us + self._played * 1000000 // self._rate

    def time_us(self):
        if self.realtime:
            return time.time_ns() // 1000
        if self._ended_at is not None:   # after the feed, the virtual clock runs on in real time
            return self._ended_at[0] + time.time_ns() // 1000 - self._ended_at[1]
        return self._virtual_us()

    def ticks_us(self):
        return self.time_us()            # the unix port's ticks do not wrap in any test's time

    def clock(self):
        return (CLOCK_NTP, 2000)

    # ---- system -----------------------------------------------------------------------

    def storage_dir(self):
        path = self.config.storage
        try:
            import os
            os.mkdir(path)
        except OSError:
            pass   # exists
        return path

    def reset(self):
        import sys
        print("unix board: reset requested")
        sys.exit(3)


def _load_accel(path):
    samples = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                samples.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return samples
