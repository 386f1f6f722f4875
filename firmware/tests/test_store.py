"""The durable frame queue: order, acks, reopen, torn writes, full-queue policy, segment files."""
import os
import shutil

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from lwnode import store
from lwnode.store import EVENT, HEARTBEAT, BIRTH, FrameQueue


def frame(boot, seq, kind=EVENT):
    return bytes([kind]) + boot.to_bytes(2, "big") + seq.to_bytes(4, "big") + b"payload"


def fill(q, boot, seqs, kind=EVENT):
    for seq in seqs:
        q.append(boot, seq, kind, frame(boot, seq, kind))


def keys(q, limit=1000):
    return [(b, s, k) for b, s, k, _ in q.pending(limit)]


def segment_files(path):
    return sorted(n for n in os.listdir(path) if n.endswith(".seg"))


def test_fifo_with_frames_intact_and_survives_reopen(tmp_path):
    q = FrameQueue(str(tmp_path / "q"), 50)
    fill(q, 3, range(1, 6))
    q.append(3, 6, BIRTH, b"birth")
    assert q.depth == 6
    assert q.pending(2) == [(3, 1, EVENT, frame(3, 1)), (3, 2, EVENT, frame(3, 2))]
    again = FrameQueue(str(tmp_path / "q"), 50)
    assert again.pending(10) == q.pending(10)
    assert again.pending(10)[-1] == (3, 6, BIRTH, b"birth")


def test_uplink_marks_hand_out_each_frame_once_until_cleared(tmp_path):
    q = FrameQueue(str(tmp_path / "q"), 6)
    fill(q, 3, range(1, 5))
    assert [s for _, s, _, _ in q.pending(2, True)] == [1, 2]
    assert [s for _, s, _, _ in q.pending(2, True)] == [3, 4]
    assert q.pending(2, True) == []
    assert len(q.pending(10)) == 4                      # a plain read sees every frame
    assert q.mark(3, 2, 3, 0) == 2                      # a resend of 2..3
    assert [s for _, s, _, _ in q.pending(10, True)] == [2, 3]
    q.ack(3, 1)                                         # marks follow their frames
    fill(q, 3, range(5, 9))                             # full: the oldest events make room
    assert [s for _, s, _, _ in q.pending(10, True)] == [5, 6, 7, 8]
    assert q.mark(3, 4, 4, 1) == 0                      # already marked
    assert q.mark(-1, 0, 0, 0) == 6                     # a new connection: all again
    assert [s for _, s, _, _ in q.pending(10, True)] == [3, 4, 5, 6, 7, 8]


def test_ack_removes_only_that_boot_up_to_seq_and_is_durable(tmp_path):
    path = str(tmp_path / "q")
    q = FrameQueue(path, 50)
    fill(q, 7, range(1, 4))
    fill(q, 8, range(1, 4))
    assert q.ack(8, 2) == 2
    assert q.ack(8, 2) == 0  # nothing left to ack: nothing written
    assert q.ack(9, 100) == 0
    assert keys(q) == [(7, 1, 1), (7, 2, 1), (7, 3, 1), (8, 3, 1)]
    assert keys(FrameQueue(path, 50)) == keys(q)
    q.ack(7, 3)
    q.ack(8, 3)
    assert q.depth == 0
    assert segment_files(path) == []  # an empty queue leaves no files behind
    assert FrameQueue(path, 50).depth == 0


def test_torn_write_loses_only_that_record(tmp_path):
    path = str(tmp_path / "q")
    q = FrameQueue(path, 50)
    fill(q, 1, range(1, 4))
    (name,) = segment_files(path)
    seg = os.path.join(path, name)
    os.truncate(seg, os.path.getsize(seg) - 5)  # power lost while writing record 3
    q = FrameQueue(path, 50)
    assert keys(q) == [(1, 1, 1), (1, 2, 1)]
    assert q.damaged_bytes == len(store.encode_record(EVENT, 1, 3, frame(1, 3))) - 5
    fill(q, 1, [4])  # goes to a fresh segment, never after the torn bytes
    assert keys(FrameQueue(path, 50)) == [(1, 1, 1), (1, 2, 1), (1, 4, 1)]


