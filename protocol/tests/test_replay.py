from hypothesis import given, strategies as st

from lwproto.replay import ACCEPT, OLD_BOOT, REPLAY, ReplayGuard, newer


def take(guard, node, boot, seq):
    verdict = guard.check(node, boot, seq)
    gap = guard.accept(node, boot, seq) if verdict == ACCEPT else None
    return verdict, gap


def test_in_order_stream_has_no_gaps_and_refuses_replays():
    g = ReplayGuard()
    for seq in range(1, 6):
        assert take(g, 1, 3, seq) == (ACCEPT, None)
    assert g.check(1, 3, 5) == REPLAY
    assert g.check(1, 3, 2) == REPLAY
    assert g.contiguous(1, 3) == 5


def test_gap_is_reported_then_filled_by_resend():
    g = ReplayGuard()
    take(g, 1, 3, 1)
    assert take(g, 1, 3, 5) == (ACCEPT, (3, 2, 4))
    assert g.gaps(1) == [(3, 2, 4)]
    assert g.contiguous(1, 3) == 1
    assert take(g, 1, 3, 3) == (ACCEPT, None)
    assert g.gaps(1) == [(3, 2, 2), (3, 4, 4)]
    take(g, 1, 3, 2)
    take(g, 1, 3, 4)
    assert g.gaps(1) == [] and g.contiguous(1, 3) == 5
    assert g.check(1, 3, 3) == REPLAY


def test_first_frame_of_a_boot_reveals_earlier_missing_frames():
    g = ReplayGuard()
    assert take(g, 9, 1, 4) == (ACCEPT, (1, 1, 3))


def test_old_boots_refused_but_a_boot_missed_during_an_outage_is_accepted():
    g = ReplayGuard(boots_kept=2)
    take(g, 1, 5, 1)
    take(g, 1, 7, 1)                      # the node rebooted twice while we saw nothing
    assert g.check(1, 6, 1) == ACCEPT     # boot 6's queued frames still arrive
    take(g, 1, 8, 1)                      # boots kept: 7, 8
    assert g.check(1, 5, 2) == OLD_BOOT
    assert g.check(1, 6, 1) == OLD_BOOT
    assert g.boots(1) == [7, 8]


def test_forget_lets_the_ack_advance_past_frames_the_node_dropped():
    g = ReplayGuard()
    take(g, 1, 1, 1)
    take(g, 1, 1, 10)
    g.forget(1, 1, 2, 9)
    assert g.contiguous(1, 1) == 10 and g.gaps(1) == []


def test_nodes_are_independent():
    g = ReplayGuard()
    take(g, 1, 1, 1)
    assert g.check(2, 1, 1) == ACCEPT


def test_death_valid_once_and_only_for_the_latest_birth():
    g = ReplayGuard()
    g.note_birth(1, 4, 1)
    g.note_birth(1, 4, 9)                 # reconnected: new birth, new will
    assert g.check_death(1, 4, 1) == REPLAY
    assert g.check_death(1, 4, 9) == ACCEPT
    g.note_death(1, 4, 9)
    assert g.check_death(1, 4, 9) == REPLAY
    g.note_birth(1, 5, 1)
    assert g.check_death(1, 4, 9) == OLD_BOOT


def test_newer_orders_boot_then_seq():
    assert newer(2, 1, 1, 99) and newer(1, 5, 1, 4)
    assert not newer(1, 4, 1, 4) and not newer(1, 99, 2, 1)


@given(st.permutations(list(range(1, 40))))
def test_any_arrival_order_accepts_each_seq_exactly_once(order):
    g = ReplayGuard()
    accepted = [seq for seq in order + order if take(g, 1, 1, seq)[0] == ACCEPT]
    assert sorted(accepted) == list(range(1, 40))
    assert g.contiguous(1, 1) == 39 and g.gaps(1) == []


@given(st.lists(st.tuples(st.integers(1, 2), st.integers(1, 7), st.integers(1, 12)), max_size=60),
       st.integers(1, 3))
def test_admit_is_check_then_accept(arrivals, boots_kept):
    """admit's in-order shortcut decides and records exactly what check + accept do."""
    slow, fast = ReplayGuard(boots_kept), ReplayGuard(boots_kept)
    for node, boot, seq in arrivals:
        assert fast.admit(node, boot, seq) == take(slow, node, boot, seq)
        assert fast.gaps(node) == slow.gaps(node) and fast.boots(node) == slow.boots(node)
        assert fast.contiguous(node, boot) == slow.contiguous(node, boot)
