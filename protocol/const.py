# Wire constants, named once: encoder, decoder, SPEC.md and tests all use these.
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
UPLINK_TYPES = (EVENT, HEARTBEAT, BIRTH, DEATH, SLEEP)
DOWNLINK_TYPES = (COMMAND, ACK)

HEADER_FORMAT = ">BHHIqBH"   # ver|type, node, boot, seq, time_us, clock_source, clock_error_us
HEADER_SIZE = const(20)
TAG_SIZE = const(8)
CLOCK_ERROR_MAX_US = const(65535)   # saturates: 65535 means "65.535 ms or worse"

# Node id 0 is the commission itself (its key signs the retained state frame).
COMMISSION_NODE = const(0)

# Clock sources
CLOCK_NONE = const(0)
CLOCK_NTP = const(1)
CLOCK_GPS_PPS = const(2)
CLOCK_NAMES = ("none", "ntp", "gps_pps")

# Event classes
UNKNOWN = const(0)
EXPLOSION = const(1)
SMALL_ARMS = const(2)
DRONE = const(3)
VEHICLE = const(4)
TAMPER = const(5)
CLASS_NAMES = ("unknown", "explosion", "small_arms", "drone", "vehicle", "tamper")

# Commands (downlink)
CMD_SET_THRESHOLD = const(1)
CMD_REBIRTH = const(2)
CMD_RESEND = const(3)
CMD_REBOOT = const(4)
COMMAND_NAMES = {CMD_SET_THRESHOLD: "set_threshold", CMD_REBIRTH: "rebirth",
                 CMD_RESEND: "resend", CMD_REBOOT: "reboot"}

# Death reasons
DEATH_LOST = const(0)       # the broker published the last will: connection lost
DEATH_SHUTDOWN = const(1)   # the node said goodbye before powering off

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

# Commission state (retained)
OFFLINE = const(0)
ONLINE = const(1)
