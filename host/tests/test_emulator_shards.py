"""A run split over worker processes: whole segments per worker, every node publishes."""
from __future__ import annotations

import threading

import paho.mqtt.client as paho

from linewatch.emulator import scenario as sc
from linewatch.emulator.runner import RunOptions, emulate
from linewatch.emulator.shards import shares
from lwproto import topic



def _quiet_line(km: float, seconds: float, segment_km: float) -> sc.Scenario:
    rates = {k: 0.0 for k in ("artillery", "explosion", "small_arms", "drone", "vehicle", "tamper",
                              "node_reboot", "node_failure", "network_outage", "broker_outage")}
    return sc.generate(3, hours=seconds / 3600.0, line_km=km, rates_per_hour=rates,
                       segment_km=segment_km)


def test_shares_are_whole_contiguous_segments_of_about_equal_size():
    world = _quiet_line(40, 60, 5).build_world()
    parts = shares(world, 3)
    assert len(parts) == 3
    assert sorted(i for p in parts for i in p) == sorted(n.id for n in world.nodes)
    segment_of = {n.id: n.segment for n in world.nodes}
    segments = [sorted({segment_of[i] for i in p}) for p in parts]
    for a, b in zip(segments, segments[1:]):
        assert a[-1] < b[0]                          # contiguous, no segment split
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 5              # one segment of 5 nodes at most
    assert len(shares(world, 100)) == len({n.segment for n in world.nodes})


def test_two_workers_run_every_node_in_virtual_time(shared_mosquitto, tmp_path):
    scenario = _quiet_line(12, 60, 4)
    world = scenario.build_world()
    seen: set[str] = set()
    lock = threading.Lock()

    def on_message(client, userdata, msg):
        with lock:
            seen.add(msg.topic)

    sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="lw-test-shards")
    sub.on_message = on_message
    sub.connect(shared_mosquitto.host, shared_mosquitto.port)
    sub.subscribe(topic.uplink_filter(), 1)
    sub.loop_start()
    try:
        options = RunOptions((shared_mosquitto.host, shared_mosquitto.port), tmp_path, b"s" * 32,
                             virtual=True, drain_s=0, progress=False, workers=2)
        summary = emulate(scenario, world, options)
        pause = threading.Event()
        for _ in range(50):
            with lock:
                births = {t for t in seen if t.endswith("/birth")}
            if len(births) == len(world.nodes):
                break
            pause.wait(0.1)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert summary.workers == 2 and summary.nodes == len(world.nodes)
    # a birth and a heartbeat every 10 s of the 60 s (the one at 60 s may fall after the
    # end), per node; nothing acks them here
    assert summary.frames >= 6 * len(world.nodes)
    assert summary.left_in_queues == summary.frames
    assert births == {topic.uplink(n.segment, n.id, 3) for n in world.nodes}
