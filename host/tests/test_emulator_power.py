"""Power in the emulator: nodes running the firmware on the emulator's boards sleep on a low
battery and in a quiet window (sleep notice first, wake as a new boot), and the commission's
health tracker, fed the frames they published on a real Mosquitto, says "asleep until ...",
then "online" once they wake, and "late" for a node that never comes back."""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest

from lwnode import mqtt
from lwproto import const, frame as wire, topic as topics

from linewatch import keys
from linewatch.commission.config import HealthConfig
from linewatch.commission.health import HealthTracker
from linewatch.emulator import scenario as sc, vclock
from linewatch.emulator.runner import RunOptions, Runner
from linewatch.emulator.sources import NodeFault
from linewatch.emulator.world import Battery, World

pytestmark = pytest.mark.timeout(600, method="thread")   # a hang guard: see test_e2e.py
MASTER = bytes(range(32))
START = "2026-11-25T06:00:00Z"


def scenario(duration_s: float) -> sc.Scenario:
    return sc.parse({
        "scenario": {"name": "power", "seed": 3, "duration_s": duration_s, "start_utc": START,
                     "heartbeat_s": 10},
        "line": {"vertices": [[48.0, 37.8], [48.03, 37.85]], "segment_length_m": 5000},
        "nodes": {"row_offsets_m": [-300], "spacing_m": 2000, "start_m": 0, "end_m": 4100,
                  "clock_sources": {"ntp": 1.0}},
        "environment": {"noise_floor_db": 40},
        # a quiet window 06:03-06:05 UTC; a node under 3350 mV sleeps 100 s at a time, and
        # under 3500 mV it sends a heartbeat every 20 s
        "power": {"sleep_below_mv": 3350, "low_battery_sleep_s": 100, "save_heartbeat_s": 20,
                  "quiet_windows": [["06:03", "06:05"]]},
    })


def with_batteries(world: World, charges: dict[int, float]) -> World:
    nodes = tuple(replace(n, battery=Battery(3000, charges[i], 0.0)) if i in charges else n
                  for i, n in enumerate(world.nodes))
    return World(world.line, world.segments, nodes, world.environment, world.start_utc_us, world.seed)


def run(broker, tmp_path, scen: sc.Scenario, world: World):
    """Run the scenario in virtual time; returns [(virtual UTC us, frame)] as published."""
    frames: list = []

    async def main():
        loop_clock = vclock.RunClock(world.start_utc_us)
        sub = mqtt.MQTTClient("power-" + uuid.uuid4().hex[:8], broker.host, broker.port,
                              on_message=lambda t, p: frames.append((loop_clock.now_us(), t, p)))
        await sub.connect()
        await sub.subscribe(topics.uplink_filter(), 1)
        options = RunOptions((broker.host, broker.port), tmp_path / "nodes", MASTER, virtual=True,
                             drain_s=2, progress=False)
        runner = Runner(scen, world, options)
        summary = await runner.run()
        await asyncio.sleep(0.5)
        await sub.disconnect()
        return summary, runner

    summary, runner = vclock.run(main, virtual=True, grace_s=0.1)
    decoded, seen = [], set()
    for at, t, payload in frames:
        if t.endswith("/down"):
            continue
        _, node, _ = topics.parse(t)
        f = wire.decode(payload, keys.derive(MASTER, node))
        if (f.node, f.boot, f.seq, f.ftype) not in seen:   # unacked frames are published again
            seen.add((f.node, f.boot, f.seq, f.ftype))     # at each connection (no commission here)
            decoded.append((at, f))
    return decoded, runner


def health_of(frames, config=HealthConfig(late_after_s=35, offline_after_s=120)):
    h = HealthTracker(config)
    changes = []
    for at, f in frames:
        changes += h.observe(f, at)
    return h, changes


def test_low_battery_and_quiet_window_sleeps_seen_by_the_commission(shared_mosquitto, tmp_path):
    scen = scenario(420)
    world = with_batteries(scen.build_world(), {0: 0.0})      # node 0 at 3.30 V: under 3350 mV
    frames, runner = run(shared_mosquitto, tmp_path, scen, world)
    low, full = world.nodes[0].id, world.nodes[1].id

    sleeps = [(at, f) for at, f in frames if f.ftype == const.SLEEP]
    low_sleeps = [f for _, f in sleeps if f.node == low]
    assert low_sleeps and all(f.field("reason") == const.SLEEP_LOW_BATTERY and f.field("sleep_s") == 100
                              for f in low_sleeps)
    # it woke each time as a new boot and went back to sleep (the battery stays low)
    low_boots = sorted({f.boot for _, f in frames if f.node == low and f.ftype == const.BIRTH})
    assert len(low_boots) >= 3 and runner.nodes[low].sleeps >= 3
    quiet = [f for _, f in sleeps if f.node == full]
    assert [(f.field("reason"), f.field("sleep_s")) for f in quiet] == [(const.SLEEP_SCHEDULED, 120)]
    # the heartbeat after the wake says how long it slept
    woke = [f for _, f in frames if f.node == full and f.ftype == const.HEARTBEAT and f.field("slept_s")]
    assert woke and 115 <= woke[0].field("slept_s") <= 125
    # no death frame: the sleeping node disconnected cleanly
    assert not [f for _, f in frames if f.ftype == const.DEATH]

    h, changes = health_of(frames)
    asleep = [c for c in changes if c.node == full and c.new == "asleep"]
    assert len(asleep) == 1 and "quiet window" in asleep[0].why and "asleep until 2026-11-25T06:05" in asleep[0].why
    assert [c.new for c in changes if c.node == full] == ["asleep", "online"]
    assert not [c for c in changes if c.new in ("late", "offline")]


def test_a_node_that_does_not_wake_is_late_after_its_planned_wake(shared_mosquitto, tmp_path):
    scen = scenario(150)
    world = with_batteries(scen.build_world(), {0: 0.0})
    low = world.nodes[0].id
    # it fails for good while asleep: its first sleep starts 10 s in (its first heartbeat) plus
    # the 30 s it waits for an ack of its notice (no commission acks here)
    scen = replace(scen, faults=(NodeFault(low, 60.0, "failure", None),))
    frames, _ = run(shared_mosquitto, tmp_path, scen, world)
    h, changes = health_of(frames)
    assert [c.new for c in changes if c.node == low] == ["low_battery", "asleep"]   # 3.30 V < 3.40 V
    wake_us = h.asleep_until_us(low)
    # its last heartbeat said 20 s (saving mode): two of them past the planned wake, an alarm
    assert h.tick(wake_us + 39_000_000) == []
    assert [(c.old, c.new) for c in h.tick(wake_us + 41_000_000)] == [("asleep", "late")]
