"""Node health: what each node last told us, and its state.

States, strongest first: offline (death frame, or silent past `offline_after_s`), tampered (a
tamper event within `tamper_hold_s`, or a birth from a position away from the registered
one), asleep (a sleep notice: until its planned wake plus the lateness allowance; no alarm),
late (silent past `late_after_s`: missed heartbeats, or no word after a planned wake),
degraded (its last heartbeat says it could not publish this boot: out of memory, `power` bit
2), low_battery, online. The allowances grow with the node's own heartbeat interval (a node on a
low battery sends fewer): late after at least 2, offline after at least 4 intervals. Each
state change is returned as a HealthChange: the caller stores and alerts it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from lwproto import const
from lwproto.frame import Frame, fields

from linewatch.commission.config import HealthConfig
from linewatch.commission.store import HealthChange, NodeHealth, NodeRecord
from linewatch.geo import haversine_m

ONLINE, LATE, OFFLINE, TAMPERED, LOW_BATTERY, ASLEEP = ("online", "late", "offline", "tampered",
                                                       "low_battery", "asleep")
DEGRADED = "degraded"
STATES = (ONLINE, LATE, OFFLINE, TAMPERED, LOW_BATTERY, ASLEEP, DEGRADED)
_EVENT_CLASS = [spec[0] for spec in fields(const.EVENT)].index("event_class")
# heartbeat fields kept per node (the power ones are absent from a 51-byte heartbeat)
_COUNTERS = ("uptime_s", "free_memory", "detections", "dropped", "reconnects", "refused_commands",
             "radio_ms", "slept_s", "heartbeat_s", "power")
ASLEEP_UNTIL = "asleep_until_us"     # in the stored counters while a node sleeps
CLOCK_OFFSET = "clock_offset_us"     # in the stored counters while fusion flags the node's clock
_SLEEP_REASONS = {const.SLEEP_SCHEDULED: "quiet window", const.SLEEP_LOW_BATTERY: "low battery"}


def utc_text(at_us: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at_us / 1e6))


@dataclass(slots=True)   # one per node, touched on every frame
class _Node:
    node: int
    state: str = ONLINE
    state_since_us: int = 0
    last_seen_us: int = 0
    awake_after_us: int = 0          # a sleep notice's planned wake; 0 while awake
    sleep_mark: tuple = (0, 0)       # (boot, seq) of that notice: only later frames wake it
    heartbeat_s: int = 0             # the node's heartbeat interval in force (0: not told)
    dead: bool = False
    moved_m: float = 0.0
    tamper_until_us: int = 0
    boot: int = 0
    battery_mv: int = 0
    temperature_c: float = 0.0
    rssi_dbm: int = 0
    queue_depth: int = 0
    clock_source: int = 0
    clock_error_us: int = 0
    firmware: str = ""
    counters: dict = field(default_factory=dict)
    counters_json: str = ""   # json of counters, made when they change, not per stored row
    clock_offset_us: int | None = None   # fusion's estimate while it flags the node's clock


class HealthTracker:
    def __init__(self, config: HealthConfig, position_of=None) -> None:
        self.config = config
        self.position_of = position_of or (lambda node: None)   # node -> NodeRecord | None
        self._nodes: dict[int, _Node] = {}
        self._dirty: set[int] = set()
        self._offline_us = config.offline_after_s * 1e6
        self._late_us = config.late_after_s * 1e6

    def load(self, rows: list[NodeHealth]) -> None:
        """Carry states over a restart (a node offline before stays offline until heard)."""
        for h in rows:
            n = _Node(h.node, h.state, h.state_since_us, h.last_seen_us, dead=h.state == OFFLINE,
                      boot=h.boot, battery_mv=h.battery_mv, temperature_c=h.temperature_c,
                      rssi_dbm=h.rssi_dbm, queue_depth=h.queue_depth, clock_source=h.clock_source,
                      clock_error_us=h.clock_error_us, firmware=h.firmware,
                      counters=json.loads(h.counters or "{}"))
            n.counters_json = json.dumps(n.counters, sort_keys=True)
            n.awake_after_us = int(n.counters.get(ASLEEP_UNTIL, 0))
            n.heartbeat_s = int(n.counters.get("heartbeat_s", 0))
            self._nodes[h.node] = n

    def observe(self, frame: Frame, received_us: int) -> list[HealthChange]:
        node = frame.node
        n = self._nodes.get(node)
        if n is None:
            n = self._nodes[node] = _Node(node, ONLINE, received_us)
        if received_us > n.last_seen_us:
            n.last_seen_us = received_us
        if frame.boot > n.boot:
            n.boot = frame.boot
        n.clock_source, n.clock_error_us = frame.clock_source, frame.clock_error_us
        if frame.ftype == const.EVENT and frame.values[_EVENT_CLASS] != const.TAMPER \
                and not n.awake_after_us:
            n.dead = False   # the usual frame: nothing else of the node's to note
            why = "event"
        else:
            why = self._apply(n, frame, received_us)
        self._dirty.add(node)
        state = self._state(n, received_us)
        return [] if state == n.state else self._change(n, received_us, state, why)

    def _apply(self, n: _Node, frame: Frame, at_us: int) -> str:
        ftype = frame.ftype
        if ftype == const.DEATH:
            if n.awake_after_us and (frame.boot, frame.seq) <= n.sleep_mark:
                return "death frame while asleep"    # a will from before the notice: not dead
            n.dead = True
            return "death frame (%s)" % ("shutdown" if frame.field("reason") == const.DEATH_SHUTDOWN else "connection lost")
        n.dead = False
        if ftype == const.SLEEP:
            if frame.boot < n.boot:
                return "sleep notice of an older boot"   # history: the node woke since
            n.awake_after_us = at_us + int(frame.field("sleep_s") * 1e6)
            n.sleep_mark = (frame.boot, frame.seq)
            self._keep(n)
            return "sleep notice (%s), asleep until %s" % (
                _SLEEP_REASONS.get(frame.field("reason"), "?"), utc_text(n.awake_after_us))
        woke = n.awake_after_us != 0 and (frame.boot, frame.seq) > n.sleep_mark
        if woke:
            n.awake_after_us = 0         # a frame made after its notice: the node is awake
        if ftype == const.HEARTBEAT:
            f = frame.fields()
            n.battery_mv, n.temperature_c, n.rssi_dbm = f["battery_mv"], f["temperature_c"], f["rssi_dbm"]
            n.queue_depth = f["queue_depth"]
            n.heartbeat_s = int(f.get("heartbeat_s", 0))
            n.counters = {k: f[k] for k in _COUNTERS if k in f}
            self._keep(n)
            if f.get("power", 0) & const.POWER_DEGRADED:
                return "heartbeat: the node could not publish this boot (out of memory)"
            return "heartbeat"
        if woke:
            self._keep(n)
        if ftype == const.BIRTH:
            f = frame.fields()
            n.firmware = "%d.%d.%d" % (f["fw_major"], f["fw_minor"], f["fw_patch"])
            n.moved_m = self._moved_m(frame.node, f)
            return "birth" if not n.moved_m else "birth %.0f m from the registered position" % n.moved_m
        if ftype == const.EVENT and frame.values[_EVENT_CLASS] == const.TAMPER:
            n.tamper_until_us = at_us + int(self.config.tamper_hold_s * 1e6)
            return "tamper event"
        return "awake: %s" % frame.type_name() if woke else frame.type_name()

    def clock_checks(self, timing: dict[int, dict]) -> list[int]:
        """Fusion's view of the nodes' clocks ({node: {offset_us, flagged, ...}}, from
        FusionEngine.node_timing): a node whose arrivals keep missing well-located sources is
        marked in its stored counters (CLOCK_OFFSET, shown by `nodes status`) until they agree
        again. Returns the nodes whose mark changed."""
        changed = []
        for node, n in self._nodes.items():
            judged = timing.get(node)
            offset = judged["offset_us"] if judged and judged.get("flagged") else None
            if offset != n.clock_offset_us:
                n.clock_offset_us = offset
                self._keep(n)
                self._dirty.add(node)
                changed.append(node)
        return changed

    def _keep(self, n: _Node) -> None:
        """The stored counters: the heartbeat's, the planned wake while asleep, and fusion's
        estimate of the clock's offset while it flags the node."""
        n.counters.pop(ASLEEP_UNTIL, None)
        n.counters.pop(CLOCK_OFFSET, None)
        if n.awake_after_us:
            n.counters[ASLEEP_UNTIL] = n.awake_after_us
        if n.clock_offset_us is not None:
            n.counters[CLOCK_OFFSET] = n.clock_offset_us
        n.counters_json = json.dumps(n.counters, sort_keys=True)

    def _moved_m(self, node: int, f: dict) -> float:
        record: NodeRecord | None = self.position_of(node)
        if record is None or (f["lat"] == 0 and f["lon"] == 0):   # no GPS fix: nothing to compare
            return 0.0
        distance = haversine_m(record.lat, record.lon, f["lat"], f["lon"])
        return distance if distance > self.config.tamper_move_m + f["position_error_m"] else 0.0

    def tick(self, now_us: int) -> list[HealthChange]:
        changes = []
        for n in self._nodes.values():
            changes += self._settle(n, now_us, "silence")
        return changes

    def _settle(self, n: _Node, now_us: int, why: str) -> list[HealthChange]:
        state = self._state(n, now_us)
        return [] if state == n.state else self._change(n, now_us, state, why)

    def _change(self, n: _Node, now_us: int, state: str, why: str) -> list[HealthChange]:
        change = HealthChange(n.node, now_us, n.state, state, why)
        n.state, n.state_since_us = state, now_us
        self._dirty.add(n.node)
        return [change]

    def _state(self, n: _Node, now_us: int) -> str:
        # silent since the last frame, or since the planned wake of a sleeping node
        seen_us = n.last_seen_us if n.last_seen_us >= n.awake_after_us else n.awake_after_us
        silent_us = now_us - seen_us
        late_us = max(self._late_us, 2e6 * n.heartbeat_s)
        if n.dead or silent_us > max(self._offline_us, 4e6 * n.heartbeat_s):
            return OFFLINE
        if n.moved_m or now_us < n.tamper_until_us:
            return TAMPERED
        if silent_us > late_us:
            return LATE
        if n.awake_after_us:
            return ASLEEP
        if n.counters.get("power", 0) & const.POWER_DEGRADED:
            return DEGRADED
        if n.battery_mv and n.battery_mv < self.config.low_battery_mv:
            return LOW_BATTERY
        return ONLINE

    def state(self, node: int) -> str | None:
        n = self._nodes.get(node)
        return n.state if n else None

    def asleep_until_us(self, node: int) -> int:
        """The planned wake of a node that sent a sleep notice, 0 when it is awake."""
        n = self._nodes.get(node)
        return n.awake_after_us if n else 0

    def take_dirty(self) -> dict[int, NodeHealth]:
        """The rows changed since the last call, to write in the next batch."""
        out = {}
        for node in self._dirty:
            n = self._nodes[node]
            out[node] = NodeHealth(n.node, n.state, n.state_since_us, n.last_seen_us, n.boot, n.battery_mv,
                                   n.temperature_c, n.rssi_dbm, n.queue_depth, n.clock_source,
                                   n.clock_error_us, n.firmware, n.counters_json or "{}")
        self._dirty.clear()
        return out
