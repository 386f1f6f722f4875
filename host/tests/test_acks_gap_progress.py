"""A gap whose frames keep coming is not given up (issue 12's fault suite: after a 10-minute
outage the commission gave up gaps after 3 x 5 s while the nodes were still draining their
backlog, acked past them, and the nodes deleted frames they still held)."""
from lwproto import frame as wire
from lwproto import replay

from linewatch.commission.acks import Acknowledger, Downlink

NODE, BOOT = 0x0102, 1
S = 1_000_000


def _acknowledger():
    guard = replay.ReplayGuard()
    downlink = Downlink(1, key_of=lambda node: bytes(32), segment_of=lambda node: 3)
    return guard, Acknowledger(guard, downlink, resend_interval_s=5.0, resend_tries=3)


def _gap_after(guard, acks, highest):
    guard.admit(NODE, BOOT, 1)
    _, gap = guard.admit(NODE, BOOT, highest)
    acks.gap(NODE, *gap, now_us=0)


def test_a_gap_nobody_answers_is_given_up_after_its_tries():
    guard, acks = _acknowledger()
    _gap_after(guard, acks, 100)
    for k in range(3):
        assert len(acks.resends(k * 5 * S)) == 1
    assert acks.give_ups(15 * S) == [(NODE, BOOT, 2, 99)]


def test_a_gap_that_fills_while_asked_is_not_given_up():
    guard, acks = _acknowledger()
    _gap_after(guard, acks, 100)
    seq = 2
    for k in range(10):                      # 50 s: three tries would have given it up at 15 s
        assert len(acks.resends(k * 5 * S)) == 1, k
        for _ in range(8):                   # the node drains 8 of its backlog per interval
            guard.admit(NODE, BOOT, seq)
            seq += 1
        assert acks.give_ups(k * 5 * S + 4 * S) == []
    assert guard.gaps(NODE) == [(BOOT, seq, 99)]


def test_a_gap_that_stops_filling_is_given_up_three_tries_later():
    guard, acks = _acknowledger()
    _gap_after(guard, acks, 100)
    acks.resends(0)
    guard.admit(NODE, BOOT, 2)               # one frame answers the first try
    for k in range(1, 4):
        assert len(acks.resends(k * 5 * S)) == 1
    assert acks.give_ups(20 * S) == [(NODE, BOOT, 3, 99)]


def test_a_node_that_starts_the_range_over_at_each_try_is_not_given_up_while_it_sends():
    """As the firmware does: a resend command marks the whole range unsent, and the node sends
    it again from its oldest frame, stored ones too (the commission refuses those as replays).
    A backlog that takes longer than resend_interval_s to deliver must still get through; only
    what the node no longer holds (its full queue removed 2..49) is given up."""
    guard, acks = _acknowledger()
    _gap_after(guard, acks, 400)
    held = list(range(50, 400))
    sending: list[int] = []
    given_up = []
    for tick in range(0, 300 * 5):               # 300 s in steps of 0.2 s
        now = tick * S // 5
        for _topic, data in acks.resends(now):
            command = wire.decode(data, bytes(32))
            first, last = command.field("first_seq"), command.field("last_seq")
            sending = [seq for seq in held if first <= seq <= last]    # from the range's start
        for seq in sending[:2]:                  # 10 frames/s: 350 frames take 35 s
            if guard.check(NODE, BOOT, seq) == replay.ACCEPT:
                guard.admit(NODE, BOOT, seq)
            acks.arrived(NODE, BOOT, seq, now)
        sending = sending[2:]
        given_up += acks.give_ups(now)
    assert given_up == [(NODE, BOOT, 2, 49)]
    assert guard.gaps(NODE) == []
