# Wire constants, named once: encoder, decoder, SPEC.md and tests all use these.
#
# Only what the node firmware uses lives here: on MicroPython every name a loaded module
# holds is interned in RAM for good (the node's qstr pools are most of its heap; see
# firmware/README.md "Memory"). The values only the commission, tools and tests use are in
# lwproto.hostconst, and on CPython this module carries them too, so `const.OFFLINE` reads
# the same everywhere off the board.
import sys

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

VERSION = const(1)

# Frame types (low nibble of byte 0)
EVENT = const(1)
HEARTBEAT = const(2)
BIRTH = const(3)
DEATH = const(4)
SLEEP = const(5)
COMMAND = const(8)
ACK = const(9)
STATE = const(10)

TYPE_NAMES = {
    EVENT: "event", HEARTBEAT: "heartbeat", BIRTH: "birth", DEATH: "death", SLEEP: "sleep",
    COMMAND: "command", ACK: "ack", STATE: "state",
}

HEADER_FORMAT = ">BHHIqBH"   # ver|type, node, boot, seq, time_us, clock_source, clock_error_us
HEADER_SIZE = const(20)
TAG_SIZE = const(8)
CLOCK_ERROR_MAX_US = const(65535)   # saturates: 65535 means "65.535 ms or worse"

# Clock sources
CLOCK_NONE = const(0)
CLOCK_NTP = const(1)
CLOCK_GPS_PPS = const(2)
CLOCK_NAMES = ("none", "ntp", "gps_pps")

# Event classes (their numbers as names: lwproto.hostconst), by number
CLASS_NAMES = ("unknown", "explosion", "small_arms", "drone", "vehicle", "tamper")

# Commands (downlink; their numbers as names: lwproto.hostconst)
COMMAND_NAMES = {1: "set_threshold", 2: "rebirth", 3: "resend", 4: "reboot"}

# Death reasons
DEATH_LOST = const(0)       # the broker published the last will: connection lost

# Boards (birth frame)
BOARD_NAMES = ("unknown", "esp32", "rp2", "unix", "sim")

# Sensor set bits (birth frame)
SENSOR_MIC = const(1)
SENSOR_ACCEL = const(2)
SENSOR_BATTERY = const(4)
SENSOR_GPS = const(8)

# Capability bits (birth frame)
CAP_VIPER = const(1)
CAP_DEEP_SLEEP = const(2)
CAP_PPS = const(4)
CAP_DRONE = const(8)
CAP_RESEND = const(16)

if sys.implementation.name != "micropython":
    from .hostconst import *  # noqa: E402,F401,F403
