"""32-bit I2S slots to int16: the plain loop, the viper loop on the unix port, and I2SMic."""
import array
import asyncio
import struct

import pytest

from lwnode.hal import i2s_mic

# 24-bit microphone values, left-justified in 32-bit slots as the INMP441 sends them
VALUES_24 = [0, 1, -1, 255, -256, 0x7FFFFF, -0x800000, 12345, -12345, 0x123456, -0x123456]


def slots(values_24, low_byte=0xA5):
    return b"".join(struct.pack("<i", (v << 8) | low_byte) for v in values_24)


def expected(values_24, shift):
    return [max(-32768, min(32767, v >> (shift - 8))) for v in values_24]


@pytest.mark.parametrize("shift", [8, 14, 16, 24])
def test_plain_conversion_shifts_and_clips(shift):
    out = array.array("h", bytes(2 * len(VALUES_24)))
    i2s_mic._slots_to_int16_py(slots(VALUES_24), len(VALUES_24), shift - 8, out)
    assert list(out) == expected(VALUES_24, shift)


def test_shift_outside_the_range_is_refused():
    with pytest.raises(ValueError, match="mic_shift"):
        i2s_mic.I2SMic(None, 64, shift=25)


class ChunkedReader:
    """An asyncio stream that hands out at most `chunk` bytes per readinto, like DMA."""

    def __init__(self, data, chunk):
        self.data = data
        self.pos = 0
        self.chunk = chunk

    async def readinto(self, buf):
        n = min(len(buf), self.chunk, len(self.data) - self.pos)
        buf[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        await asyncio.sleep(0)
        return n


async def test_mic_reads_whole_blocks_from_partial_reads():
    values = list(range(-3000, 3000, 37))[:128]
    mic = i2s_mic.I2SMic(ChunkedReader(slots(values * 2), chunk=36), block_samples=128, shift=8)
    buf = array.array("h", bytes(256))
    assert await mic.read(buf) == 128
    assert list(buf) == values
    assert await mic.read(buf) == 128
    assert await mic.read(buf) == 0          # stream ended


def test_viper_matches_plain_on_the_unix_port(micropython):
    raw = slots(VALUES_24)
    code = ("import array\n"
            "from lwnode.hal import i2s_mic\n"
            "assert i2s_mic.VIPER_AVAILABLE\n"
            "for shift in (8, 14, 16, 24):\n"
            "    out = array.array('h', bytes(%d))\n"
            "    i2s_mic.slots_to_int16(%r, %d, shift - 8, out)\n"
            "    print(list(out))\n" % (2 * len(VALUES_24), raw, len(VALUES_24)))
    result = micropython.run_code(code)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines == [str(expected(VALUES_24, s)) for s in (8, 14, 16, 24)]
