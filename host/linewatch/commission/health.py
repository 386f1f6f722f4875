"""Node health: what each node last told us, and its state.

States, strongest first: offline (death frame, or silent past `offline_after_s`), tampered (a
tamper event within `tamper_hold_s`, or a birth from a position away from the registered
one), late (silent past `late_after_s`: missed heartbeats), low_battery, online. A node
asleep (sleep frame) is not late before it said it would wake. Each state change is returned
as a HealthChange: the caller stores and alerts it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from lwproto import const
from lwproto.frame import Frame, fields

from linewatch.commission.config import HealthConfig
from linewatch.commission.store import HealthChange, NodeHealth, NodeRecord
from linewatch.geo import haversine_m

ONLINE, LATE, OFFLINE, TAMPERED, LOW_BATTERY = "online", "late", "offline", "tampered", "low_battery"
STATES = (ONLINE, LATE, OFFLINE, TAMPERED, LOW_BATTERY)
_EVENT_CLASS = [spec[0] for spec in fields(const.EVENT)].index("event_class")
_COUNTERS = ("uptime_s", "free_memory", "detections", "dropped", "reconnects", "refused_commands")


@dataclass(slots=True)   # one per node, touched on every frame
class _Node:
    node: int
    state: str = ONLINE
    state_since_us: int = 0
    last_seen_us: int = 0
    awake_after_us: int = 0
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
            n = _Node(h.node, h.state, h.state_since_us, h.last_seen_us, 0, h.state == OFFLINE, 0.0, 0,
                      h.boot, h.battery_mv, h.temperature_c, h.rssi_dbm, h.queue_depth, h.clock_source,
                      h.clock_error_us, h.firmware, json.loads(h.counters or "{}"))
            n.counters_json = json.dumps(n.counters, sort_keys=True)
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
        if frame.ftype == const.EVENT and frame.values[_EVENT_CLASS] != const.TAMPER:
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
            n.dead = True
            return "death frame (%s)" % ("shutdown" if frame.field("reason") == const.DEATH_SHUTDOWN else "connection lost")
        n.dead = False
        if ftype == const.HEARTBEAT:
            f = frame.fields()
            n.battery_mv, n.temperature_c, n.rssi_dbm = f["battery_mv"], f["temperature_c"], f["rssi_dbm"]
            n.queue_depth = f["queue_depth"]
            n.counters = {k: f[k] for k in _COUNTERS}
            n.counters_json = json.dumps(n.counters, sort_keys=True)
            return "heartbeat"
        if ftype == const.BIRTH:
            f = frame.fields()
            n.firmware = "%d.%d.%d" % (f["fw_major"], f["fw_minor"], f["fw_patch"])
            n.moved_m = self._moved_m(frame.node, f)
            return "birth" if not n.moved_m else "birth %.0f m from the registered position" % n.moved_m
        if ftype == const.SLEEP:
            n.awake_after_us = at_us + int(frame.field("sleep_s") * 1e6)
            return "sleep"
        if ftype == const.EVENT and frame.values[_EVENT_CLASS] == const.TAMPER:
            n.tamper_until_us = at_us + int(self.config.tamper_hold_s * 1e6)
            return "tamper event"
        return frame.type_name()

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
        seen_us = n.last_seen_us if n.last_seen_us >= n.awake_after_us else n.awake_after_us
        silent_us = now_us - seen_us
        if n.dead or silent_us > self._offline_us:
            return OFFLINE
        if n.moved_m or now_us < n.tamper_until_us:
            return TAMPERED
        if silent_us > self._late_us:
            return LATE
        if n.battery_mv and n.battery_mv < self.config.low_battery_mv:
            return LOW_BATTERY
        return ONLINE

    def state(self, node: int) -> str | None:
        n = self._nodes.get(node)
        return n.state if n else None

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
