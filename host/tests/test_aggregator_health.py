"""Node health from frames alone (no broker): states, their changes and the rows to store."""
import json

from lwproto import const, frame as wire
from linewatch.commission.config import HealthConfig
from linewatch.commission.health import HealthTracker
from linewatch.commission.store import NodeHealth

KEY = b"k" * 32
NODE = 0x0102
S = 1_000_000
EVENT = {"event_class": 1, "confidence": 0.8, "onset_offset_us": 0, "peak_db": -3.0, "duration_ms": 50,
         "frequency_hz": 90, "snr_db": 12.0}
HEARTBEAT = {"battery_mv": 3900, "temperature_c": 21.5, "uptime_s": 60, "rssi_dbm": -70, "queue_depth": 2,
             "free_memory": 40000, "detections": 3, "dropped": 0, "reconnects": 1, "refused_commands": 0,
             "radio_ms": 1500, "slept_s": 0, "heartbeat_s": 60, "power": 0}


def frame(ftype, seq, values, node=NODE, boot=1):
    return wire.decode(wire.encode(KEY, ftype, node, boot, seq, 0, const.CLOCK_NTP, 500, values), KEY)


def states(changes):
    return [(c.old, c.new, c.why) for c in changes]


def test_events_keep_a_node_online_and_a_tamper_event_holds_it_tampered():
    h = HealthTracker(HealthConfig(tamper_hold_s=10))
    assert h.observe(frame(const.EVENT, 1, EVENT), 1 * S) == []
    assert h.state(NODE) == "online"
    tamper = dict(EVENT, event_class=const.TAMPER)
    assert states(h.observe(frame(const.EVENT, 2, tamper), 2 * S)) == [("online", "tampered", "tamper event")]
    assert h.observe(frame(const.EVENT, 3, EVENT), 5 * S) == []   # an ordinary event does not clear it
    assert states(h.observe(frame(const.EVENT, 4, EVENT), 13 * S)) == [("tampered", "online", "event")]


def test_death_then_any_frame_and_silence():
    h = HealthTracker(HealthConfig(late_after_s=30, offline_after_s=100))
    h.observe(frame(const.EVENT, 1, EVENT), 0)
    assert states(h.observe(frame(const.DEATH, 1, {"reason": 0}), 1 * S)) == [
        ("online", "offline", "death frame (connection lost)")]
    assert states(h.observe(frame(const.EVENT, 2, EVENT), 2 * S)) == [("offline", "online", "event")]
    assert h.tick(20 * S) == []
    assert states(h.tick(40 * S)) == [("online", "late", "silence")]
    assert states(h.tick(120 * S)) == [("late", "offline", "silence")]
    assert states(h.observe(frame(const.EVENT, 3, EVENT), 121 * S)) == [("offline", "online", "event")]


def test_heartbeat_fields_and_counters_reach_the_stored_row():
    h = HealthTracker(HealthConfig(low_battery_mv=3400))
    h.observe(frame(const.EVENT, 1, EVENT), 1 * S)
    row = h.take_dirty()[NODE]
    assert (row.state, row.last_seen_us, row.counters) == ("online", 1 * S, "{}")
    assert h.take_dirty() == {}
    low = dict(HEARTBEAT, battery_mv=3300)
    assert states(h.observe(frame(const.HEARTBEAT, 2, low), 2 * S)) == [("online", "low_battery", "heartbeat")]
    h.observe(frame(const.EVENT, 3, EVENT), 3 * S)
    row = h.take_dirty()[NODE]
    assert (row.battery_mv, row.temperature_c, row.rssi_dbm, row.queue_depth) == (3300, 21.5, -70, 2)
    assert (row.clock_source, row.clock_error_us, row.last_seen_us) == (const.CLOCK_NTP, 500, 3 * S)
    assert json.loads(row.counters) == {"uptime_s": 60, "free_memory": 40000, "detections": 3, "dropped": 0,
                                        "reconnects": 1, "refused_commands": 0, "radio_ms": 1500,
                                        "slept_s": 0, "heartbeat_s": 60, "power": 0}
    assert row.counters == json.dumps(json.loads(row.counters), sort_keys=True)


def test_loaded_rows_carry_over_a_restart():
    h = HealthTracker(HealthConfig())
    counters = json.dumps({"dropped": 4, "uptime_s": 9}, sort_keys=True)
    h.load([NodeHealth(NODE, "offline", 5, 5, 1, 3900, 20.0, -60, 0, 1, 100, "1.2.3", counters)])
    assert h.state(NODE) == "offline"
    h.observe(frame(const.EVENT, 9, EVENT), 10 * S)
    row = h.take_dirty()[NODE]
    assert (row.state, row.firmware, row.counters) == ("online", "1.2.3", counters)


def test_a_heartbeat_of_the_older_length_still_counts():
    h = HealthTracker(HealthConfig())
    full = wire.encode(KEY, const.HEARTBEAT, NODE, 1, 1, 0, const.CLOCK_NTP, 500, HEARTBEAT)
    body = full[:51 - 8]
    from lwproto import auth
    old = wire.decode(body + auth.tag(KEY, body), KEY)          # firmware before the power fields
    h.observe(old, 1 * S)
    row = h.take_dirty()[NODE]
    assert row.battery_mv == 3900 and "radio_ms" not in json.loads(row.counters)


