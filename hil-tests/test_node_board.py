"""The node firmware on a board: boot, birth, events, commands, outage, memory.

The same tests on the virtual board and on a real one (`--port`, dut.py); the audio each test
passes is the virtual board's sample feed, unheard by a real board's live microphone."""
import time

import pytest

from lwproto import const as c


def test_boots_and_prints_self_test(hil, dut):
    board = dut(hil.synth(1.0))
    line = board.console.wait_for(r"linewatch node 0x%04x self-test ok \((.*)\)" % board.node).group(1)
    assert "board %s," % board.board_name in line and "%d Hz" % board.rate in line


def test_birth_frame_verifies(hil, dut, commission):
    board = dut(hil.synth(1.0))
    birth = commission.wait_frame(c.BIRTH, where=lambda f: f.node == board.node)
    v = birth.fields()
    assert (birth.node, birth.seq) == (board.node, 1)
    assert v["segment"] == board.segment and v["board"] == c.BOARD_NAMES.index(board.board_name)
    assert v["sample_rate_hz"] == board.rate and abs(v["lat"] - board.config["position"]["lat"]) < 1e-6
    assert v["capabilities"] & c.CAP_RESEND
    board.console.wait_for(r"uplink: connected")


@pytest.mark.needs("feed")
def test_impulse_becomes_event_with_onset_to_the_sample(hil, dut, commission):
    dut(hil.synth(4.0, impulses_s=(2.5,)))
    event = commission.wait_frame(c.EVENT)
    v = event.fields()
    assert v["event_class"] == c.EXPLOSION, v
    onset_us = event.time_us + v["onset_offset_us"]
    assert abs(onset_us - (hil.START_US + 2_500_000)) <= 2000, onset_us - (hil.START_US + 2_500_000)


def test_set_threshold_command_is_applied_and_forgery_refused(hil, dut, commission):
    board = dut(hil.synth(1.0))
    commission.wait_frame(c.BIRTH)
    commission.command(c.CMD_SET_THRESHOLD, event_class=c.EXPLOSION, threshold=20.0, refractory_ms=800)
    board.console.wait_for(r"command set_threshold explosion threshold=20.0 refractory_ms=800 applied")

    commission.command(c.CMD_SET_THRESHOLD, event_class=c.EXPLOSION, threshold=3.0,
                       key=hil.node_key(0x0999))                                      # forged
    commission.command(c.CMD_REBIRTH, counter=1)                                   # replayed
    board.console.wait_for(r"refused")
    beat = commission.wait_frame(c.HEARTBEAT, where=lambda f: f.field("refused_commands") >= 2)
    assert beat.field("refused_commands") == 2
    assert board.console.count("threshold=3.0") == 0


@pytest.mark.needs("feed", "broker_control")
def test_every_event_arrives_once_after_an_outage_with_a_reboot(hil, dut, commission, mosquitto):
    mosquitto.stop()                                            # the outage starts
    board = dut(hil.synth(5.0, impulses_s=(1.0, 2.5, 4.0)))
    board.console.wait_for(r"audio feed ended")
    assert board.console.count(r"^event ") == 3
    board.stop()                                                # reboot during the outage
    board.configure(hil.synth(3.0, impulses_s=(1.0, 2.2), seed=2))
    mark = len(board.console.lines)
    board.start()
    board.console.wait_for(r"audio feed ended", after=mark)
    assert board.console.count(r"^event ") == 5
    mosquitto.start()                                           # the broker returns
    deadline = time.monotonic() + 30
    events = set()
    while time.monotonic() < deadline and len(events) < 5:
        time.sleep(0.2)
        events = {(f.node, f.boot, f.seq) for f in list(commission.received)
                  if getattr(f, "ftype", None) == c.EVENT}
    assert len(events) == 5, (events, board.console.lines[-15:])
    assert sorted({boot for _, boot, _ in events}) == [1, 2]
    deadline = time.monotonic() + 15                            # acks empty the node's queue
    while time.monotonic() < deadline:
        beat = commission.wait_frame(c.HEARTBEAT)
        if beat.field("queue_depth") <= 1:
            break
    assert beat.field("queue_depth") <= 1 and beat.field("dropped") == 0


@pytest.mark.needs("feed")
def test_ten_minutes_of_audio_fit_the_heap(hil, dut):
    board = dut(hil.synth(20.0, impulses_s=(5.0, 12.0)), exit_at_end=True, plays=30)
    assert board.wait_exit(timeout=120) == 0, board.console.lines[-10:]
    assert not [line for line in board.console.lines if "MemoryError" in line]
    ended = board.console.wait_for(r"audio feed ended after \d+ samples \((\d+) s\); heap peak (\d+)")
    assert int(ended.group(1)) >= 600
