# INMP441-class I2S MEMS microphone, shared by the esp32 and rp2 boards.
#
# The microphone sends 24-bit samples left-justified in 32-bit slots (L/R pin low: left
# slot). machine.I2S hands them over as little-endian int32; the detectors want int16, so the
# top 24 bits are shifted down by `shift - 8` and clipped. shift=16 keeps the top 16 bits;
# each step below 16 is +6 dB of gain (the INMP441 is quiet: -26 dBFS at 94 dB SPL).
# Reading goes through asyncio's StreamReader over the I2S object, so sampling yields to the
# uplink while DMA fills the next buffer.
import asyncio
import sys

# viper is read by MicroPython's compiler, not an attribute of the micropython module
VIPER_AVAILABLE = sys.implementation.name == "micropython"
if VIPER_AVAILABLE:
    import micropython

SLOT_BYTES = 4


def _slots_to_int16_py(raw, count, drop, out):
    j = 0
    for i in range(count):
        s = (raw[j + 3] << 16) | (raw[j + 2] << 8) | raw[j + 1]
        s = ((s ^ 0x800000) - 0x800000) >> drop
        if s > 32767:
            s = 32767
        elif s < -32768:
            s = -32768
        out[i] = s
        j += 4


if VIPER_AVAILABLE:
    @micropython.viper
    def _slots_to_int16_v(raw, count: int, drop: int, out):
        src = ptr8(raw)
        dst = ptr16(out)
        j = 0
        for i in range(count):
            s = (int(src[j + 3]) << 16) | (int(src[j + 2]) << 8) | int(src[j + 1])
            s = ((s ^ 0x800000) - 0x800000) >> drop
            if s > 32767:
                s = 32767
            elif s < -32768:
                s = -32768
            dst[i] = s
            j += 4

    slots_to_int16 = _slots_to_int16_v
else:
    slots_to_int16 = _slots_to_int16_py


def check_shift(shift):
    if not isinstance(shift, int) or not 8 <= shift <= 24:
        raise ValueError("hardware.mic_shift must be 8..24 (16 = no gain), got %r" % (shift,))
    return shift


class I2SMic:
    """int16 blocks from a stream of 32-bit mono slots (`reader.readinto` is awaited)."""

    def __init__(self, reader, block_samples, shift=16):
        self._reader = reader
        self._raw = bytearray(block_samples * SLOT_BYTES)
        self._view = memoryview(self._raw)
        self._drop = check_shift(shift) - 8
        self.block_samples = block_samples

    async def read(self, buf):
        """Fill buf (array('h')) with up to one block; returns the number of samples."""
        want = min(len(buf), self.block_samples) * SLOT_BYTES
        got = 0
        while got < want:
            n = await self._reader.readinto(self._view[got:want])
            if not n:
                break
            got += n
        count = got // SLOT_BYTES
        slots_to_int16(self._raw, count, self._drop, buf)
        return count


def open_mic(bus, sck, ws, sd, rate_hz, block_samples, shift=16, blocks_buffered=6):
    """Start machine.I2S in receive mode on the given pin numbers; an I2SMic reading it."""
    from machine import I2S, Pin
    i2s = I2S(bus, sck=Pin(sck), ws=Pin(ws), sd=Pin(sd), mode=I2S.RX, bits=32,
              format=I2S.MONO, rate=rate_hz,
              ibuf=block_samples * SLOT_BYTES * blocks_buffered)
    return I2SMic(asyncio.StreamReader(i2s), block_samples, shift)
