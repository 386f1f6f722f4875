# The unix board's microphone when its config has no "feed" section: a quiet field (a faint
# hiss) in real time, so a virtual board flashed from a plain `linewatch provision --board
# unix` boots, passes its self-test and reports like a node where nothing happens. Loaded only
# then: a board with a feed (tests, benchmarks) and a real board never carry this code.
import asyncio


_LEVEL = 40          # +-40 of 32767: a faint hiss, ~60 dB under a full-scale sound


class QuietFeed:
    def __init__(self, wall_us):
        self._wall_us = wall_us
        self.start_us = wall_us()
        self.rate = 16000
        self.played = 0
        self._start_wall_us = 0
        self._seed = 12345

    def describe(self):
        return "a quiet field (a faint hiss)"

    def start(self, rate_hz):
        self.rate = rate_hz
        self._start_wall_us = self._wall_us()

    async def read(self, buf):
        """Fills the node's block (an int16 array) with faint white noise (digital silence
        would read as an infinitely quiet floor to the detectors); returns its samples."""
        x = self._seed
        for i in range(len(buf)):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            buf[i] = ((x >> 16) % (2 * _LEVEL + 1)) - _LEVEL
        self._seed = x
        n = len(buf)
        self.played += n
        due_us = self._start_wall_us + self.played * 1000000 // self.rate
        await asyncio.sleep(max(0, (due_us - self._wall_us()) // 1000) / 1000)
        return n

    def virtual_us(self):
        return self._wall_us()
