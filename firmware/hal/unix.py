# The virtual board on the MicroPython unix port: the hil tests and benchmarks run the real
# firmware on it. Audio comes from a raw int16 little-endian file (hal/feed.py, shared with the
# esp32/rp2 boards' test feed) or a TCP socket, the accelerometer from a small text file of
# "x y z" lines in milli-g, time from the host clock.
#
# config "feed" (see README): the file fields of hal/feed.py (audio, realtime, plays,
# start_us), and here also (without a feed section the microphone hears silence: hal/quiet.py)
#   socket     "host:port" instead of a file
#   accel      path of the accelerometer file (one line per audio block, last line repeats)
#   exit_at_end  the node stops when the feed ends (benchmarks)
#   battery_mv   what the battery reads (tests of the node's power decisions; default: none)
#
# Deep sleep is a stand-in: the process ends with status 4 after printing the sleep's length,
# and whoever runs the board (hil-tests/dut.py) starts it again that much later, as a board's
# RTC timer would; the flash folder (queue, boot counter, sleep record) is kept.
import time

from lwproto.const import CAP_DEEP_SLEEP, CLOCK_NTP, SENSOR_ACCEL, SENSOR_BATTERY, SENSOR_MIC

from . import BoardBase
from .feed import FileFeed


def _wall_us():
    return time.time_ns() // 1000


class Board(BoardBase):
    name = "unix"
    sensors = SENSOR_MIC
    capabilities = CAP_DEEP_SLEEP

    def __init__(self, config):
        BoardBase.__init__(self, config)
        feed = config.feed if config is not None else {}
        self.feed = feed
        self.realtime = bool(feed.get("realtime", True))
        self._accel = _load_accel(feed["accel"]) if feed.get("accel") else None
        if self._accel:
            self.sensors = SENSOR_MIC | SENSOR_ACCEL
        if feed.get("battery_mv"):
            self.sensors |= SENSOR_BATTERY
        self._accel_at = 0
        self._start_us = feed.get("start_us") or _wall_us()
        self._feed = None                # a FileFeed (or SocketFeed) from mic_start

    # ---- audio ------------------------------------------------------------------------

    def mic_start(self, rate_hz, block_samples):
        if self.feed.get("audio"):
            feed = FileFeed(self.feed, _wall_us)
        elif self.feed.get("socket"):
            from .sockfeed import SocketFeed   # test rigs only: loaded when configured
            feed = SocketFeed(self.feed, _wall_us)
        elif self.feed:
            raise OSError("unix board: config feed needs 'audio' (a raw int16 file) or 'socket'")
        else:
            from .quiet import QuietFeed        # no feed at all: a quiet field
            feed = QuietFeed(_wall_us)
            self.log("hal: no feed in the config: the microphone hears %s" % feed.describe())
        feed.start_us = self._start_us
        feed.start(rate_hz)
        self._feed = feed

    async def mic_read(self, buf):
        if self._feed is None:
            raise RuntimeError("mic_read before mic_start")
        return await self._feed.read(buf)

    def battery_mv(self):
        return self.feed.get("battery_mv") or 0

    def accel_read(self):
        if not self._accel:
            return None
        sample = self._accel[min(self._accel_at, len(self._accel) - 1)]
        self._accel_at += 1
        return sample

    # ---- time -------------------------------------------------------------------------

    def time_us(self):
        if self.realtime:
            return _wall_us()
        return self._feed.virtual_us() if self._feed is not None else self._start_us

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

    def degraded(self):
        import sys
        print("unix board: the node cannot publish: exit 4")
        sys.exit(4)             # nobody watches a unix port's LED: its exit status says it

    def deep_sleep(self, ms):
        import sys
        print("unix board: deep sleep %d ms" % ms)
        sys.exit(4)


def _load_accel(path):
    samples = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                samples.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return samples
