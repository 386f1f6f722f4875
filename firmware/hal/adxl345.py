# Analog Devices ADXL345 accelerometer over I2C: acceleration in milli-g, full resolution
# at +-2 g (3.9 mg per LSB). It has no temperature sensor.
import struct

ADDRESSES = (0x53, 0x1D)            # SDO/ALT low / high
DEVID = 0xE5

_DEVID = 0x00
_BW_RATE = 0x2C
_POWER_CTL = 0x2D
_DATA_FORMAT = 0x31
_DATAX0 = 0x32
_LSB_PER_G = 256


def probe(i2c, address):
    """True when the chip at `address` answers DEVID 0xE5."""
    try:
        return i2c.readfrom_mem(address, _DEVID, 1)[0] == DEVID
    except OSError:
        return False


class ADXL345:
    name = "adxl345"

    def __init__(self, i2c, address=0x53):
        self.i2c = i2c
        self.address = address
        self._buf = bytearray(6)
        i2c.writeto_mem(address, _BW_RATE, b"\x0a")      # 100 Hz output rate
        i2c.writeto_mem(address, _DATA_FORMAT, b"\x08")  # full resolution, +-2 g
        i2c.writeto_mem(address, _POWER_CTL, b"\x08")    # measure

    def acceleration(self):
        """(x, y, z) in milli-g."""
        b = self._buf
        self.i2c.readfrom_mem_into(self.address, _DATAX0, b)
        x, y, z = struct.unpack("<hhh", b)    # little-endian registers
        return (x * 1000 // _LSB_PER_G, y * 1000 // _LSB_PER_G, z * 1000 // _LSB_PER_G)

    def temperature_c(self):
        return None
