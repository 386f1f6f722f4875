# Wire constants the node firmware never uses: the commission, tools and tests do. Kept out of
# lwproto.const so a node does not intern their names (see const.py); on CPython, const
# re-exports them, so host code may read either module.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

UPLINK_TYPES = (1, 2, 3, 4, 5)   # EVENT, HEARTBEAT, BIRTH, DEATH, SLEEP
DOWNLINK_TYPES = (8, 9)          # COMMAND, ACK

# Node id 0 is the commission itself (its key signs the retained state frame).
COMMISSION_NODE = const(0)

# Event classes (const.CLASS_NAMES names them)
UNKNOWN = const(0)
EXPLOSION = const(1)
SMALL_ARMS = const(2)
DRONE = const(3)
VEHICLE = const(4)
TAMPER = const(5)

# Commands (downlink; const.COMMAND_NAMES names them)
CMD_SET_THRESHOLD = const(1)
CMD_REBIRTH = const(2)
CMD_RESEND = const(3)
CMD_REBOOT = const(4)

# Death reasons besides const.DEATH_LOST
DEATH_SHUTDOWN = const(1)   # the node said goodbye before powering off

# Capability bits the node sets with const numbers of its own (lwproto.const has the rest)
CAP_VEHICLE = const(32)     # the vehicle detector (class 4)
CAP_UPDATE = const(64)      # firmware updates over the air (SPEC.md section 10)

# Sleep notice reasons
SLEEP_SCHEDULED = const(0)      # a quiet window of the node's config
SLEEP_LOW_BATTERY = const(1)

# Heartbeat power modes
POWER_NORMAL = const(0)
POWER_SAVE = const(1)           # battery under power.save_mv: longer heartbeats, radio power save
POWER_DEGRADED = const(2)       # bit: the node could not publish (out of memory) this boot

# Commission state (retained)
OFFLINE = const(0)
ONLINE = const(1)