def test_a_sleeping_node_is_asleep_until_its_wake_then_late_if_it_stays_silent():
    h = HealthTracker(HealthConfig(late_after_s=30, offline_after_s=100))
    h.observe(frame(const.HEARTBEAT, 1, HEARTBEAT), 0)
    change = h.observe(frame(const.SLEEP, 2, {"sleep_s": 600, "reason": const.SLEEP_LOW_BATTERY}), 1 * S)
    assert states(change) == [("online", "asleep",
                               "sleep notice (low battery), asleep until 1970-01-01T00:10:01Z")]
    assert h.asleep_until_us(NODE) == 601 * S
    assert h.observe(frame(const.DEATH, 1, {"reason": 0}), 2 * S) == []    # the will of before: not dead
    assert h.tick(300 * S) == [] and h.tick(620 * S) == []               # no alarm while asleep
    assert json.loads(h.take_dirty()[NODE].counters)["asleep_until_us"] == 601 * S
    assert h.tick(720 * S) == []          # its heartbeat interval (60 s): allowed 2 of them
    assert states(h.tick(722 * S)) == [("asleep", "late", "silence")]    # 121 s past its wake: alarm
    assert states(h.tick(842 * S)) == [("late", "offline", "silence")]   # 4 intervals


def test_a_woken_node_is_online_again_and_old_notices_do_not_put_it_to_sleep():
    h = HealthTracker(HealthConfig(late_after_s=30, offline_after_s=100))
    h.observe(frame(const.SLEEP, 5, {"sleep_s": 60, "reason": const.SLEEP_SCHEDULED}), 0)
    assert h.state(NODE) == "asleep"
    birth = {"fw_major": 0, "fw_minor": 2, "fw_patch": 0, "board": 1, "segment": 3, "lat": 0.0, "lon": 0.0,
             "alt_m": 0, "position_error_m": 5, "sensors": 1, "capabilities": 2, "sample_rate_hz": 16000}
    assert states(h.observe(frame(const.BIRTH, 1, birth, boot=2), 61 * S)) == [("asleep", "online", "birth")]
    assert h.asleep_until_us(NODE) == 0
    assert h.observe(frame(const.SLEEP, 6, {"sleep_s": 60, "reason": 0}), 62 * S) == []   # boot 1's, late
    assert h.state(NODE) == "online"


def test_lateness_follows_the_heartbeat_interval_the_node_announced():
    h = HealthTracker(HealthConfig(late_after_s=30, offline_after_s=100))
    h.observe(frame(const.HEARTBEAT, 1, dict(HEARTBEAT, heartbeat_s=300, power=1)), 0)
    assert h.tick(200 * S) == []                                         # 30 s would be late
    assert states(h.tick(601 * S)) == [("online", "late", "silence")]    # two intervals
    assert states(h.tick(1201 * S)) == [("late", "offline", "silence")]  # four


def test_a_node_that_says_it_could_not_publish_is_degraded_until_a_heartbeat_says_otherwise():
    h = HealthTracker(HealthConfig(low_battery_mv=3400))
    h.observe(frame(const.EVENT, 1, EVENT), 1 * S)
    degraded = dict(HEARTBEAT, power=const.POWER_DEGRADED | const.POWER_SAVE, battery_mv=3300)
    assert states(h.observe(frame(const.HEARTBEAT, 2, degraded), 2 * S)) == [
        ("online", "degraded", "heartbeat: the node could not publish this boot (out of memory)")]
    assert states(h.observe(frame(const.HEARTBEAT, 1, HEARTBEAT, boot=2), 3 * S)) == [
        ("degraded", "online", "heartbeat")]            # the next boot publishes again


def test_a_clock_fusion_flags_is_marked_in_the_stored_row_until_it_agrees_again():
    h = HealthTracker(HealthConfig())
    h.observe(frame(const.HEARTBEAT, 1, HEARTBEAT), 1 * S)
    h.take_dirty()
    assert h.clock_checks({NODE: {"offset_us": 81_234, "spread_us": 900, "fixes": 5, "flagged": False}}) == []
    assert h.clock_checks({NODE: {"offset_us": 81_234, "spread_us": 900, "fixes": 5, "flagged": True}}) == [NODE]
    assert json.loads(h.take_dirty()[NODE].counters)["clock_offset_us"] == 81_234
    h.observe(frame(const.HEARTBEAT, 2, HEARTBEAT), 2 * S)        # a heartbeat keeps the mark
    assert json.loads(h.take_dirty()[NODE].counters)["clock_offset_us"] == 81_234
    assert h.clock_checks({}) == [NODE]
    assert "clock_offset_us" not in json.loads(h.take_dirty()[NODE].counters)
    assert h.state(NODE) == "online"


def test_nodes_status_says_when_fusion_flags_a_nodes_clock(tmp_path):
    import subprocess
    import sys

    from linewatch.commission.registry import Registry
    from linewatch.commission.store import Batch, open_store
    h = HealthTracker(HealthConfig())
    h.observe(frame(const.HEARTBEAT, 1, HEARTBEAT), 1 * S)
    h.clock_checks({NODE: {"offset_us": -81_234, "spread_us": 900, "fixes": 5, "flagged": True}})
    store = open_store(str(tmp_path / "lw.db"))
    Registry(store).add(NODE, 1, 48.0, 37.0)
    store.commit(Batch(health=h.take_dirty()))
    store.close()
    (tmp_path / "aggregator.toml").write_text('[store]\npath = "lw.db"\n')
    out = subprocess.run([sys.executable, "-m", "linewatch.cli", "nodes", "--config",
                          str(tmp_path / "aggregator.toml"), "status"], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "CLOCK: its arrivals miss located sources by -81 ms" in out.stdout
