"""The durable frame queue on the MicroPython unix port (128K heap): the same file format and
policy as under CPython, and a queue written by one is read by the other."""
from lwnode.store import EVENT, HEARTBEAT, FrameQueue

BOARD_SCRIPT = r'''
import os
import sys
from lwnode.store import FrameQueue, EVENT, HEARTBEAT

path = sys.argv[1]


def keys(q):
    return [(b, s, k) for b, s, k, _ in q.pending(100)]


q = FrameQueue(path, 5, segments=3, segment_records=4)
print("INHERITED", keys(q))
q.ack(9, 2)
for seq in range(1, 4):
    q.append(1, seq, EVENT, b"event-%d" % seq)
seg = path + "/" + sorted(n for n in os.listdir(path) if n.endswith(".seg"))[-1]
with open(seg, "rb") as f:
    data = f.read()
with open(seg, "wb") as f:
    f.write(data[:-5])  # power lost while writing event 3
q = FrameQueue(path, 5, segments=3, segment_records=4)
print("TORN", keys(q), q.damaged_bytes > 0)
for seq, kind in ((4, HEARTBEAT), (5, HEARTBEAT), (6, EVENT), (7, EVENT)):
    q.append(1, seq, kind, b"frame-%d" % seq)
print("FULL", keys(q), q.coalesced_heartbeats, q.dropped_events)
print("ACKED", q.ack(1, 4))
q = FrameQueue(path, 5, segments=3, segment_records=4)
print("REOPENED", keys(q), q.pending(1)[0][3])
for seq in range(8, 80):
    q.append(1, seq, EVENT, b"x" * 40)
    q.ack(1, seq - 2)
print("SEGMENTS", len([n for n in os.listdir(path) if n.endswith(".seg")]) <= 3, keys(q))
q.append(4, 1, EVENT, b"for-cpython")
'''


def test_queue_on_micropython_and_shared_format(micropython, tmp_path):
    path = tmp_path / "q"
    written = FrameQueue(str(path), 5, segments=3, segment_records=4)
    written.append(9, 1, EVENT, b"from-cpython-1")
    written.append(9, 2, EVENT, b"from-cpython-2")
    written.append(9, 3, HEARTBEAT, b"from-cpython-3")
    script = tmp_path / "board.py"
    script.write_text(BOARD_SCRIPT)
    result = micropython.run(script, str(path), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().split("\n") == [
        "INHERITED [(9, 1, 1), (9, 2, 1), (9, 3, 2)]",
        "TORN [(9, 3, 2), (1, 1, 1), (1, 2, 1)] True",
        # full at 5: the older heartbeats (9, 3) and (1, 4) are coalesced into (1, 5)
        "FULL [(1, 1, 1), (1, 2, 1), (1, 5, 2), (1, 6, 1), (1, 7, 1)] 2 0",
        "ACKED 2",
        "REOPENED [(1, 5, 2), (1, 6, 1), (1, 7, 1)] b'frame-5'",
        "SEGMENTS True [(1, 78, 1), (1, 79, 1)]",
    ]
    back = FrameQueue(str(path), 5, segments=3, segment_records=4)
    assert back.pending(100)[-1] == (4, 1, EVENT, b"for-cpython")


LONG_OUTAGE = r'''
import gc
import os
import sys
from lwnode.store import FrameQueue, EVENT, HEARTBEAT

path = sys.argv[1]
q = FrameQueue(path, 256)
gc.collect()
base = gc.mem_alloc()
for seq in range(1, 1201):  # an outage: 4x the capacity, no acks, heartbeats in between
    q.append(1, seq, HEARTBEAT if seq % 10 == 0 else EVENT, b"e" * 48)
gc.collect()
print("DEPTH", q.depth, q.dropped_events, q.coalesced_heartbeats)
print("HEAP_GROWTH", gc.mem_alloc() - base)
print("SEGMENTS", len(os.listdir(path)))
print("RESENT", len(q.pending(256)))
'''


def test_long_outage_fits_a_128k_heap(micropython, tmp_path):
    script = tmp_path / "outage.py"
    script.write_text(LONG_OUTAGE)
    result = micropython.run(script, str(tmp_path / "q"), heap="128K", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = dict(line.split(" ", 1) for line in result.stdout.strip().split("\n"))
    depth, dropped, coalesced = map(int, figures["DEPTH"].split())
    assert depth == 256 and dropped + coalesced == 1200 - 256
    assert int(figures["SEGMENTS"]) <= 4
    assert int(figures["RESENT"]) == 256
    # the index is allocated once at open; only small transient objects remain
    assert int(figures["HEAP_GROWTH"]) < 4096, figures
