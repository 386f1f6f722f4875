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


def _deliver(guard, acks, seq, now_us):
    """A frame of the node reaches the commission, as the service takes it: stored if new
    (a replay otherwise), and told to the acknowledger either way."""
    if guard.check(NODE, BOOT, seq) == replay.ACCEPT:
        guard.admit(NODE, BOOT, seq)
    acks.arrived(NODE, BOOT, seq, now_us)


def test_a_gap_nobody_answers_is_given_up_after_its_tries():
    guard, acks = _acknowledger()
    _gap_after(guard, acks, 100)
    for k in range(3):
        assert len(acks.resends(k * 5 * S)) == 1
        _deliver(guard, acks, 101 + k, k * 5 * S + S)     # its heartbeats come, the range never
    assert acks.give_ups(15 * S) == [(NODE, BOOT, 2, 99)]


def test_a_gap_that_fills_while_asked_is_not_given_up():
    guard, acks = _acknowledger()
    _gap_after(guard, acks, 100)
    seq = 2
    for k in range(10):                      # 50 s: three tries would have given it up at 15 s
        assert len(acks.resends(k * 5 * S)) == 1, k
        for _ in range(8):                   # the node drains 8 of its backlog per interval
            _deliver(guard, acks, seq, k * 5 * S)
            seq += 1
        assert acks.give_ups(k * 5 * S + 4 * S) == []
    assert guard.gaps(NODE) == [(BOOT, seq, 99)]


def test_a_gap_that_stops_filling_is_given_up_three_tries_later():
    guard, acks = _acknowledger()
    _gap_after(guard, acks, 100)
    acks.resends(0)
    _deliver(guard, acks, 2, 0)              # one frame answers the first try
    for k in range(1, 4):
        assert len(acks.resends(k * 5 * S)) == 1
        _deliver(guard, acks, 100 + k, k * 5 * S + S)     # a heartbeat: it heard the try
    assert acks.give_ups(20 * S) == [(NODE, BOOT, 3, 99)]


def test_a_try_the_node_cannot_have_heard_is_no_try():
    """Nothing of the node comes after a try (its link is down): no further try, no giving up,
    however long; once it is heard again the count goes on."""
    guard, acks = _acknowledger()
    _gap_after(guard, acks, 100)
    assert len(acks.resends(0)) == 1
    for t in range(1, 600):
        assert acks.resends(t * S) == [] and acks.give_ups(t * S) == []
    _deliver(guard, acks, 101, 600 * S)
    assert len(acks.resends(600 * S)) == 1


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
    heartbeat = 400
    restarts = 0
    for tick in range(0, 300 * 5):               # 300 s in steps of 0.2 s
        now = tick * S // 5
        for _topic, data in acks.resends(now):
            command = wire.decode(data, bytes(32))
            first, last = command.field("first_seq"), command.field("last_seq")
            sending = [seq for seq in held if first <= seq <= last]    # from the range's start
            restarts += bool(sending)
        for seq in sending[:2]:                  # 10 frames/s: 350 frames take 35 s
            _deliver(guard, acks, seq, now)
        sending = sending[2:]
        if tick % 50 == 0:                       # a heartbeat every 10 s
            heartbeat += 1
            _deliver(guard, acks, heartbeat, now)
        given_up += acks.give_ups(now)
    assert given_up == [(NODE, BOOT, 2, 49)]
    assert guard.gaps(NODE) == []
    assert restarts == 1          # asked again only once it had sent the whole range


def test_a_node_gone_quiet_mid_range_is_not_given_up_until_heard_again():
    """A node draining a backlog loses its link for a minute (no frame of it at all, not even
    a heartbeat): a try it cannot hear is no try. Giving the range up meanwhile would ack past
    frames it still holds, and it would delete them when it comes back."""
    guard, acks = _acknowledger()
    _gap_after(guard, acks, 400)
    held = list(range(50, 400))
    sending: list[int] = []
    given_up = []
    heartbeat = 400
    for tick in range(0, 400 * 5):               # 400 s in steps of 0.2 s
        now = tick * S // 5
        offline = 20 * S <= now < 80 * S         # the link is down: nothing heard, nothing received
        for _topic, data in acks.resends(now):
            if not offline:
                command = wire.decode(data, bytes(32))
                first, last = command.field("first_seq"), command.field("last_seq")
                sending = [seq for seq in held if first <= seq <= last]
        if now == 80 * S:                        # back: a new connection sends every unacked frame again
            sending = [seq for seq in held if seq > guard.contiguous(NODE, BOOT)]
        if not offline:
            for seq in sending[:2]:
                _deliver(guard, acks, seq, now)
            sending = sending[2:]
            if tick % 50 == 0:                   # a heartbeat every 10 s
                heartbeat += 1
                _deliver(guard, acks, heartbeat, now)
        given_up += acks.give_ups(now)
    assert given_up == [(NODE, BOOT, 2, 49)]
    assert guard.gaps(NODE) == []