def test_damage_inside_a_segment_is_skipped_and_the_rest_recovered(tmp_path):
    path = str(tmp_path / "q")
    q = FrameQueue(path, 50)
    fill(q, 1, range(1, 4))
    seg = os.path.join(path, segment_files(path)[0])
    size = len(store.encode_record(EVENT, 1, 1, frame(1, 1)))
    data = bytearray(open(seg, "rb").read())
    data[size + 13] ^= 0xFF  # a flipped bit in record 2's frame
    open(seg, "wb").write(data)
    q = FrameQueue(path, 50)
    assert keys(q) == [(1, 1, 1), (1, 3, 1)]
    assert q.damaged_bytes == size


def test_full_queue_coalesces_heartbeats_before_dropping_events(tmp_path):
    path = str(tmp_path / "q")
    q = FrameQueue(path, 5)
    for seq, kind in enumerate([HEARTBEAT, EVENT, HEARTBEAT, EVENT, HEARTBEAT], 1):
        q.append(1, seq, kind, frame(1, seq, kind))
    q.append(1, 6, EVENT, frame(1, 6))
    assert keys(q) == [(1, 2, EVENT), (1, 4, EVENT), (1, 5, HEARTBEAT), (1, 6, EVENT)]
    assert (q.coalesced_heartbeats, q.dropped_events) == (2, 0)
    fill(q, 1, [7, 8])  # full again: the only heartbeat is the newest, so the oldest event goes
    assert keys(q) == [(1, 4, EVENT), (1, 5, HEARTBEAT), (1, 6, EVENT), (1, 7, EVENT),
                       (1, 8, EVENT)]
    assert (q.coalesced_heartbeats, q.dropped_events) == (2, 1)
    q.append(1, 9, HEARTBEAT, frame(1, 9, HEARTBEAT))  # a newer heartbeat replaces the old
    assert keys(q) == [(1, 4, EVENT), (1, 6, EVENT), (1, 7, EVENT), (1, 8, EVENT),
                       (1, 9, HEARTBEAT)]
    assert (q.coalesced_heartbeats, q.dropped_events) == (3, 1)
    assert keys(FrameQueue(path, 5)) == keys(q)


def test_full_of_births_drops_the_oldest_record(tmp_path):
    q = FrameQueue(str(tmp_path / "q"), 3)
    fill(q, 1, range(1, 5), kind=BIRTH)
    assert keys(q) == [(1, 2, BIRTH), (1, 3, BIRTH), (1, 4, BIRTH)]
    assert q.dropped_other == 1 and q.dropped_events == 0


def test_acked_segments_are_deleted_and_files_stay_bounded(tmp_path):
    path = str(tmp_path / "q")
    q = FrameQueue(path, 12, segments=3, segment_records=4)
    for seq in range(1, 200):
        fill(q, 2, [seq])
        if seq % 3 == 0:
            q.ack(2, seq - 1)
        assert len(segment_files(path)) <= 3
    assert keys(q) == [(2, 198, 1), (2, 199, 1)]
    assert keys(FrameQueue(path, 12, segments=3, segment_records=4)) == keys(q)


def test_a_pinned_old_frame_forces_compaction_not_growth(tmp_path):
    path = str(tmp_path / "q")
    q = FrameQueue(path, 10, segments=3, segment_records=4)
    fill(q, 1, [1])  # never acked: pins the oldest segment
    for seq in range(1, 60):
        fill(q, 2, [seq])
        q.ack(2, seq)
        assert len(segment_files(path)) <= 3
    assert keys(q) == [(1, 1, 1)]
    assert keys(FrameQueue(path, 10, segments=3, segment_records=4)) == [(1, 1, 1)]


def test_power_cut_during_compaction_keeps_one_copy(tmp_path):
    path = str(tmp_path / "q")
    q = FrameQueue(path, 10, segments=2, segment_records=3)
    fill(q, 1, range(1, 7))
    before = {n: open(os.path.join(path, n), "rb").read() for n in segment_files(path)}
    fill(q, 1, [7])  # needs a third segment: compacts
    expected = keys(q)
    # cut after the rename, before the old segments were deleted
    for name, data in before.items():
        open(os.path.join(path, name), "wb").write(data)
    assert keys(FrameQueue(path, 10, segments=2, segment_records=3)) == expected
    # cut while the copy was being written
    open(os.path.join(path, "compact.tmp"), "wb").write(b"LQ\x00partial")
    again = FrameQueue(path, 10, segments=2, segment_records=3)
    assert keys(again) == expected
    assert "compact.tmp" not in os.listdir(path)


