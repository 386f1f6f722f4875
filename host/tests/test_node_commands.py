"""What the desk says a node did with a command (commission/commands.py effect()), from the
node's own frames after it: every command's way to "obeyed", the refusal the desk has no other
way to learn, and the frames that say nothing (another boot's heartbeat, a frame that does not
verify, a birth after `reboot` under the same boot)."""
from __future__ import annotations

import pytest
from linewatch import keys
from linewatch.commission import commands
from linewatch.commission.evidence import commission_entry
from linewatch.commission.store import FRAME, EvidenceRow
from lwproto import const
from lwproto import frame as wire

NODE, BOOT = 0x0301, 4
MASTER = bytes(range(32))
KEY = keys.derive(MASTER, NODE)
BEAT = {"battery_mv": 3900, "temperature_c": 9.5, "uptime_s": 5, "rssi_dbm": -60, "queue_depth": 0,
        "free_memory": 40000, "detections": 0, "dropped": 0, "reconnects": 0, "refused_commands": 2,
        "radio_ms": 0, "slept_s": 0, "heartbeat_s": 60, "power": 0}
BIRTH = {"fw_major": 0, "fw_minor": 1, "fw_patch": 0, "board": 3, "segment": 3, "lat": 48.0, "lon": 37.0,
         "alt_m": 0, "position_error_m": 5, "sensors": 1, "capabilities": 1, "sample_rate_hz": 16000}


T_GIVEN = 1_795_000_000_000_000          # when the command was given (UTC us)


def given(name, args=None):
    content = {"command": name, "args": args or {}, "commission_boot": 1, "commission_seq": 9,
               "node_boot": BOOT, "refused_before": 2}
    return commission_entry(commands.ENTRY, NODE, content, who="ana", at_us=T_GIVEN)._replace(id=100)


def row(ftype, seq, values, boot=BOOT, key=KEY, made_us=None, clock=const.CLOCK_NTP):
    made_us = T_GIVEN + 50_000 + seq if made_us is None else made_us
    raw = wire.encode(key, ftype, NODE, boot, seq, made_us, clock, 900, values)
    return EvidenceRow(100 + seq, FRAME, const.TYPE_NAMES[ftype], NODE, boot, seq, "t", T_GIVEN + 60_000 + seq,
                       raw, "tag_ok", "")


def effect(entry, *later):
    return commands.effect(entry, list(later), lambda node: keys.derive(MASTER, node))


def test_nothing_heard_yet_is_waiting():
    assert effect(given("rebirth"))["state"] == "waiting"
    assert effect(given("reboot", {"delay_s": 5}), row(const.HEARTBEAT, 7, BEAT))["state"] == "waiting"


def test_rebirth_is_obeyed_by_a_birth():
    said = effect(given("rebirth"), row(const.HEARTBEAT, 7, BEAT), row(const.BIRTH, 8, BIRTH))
    assert (said["state"], said["evidence_id"]) == ("obeyed", 108) and "birth received" in said["detail"]


def test_reboot_is_obeyed_only_by_a_birth_under_a_newer_boot():
    assert effect(given("reboot"), row(const.BIRTH, 8, BIRTH))["state"] == "waiting"
    said = effect(given("reboot"), row(const.BIRTH, 8, BIRTH), row(const.BIRTH, 1, BIRTH, boot=BOOT + 1))
    assert said["state"] == "obeyed" and "boot %d" % (BOOT + 1) in said["detail"]


@pytest.mark.parametrize("name, args", [("set_threshold", {"event_class": "explosion", "threshold": 25}),
                                        ("resend", {"boot": BOOT, "first_seq": 1, "last_seq": 3})])
def test_the_next_heartbeat_tells_obeyed_or_refused(name, args):
    assert effect(given(name, args), row(const.HEARTBEAT, 7, BEAT))["state"] == "obeyed"
    said = effect(given(name, args), row(const.HEARTBEAT, 7, {**BEAT, "refused_commands": 3}))
    assert said["state"] == "refused" and "2 -> 3" in said["detail"]


def test_frames_that_say_nothing_are_passed_over():
    other_boot = row(const.HEARTBEAT, 7, {**BEAT, "refused_commands": 0}, boot=BOOT + 1)
    forged = row(const.HEARTBEAT, 8, {**BEAT, "refused_commands": 9}, key=b"\x01" * 32)
    assert effect(given("set_threshold", {"event_class": "drone", "threshold": 3}), other_boot, forged)["state"] == \
        "waiting"
    assert effect(given("rebirth"), row(const.BIRTH, 8, BIRTH, key=b"\x01" * 32))["state"] == "waiting"


def test_a_frame_made_before_the_command_says_nothing_of_it():
    # a node back from an outage sends its backlog first: a heartbeat made an hour before the
    # command, received after it, is no answer (its refused counter knows nothing of it)
    stale = row(const.HEARTBEAT, 7, BEAT, made_us=T_GIVEN - 3_600_000_000)
    assert effect(given("set_threshold", {"event_class": "drone", "threshold": 3}), stale)["state"] == "waiting"
    fresh = row(const.HEARTBEAT, 8, {**BEAT, "refused_commands": 3})
    assert effect(given("set_threshold", {"event_class": "drone", "threshold": 3}), stale, fresh)["state"] == \
        "refused"
    before = T_GIVEN - commands.BEFORE_MARGIN_US - 2_000
    assert effect(given("rebirth"), row(const.BIRTH, 7, BIRTH, made_us=before))["state"] == "waiting"
    # within the margin (clocks that disagree by seconds): taken
    assert effect(given("rebirth"), row(const.BIRTH, 7, BIRTH, made_us=T_GIVEN - 5_000_000))["state"] == "obeyed"
    # a node with no clock: its stamps say nothing, the log's order does
    unclocked = row(const.BIRTH, 7, BIRTH, made_us=5, clock=const.CLOCK_NONE)
    assert effect(given("rebirth"), unclocked)["state"] == "obeyed"
