# The unix board's audio from a TCP socket "host:port" (config feed "socket", test rigs) in
# place of a file: a module of its own, loaded only when configured, so a node playing a file
# does not carry its code and names in RAM (firmware/README.md "Memory").
import asyncio

from .feed import FileFeed


class SocketFeed(FileFeed):
    """Samples from a TCP socket "host:port" (test rigs): a short block is padded by the next
    read; the feed ends when the peer closes."""

    def check(self, feed):
        return feed["socket"]

    def _open(self):
        self._reader = None

    async def _fill(self, buf):
        if self._reader is None:
            host, port = self.path.rsplit(":", 1)
            self._reader, _ = await asyncio.open_connection(host, int(port))
        got = await self._reader.readinto(buf)
        return got - (got & 1)
