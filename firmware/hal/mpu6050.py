# InvenSense MPU6050-class accelerometer (also MPU6500/9250, same registers for what we use)
# over I2C: acceleration in milli-g at +-2 g, and the die temperature.
import struct

ADDRESSES = (0x68, 0x69)            # AD0 low / high
WHO_AM_I_VALUES = (0x68, 0x70, 0x71, 0x73)   # MPU6050, MPU6500, MPU9250, MPU9255

_WHO_AM_I = 0x75
_PWR_MGMT_1 = 0x6B
_ACCEL_CONFIG = 0x1C
_ACCEL_XOUT_H = 0x3B
_TEMP_OUT_H = 0x41
_LSB_PER_G = 16384           # at +-2 g full scale


def probe(i2c, address):
    """True when the chip at `address` answers WHO_AM_I like an MPU6050-class part."""
    try:
        return i2c.readfrom_mem(address, _WHO_AM_I, 1)[0] in WHO_AM_I_VALUES
    except OSError:
        return False


class MPU6050:
    name = "mpu6050"

    def __init__(self, i2c, address=0x68):
        self.i2c = i2c
        self.address = address
        self._buf = bytearray(6)
        i2c.writeto_mem(address, _PWR_MGMT_1, b"\x00")    # wake from sleep, internal clock
        i2c.writeto_mem(address, _ACCEL_CONFIG, b"\x00")  # +-2 g: tamper is small motion

    def acceleration(self):
        """(x, y, z) in milli-g."""
        b = self._buf
        self.i2c.readfrom_mem_into(self.address, _ACCEL_XOUT_H, b)
        x, y, z = struct.unpack(">hhh", b)    # big-endian registers
        return (x * 1000 // _LSB_PER_G, y * 1000 // _LSB_PER_G, z * 1000 // _LSB_PER_G)

    def temperature_c(self):
        """Die temperature (datasheet: raw / 340 + 36.53); a few degrees above the air."""
        raw = self.i2c.readfrom_mem(self.address, _TEMP_OUT_H, 2)
        return struct.unpack(">h", raw)[0] / 340.0 + 36.53