def test_bad_input_is_refused_with_a_clear_error(tmp_path):
    q = FrameQueue(str(tmp_path / "q"), 4)
    with pytest.raises(ValueError, match="kind"):
        q.append(1, 1, 0x80, b"x")
    with pytest.raises(ValueError, match="exceeds"):
        q.append(1, 1, EVENT, bytes(1024 + 1))   # the largest frame a record holds is 1 KB
    with pytest.raises(ValueError, match="out of range"):
        q.append(0x10000, 1, EVENT, b"x")
    with pytest.raises(ValueError, match="capacity"):
        FrameQueue(str(tmp_path / "r"), 1)
    assert q.depth == 0


def test_junk_in_the_folder_is_ignored(tmp_path):
    path = tmp_path / "q"
    path.mkdir()
    (path / "notes.txt").write_text("hello")
    (path / "00000003.seg").write_bytes(os.urandom(300).replace(b"LQ", b"lq"))
    q = FrameQueue(str(path), 4)
    assert q.depth == 0 and q.damaged_bytes == 300
    fill(q, 1, [1])
    assert keys(FrameQueue(str(path), 4)) == [(1, 1, 1)]


def test_crc_fallback_matches_binascii():
    import binascii
    import importlib.util
    spec = importlib.util.spec_from_file_location("store_nocrc", store.__file__)
    src = open(store.__file__).read().replace("from binascii import crc32", "raise ImportError")
    module = importlib.util.module_from_spec(spec)
    exec(compile(src, store.__file__, "exec"), module.__dict__)
    for data in (b"", b"hello", bytes(range(256))):
        assert module.crc32(data) == binascii.crc32(data)
        assert module.crc32(data, 12345) == binascii.crc32(data, 12345)


OPS = st.lists(st.one_of(
    st.tuples(st.just("append"), st.sampled_from([EVENT, HEARTBEAT, BIRTH])),
    st.tuples(st.just("ack"), st.integers(0, 40)),
    st.tuples(st.just("reopen"), st.just(0)),
), max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(OPS)
def test_reopen_always_restores_the_same_queue(tmp_path, ops):
    path = str(tmp_path / "prop")
    shutil.rmtree(path, ignore_errors=True)
    q = FrameQueue(path, 6, segments=3, segment_records=3)
    seq = 0
    acked = 0
    for op, arg in ops:
        if op == "append":
            seq += 1
            q.append(1, seq, arg, frame(1, seq, arg))
            assert keys(q)[-1] == (1, seq, arg)  # the newest frame is never the one dropped
        elif op == "ack":
            q.ack(1, arg)
            acked = max(acked, min(arg, seq))
        else:
            before = keys(q)
            q = FrameQueue(path, 6, segments=3, segment_records=3)
            assert keys(q) == before
        assert q.depth <= 6
        assert len(segment_files(path)) <= 3
        assert all(s > acked for _, s, _ in keys(q))
        assert [s for _, s, _ in keys(q)] == sorted(s for _, s, _ in keys(q))


def test_smaller_capacity_after_a_config_change_evicts_durably(tmp_path):
    path = str(tmp_path / "q")
    q = FrameQueue(path, 10)
    fill(q, 1, range(1, 8))
    q.append(1, 8, HEARTBEAT, frame(1, 8, HEARTBEAT))
    small = FrameQueue(path, 4)
    assert keys(small) == [(1, 5, 1), (1, 6, 1), (1, 7, 1), (1, 8, HEARTBEAT)]
    assert small.dropped_events == 4
    assert keys(FrameQueue(path, 10)) == keys(small)


def test_storeload_repeats_the_record_kinds_of_store():
    # const() values are not importable on a board, so storeload has its own copies
    from lwnode import storeload
    for name in ("_MAGIC", "_ACK", "_REMOVE", "_BASE"):
        assert getattr(storeload, name) == getattr(store, name), name
