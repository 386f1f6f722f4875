"""The node's power on a board: what its birth frame advertises (deep sleep) is what it does.
On a low battery it sends its sleep notice, waits for the commission's ack, disconnects
cleanly (no will), sleeps and wakes as a new boot whose heartbeat says how long it slept."""
import pytest

from lwproto import const as c


@pytest.mark.needs("feed", "battery")
def test_a_low_battery_sends_the_sleep_notice_sleeps_and_wakes_as_a_new_boot(hil, dut, commission):
    board = dut(hil.synth(2.0), realtime=True, plays=0, battery_mv=3300,
                power={"sleep_below_mv": 3350, "low_battery_sleep_s": 2, "save_heartbeat_s": 1})
    birth = commission.wait_frame(c.BIRTH)
    assert birth.field("capabilities") & c.CAP_DEEP_SLEEP          # it says it sleeps ...
    notice = commission.wait_frame(c.SLEEP)                        # ... and it does
    assert (notice.field("reason"), notice.field("sleep_s")) == (c.SLEEP_LOW_BATTERY, 2)
    assert notice.boot == birth.boot
    board.console.wait_for(r"unix board: deep sleep 2000 ms")
    woke = commission.wait_frame(c.BIRTH, timeout=20, where=lambda f: f.boot == birth.boot + 1)
    beat = commission.wait_frame(c.HEARTBEAT, where=lambda f: f.boot == woke.boot)
    assert 2 <= beat.field("slept_s") <= 3 and beat.field("power") == 1
    assert beat.field("heartbeat_s") == 1
    assert not [f for f in commission.received if getattr(f, "ftype", None) == c.DEATH]
