# The unix board's microphone when its config has no "feed" section: a quiet field (digital
# silence) in real time, so a virtual board flashed from a plain `linewatch provision --board
# unix` boots, passes its self-test and reports like a node where nothing happens. Loaded only
# then: a board with a feed (tests, benchmarks) and a real board never carry this code.
import asyncio


class QuietFeed:
    def __init__(self, wall_us):
        self._wall_us = wall_us
        self.start_us = wall_us()
        self.rate = 16000
        self.played = 0
        self._start_wall_us = 0
        self._zeros = None

    def describe(self):
        return "none configured: a quiet field (digital silence)"

    def start(self, rate_hz):
        self.rate = rate_hz
        self._start_wall_us = self._wall_us()

    async def read(self, buf):
        if self._zeros is None or len(self._zeros) != len(buf):
            self._zeros = bytearray(len(buf))
        buf[:] = self._zeros
        n = len(buf) // 2
        self.played += n
        due_us = self._start_wall_us + self.played * 1000000 // self.rate
        await asyncio.sleep(max(0, (due_us - self._wall_us()) // 1000) / 1000)
        return n

    def virtual_us(self):
        return self._wall_us()
