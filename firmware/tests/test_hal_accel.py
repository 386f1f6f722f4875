"""Accelerometer drivers and auto-detection against a fake I2C bus holding registers."""
import struct

import pytest

from lwnode.hal import accel, adxl345, mpu6050


class FakeI2C:
    def __init__(self, chips):
        self.chips = chips          # {address: {register: byte}}
        self.writes = []

    def scan(self):
        return sorted(self.chips)

    def readfrom_mem(self, address, register, n):
        regs = self.chips[address]
        return bytes(regs.get(register + i, 0) for i in range(n))

    def readfrom_mem_into(self, address, register, buf):
        buf[:] = self.readfrom_mem(address, register, len(buf))

    def writeto_mem(self, address, register, data):
        self.writes.append((address, register, bytes(data)))
        for i, b in enumerate(data):
            self.chips[address][register + i] = b


def mpu_chip(x, y, z, temp_raw=0, who=0x68):
    regs = {0x75: who}
    for i, b in enumerate(struct.pack(">hhhh", x, y, z, temp_raw)):
        regs[0x3B + i] = b
    return regs


def adxl_chip(x, y, z):
    regs = {0x00: 0xE5}
    for i, b in enumerate(struct.pack("<hhh", x, y, z)):
        regs[0x32 + i] = b
    return regs


def test_finds_mpu6050_wakes_it_and_reads_milli_g():
    bus = FakeI2C({0x68: mpu_chip(16384, -8192, 0, temp_raw=-340 * 10)})
    chip = accel.find(bus)
    assert isinstance(chip, mpu6050.MPU6050)
    assert (0x68, 0x6B, b"\x00") in bus.writes
    assert chip.acceleration() == (1000, -500, 0)
    assert chip.temperature_c() == pytest.approx(26.53)


def test_finds_adxl345_on_its_alternate_address():
    bus = FakeI2C({0x1D: adxl_chip(256, -128, 255)})
    chip = accel.find(bus)
    assert isinstance(chip, adxl345.ADXL345)
    assert (0x1D, 0x2D, b"\x08") in bus.writes
    assert chip.acceleration() == (1000, -500, 996)
    assert chip.temperature_c() is None


def test_a_chip_with_the_wrong_identity_is_not_taken():
    bus = FakeI2C({0x68: mpu_chip(0, 0, 0, who=0x12), 0x50: {}})
    assert accel.find(bus) is None


def test_bus_errors_mean_no_accelerometer():
    class DeadBus(FakeI2C):
        def scan(self):
            raise OSError(5)
    assert accel.find(DeadBus({})) is None

    class Flaky(FakeI2C):
        def readfrom_mem(self, address, register, n):
            raise OSError(19)
    assert accel.find(Flaky({0x68: {}, 0x53: {}})) is None
