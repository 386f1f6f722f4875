# Finds the accelerometer on an I2C bus by asking each known address who it is.
from . import adxl345, mpu6050

_DRIVERS = ((mpu6050, mpu6050.MPU6050), (adxl345, adxl345.ADXL345))


def find(i2c):
    """The first MPU6050- or ADXL345-class chip that answers, ready to read; None when absent."""
    try:
        present = i2c.scan()
    except OSError:
        return None
    for module, driver in _DRIVERS:
        for address in module.ADDRESSES:
            if address in present and module.probe(i2c, address):
                return driver(i2c, address)
    return None
