# Runs the node's detector chain over a raw int16 file, under MicroPython or CPython alike:
#   micropython detector_run.py AUDIO.raw [rate] [block] [viper|plain] [refractory_ms...]
# With AUDIO.raw.accel beside it (int16 LE x, y, z in milli-g, one sample per block) the
# accelerometer is fed too, one sample after each block. Prints one line per detection, "D cls onset duration_ms frequency_hz confidence peak_db
# snr_db", then "T <microseconds spent in the chain> <samples>". Used by the detector tests
# and by the quality and speed benchmarks (the figures come from the interpreter that runs it).
import sys
import time
from array import array

from lwnode import dsp
from lwnode.detector import DetectorChain

try:
    ticks_us = time.ticks_us
    ticks_diff = time.ticks_diff
except AttributeError:  # CPython
    def ticks_us():
        return time.perf_counter_ns() // 1000

    def ticks_diff(a, b):
        return a - b


def main(argv):
    path = argv[1]
    rate = int(argv[2]) if len(argv) > 2 else 16000
    block = int(argv[3]) if len(argv) > 3 else 256
    mode = argv[4] if len(argv) > 4 else "viper"
    dsp.use_viper(mode == "viper")
    chain = DetectorChain(rate, block)
    for cls, ms in enumerate(argv[5:]):
        chain.set_refractory(cls, int(ms))
    buf = array("h", bytearray(2 * block))
    xyz = array("h", bytearray(6))
    try:
        accel = open(path + ".accel", "rb")
    except OSError:
        accel = None
    index = 0
    spent = 0
    with open(path, "rb") as f:
        while True:
            got = f.readinto(buf)
            if not got or got < 2 * block:
                break
            t0 = ticks_us()
            found = chain.feed_audio(buf, index)
            if accel is not None and accel.readinto(xyz) == 6:
                found = list(found) + list(chain.feed_accel(xyz[0], xyz[1], xyz[2], index + block))
            spent += ticks_diff(ticks_us(), t0)
            for d in found:
                print("D %d %d %d %d %.4f %.3f %.3f" % (
                    d.cls, d.onset_index, d.duration_ms, d.frequency_hz, d.confidence,
                    d.peak_db, d.snr_db))
            index += block
    if accel is not None:
        accel.close()
    print("T %d %d" % (spent, index))


if __name__ == "__main__":
    main(sys.argv)
