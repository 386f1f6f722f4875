# A raw int16 little-endian sample file played in place of the microphone: the unix board's
# feed, and on the esp32/rp2 boards a test feed from flash (hil-tests --feed-on-board). Loaded
# only when the config has a "feed" section: a node in the field never carries this code.
#
# config "feed" (firmware/README.md, "Config"):
#   audio     path of the raw int16 LE file
#   realtime  true: played at the sample rate; false: as fast as the node takes it, with a
#             virtual clock that follows the samples (start_us + samples / rate)
#   plays     how many times the file is played (default 1; 0: forever), then mic_read -> 0
#   start_us  UTC of sample 0 on the virtual clock (default: the board's clock at start)
import asyncio


def check(feed):
    """The feed section's file fields, checked; ValueError naming the field."""
    path = feed.get("audio")
    if not isinstance(path, str) or not path:
        raise ValueError("config: feed.audio must be the path of a raw int16 file, got %r"
                         % (path,))
    plays = feed.get("plays", 1)
    if isinstance(plays, bool) or not isinstance(plays, int) or plays < 0:
        raise ValueError("config: feed.plays must be 0 (forever) or more, got %r" % (plays,))
    start = feed.get("start_us")
    if start is not None and (isinstance(start, bool) or not isinstance(start, int)):
        raise ValueError("config: feed.start_us must be UTC microseconds, got %r" % (start,))
    return path


class FileFeed:
    """Fills the node's blocks from the file; `wall_us()` is the board's own clock (a plain
    count of microseconds: only its differences pace a realtime feed)."""

    def __init__(self, feed, wall_us):
        self.path = self.check(feed)
        self.realtime = bool(feed.get("realtime", True))
        self.plays = feed.get("plays", 1)
        self._wall_us = wall_us
        self.start_us = feed.get("start_us") or wall_us()
        self.rate = 16000
        self.played = 0                 # samples handed to the node
        self.ended_at = None            # (virtual us, wall us) when the feed ended
        self._plays_done = 1
        self._start_wall_us = 0

    def check(self, feed):
        return check(feed)

    def describe(self):
        return "%s (%s, plays %s)" % (self.path, "realtime" if self.realtime else "fast",
                                      self.plays or "forever")

    def start(self, rate_hz):
        self.rate = rate_hz
        self._open()
        self._start_wall_us = self._wall_us()

    def _open(self):
        self._file = open(self.path, "rb")      # OSError (ENOENT): the self-test names it

    async def _fill(self, buf):
        """Bytes put into buf; 0 at the end of the last play."""
        got = self._file.readinto(buf)
        if not got and (not self.plays or self._plays_done < self.plays):
            self._plays_done += 1
            self._file.seek(0)
            got = self._file.readinto(buf)
        return got

    async def read(self, buf):
        n = (await self._fill(buf)) // 2
        if not n:
            if self.ended_at is None:
                self.ended_at = (self.virtual_us(), self._wall_us())
            return 0
        self.played += n
        wait_ms = 0
        if self.realtime:
            due_us = self._start_wall_us + self.played * 1000000 // self.rate
            wait_ms = max(0, (due_us - self._wall_us()) // 1000)
        await asyncio.sleep(wait_ms / 1000)     # a fast feed still lets uplink and health run
        return n

    def virtual_us(self):
        """The fast feed's clock: the samples played, then real time once the feed ended."""
        if self.ended_at is not None:
            return self.ended_at[0] + self._wall_us() - self.ended_at[1]
        return self.start_us + self.played * 1000000 // self.rate
