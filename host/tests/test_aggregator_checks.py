"""Ingest's checks without a broker: each refusal reason, the node it is charged to, and the
remembered topics (the hot path parses a topic once)."""
from __future__ import annotations

import pytest

from lwproto import const, frame as wire, replay, topic as topics
from linewatch import keys
from linewatch.commission import ingest as ingest_mod
from linewatch.commission.ingest import Accepted, Ingest
from linewatch.commission.registry import Registry
from linewatch.commission.store import Refusal, open_store

SEGMENT = 2
NODE = 0x0201
STRANGER = 0x0777
T0 = 1795000000000000


def event(key, node=NODE, seq=1, boot=1):
    return wire.encode(key, const.EVENT, node, boot, seq, T0, const.CLOCK_GPS_PPS, 3,
                       {"event_class": 1, "confidence": 0.5, "onset_offset_us": 0, "peak_db": -10.0,
                        "duration_ms": 10, "frequency_hz": 50, "snr_db": 10.0})


@pytest.fixture
def checks(tmp_path):
    master = keys.create_master_key(tmp_path / "master.key")
    store = open_store(str(tmp_path / "lw.db"))
    Registry(store).add(NODE, SEGMENT, 48.0, 37.0)
    yield Ingest(Registry(store), master, replay.ReplayGuard()), keys.derive(master, NODE)
    store.close()


def refusal(result) -> tuple[str, int]:
    assert isinstance(result, Refusal), result
    return result.reason, result.node


UP = topics.uplink(SEGMENT, NODE, const.EVENT)


def test_accepted_frame_carries_frame_topic_and_gap(checks):
    ingest, key = checks
    first = ingest.process(UP, event(key, seq=1), 10)
    assert isinstance(first, Accepted) and first.frame.seq == 1 and first.gap is None
    later = ingest.process(UP, event(key, seq=4), 11)
    assert isinstance(later, Accepted) and later.gap == (1, 2, 3) and later.segment == SEGMENT
    assert later.raw == event(key, seq=4) and later.topic == UP and later.received_us == 11


def test_each_refusal_named_and_charged_to_the_right_node(checks):
    ingest, key = checks
    good = event(key)
    topic_node = topics.uplink(SEGMENT, 0x0999, const.EVENT)
    assert refusal(ingest.process(UP, good[:1], 1)) == ("truncated", NODE)
    assert refusal(ingest.process(topic_node, good[:-1], 1)) == ("length", 0x0999)
    assert refusal(ingest.process(topic_node, bytes([0x21]) + good[1:], 1)) == ("unknown_version", 0x0999)
    assert refusal(ingest.process(UP, good[:-1] + bytes([good[-1] ^ 1]), 1)) == ("bad_tag", NODE)
    stranger = event(keys.derive(b"\0" * 32, STRANGER), node=STRANGER)
    assert refusal(ingest.process(UP, stranger, 1)) == ("unknown_node", STRANGER)
    assert refusal(ingest.process(topics.uplink(SEGMENT, 0x0202, const.EVENT), good, 1)) == ("wrong_topic", NODE)
    assert refusal(ingest.process("lw/x", good, 1))[0] == "bad_topic"
    assert refusal(ingest.process(UP, bytes(300), 1))[0] == "oversized"
    assert isinstance(ingest.process(UP, good, 1), Accepted)
    assert refusal(ingest.process(UP, good, 1)) == ("replay", NODE)


def test_topics_remembered_but_bounded_and_bad_ones_never(checks, monkeypatch):
    ingest, key = checks
    monkeypatch.setattr(ingest_mod, "TOPICS_KEPT", 3)
    for seq in range(1, 4):
        assert isinstance(ingest.process(UP, event(key, seq=seq), seq), Accepted)
    assert list(ingest._topics) == [UP]
    for n in range(5):
        ingest.process(topics.uplink(n, 0x0001, const.EVENT), event(key), 1)
        ingest.process("junk/%d" % n, event(key), 1)
    assert 1 <= len(ingest._topics) <= 3 and not any(t.startswith("junk") for t in ingest._topics)
    assert isinstance(ingest.process(UP, event(key, seq=9), 9), Accepted)


def test_canonical_row_bytes_unchanged_by_the_texts_cache():
    """The hash chain's canonical bytes, spelled out: a cached texts part must not change them."""
    import struct
    from linewatch.commission.store import EvidenceRow, canonical
    row = EvidenceRow(7, "frame", "event", NODE, 1, 9, UP, T0, b"\x01\x02", "tag_ok", "")
    texts = b"".join(struct.pack(">I", len(t)) + t for t in (b"frame", b"event", UP.encode(), b"tag_ok", b""))
    expected = struct.pack(">qiiqq", 7, NODE, 1, 9, T0) + texts + struct.pack(">I", 2) + b"\x01\x02"
    for _ in range(2):   # first computed, then from the cache
        assert row.canonical() == expected == canonical(*row[:11])
    other = row._replace(note='{"é": 1}')
    assert other.canonical() != expected and b'{"\xc3\xa9": 1}' in other.canonical()


def birth(key, segment, node=NODE, seq=1):
    return wire.encode(key, const.BIRTH, node, 1, seq, T0, const.CLOCK_GPS_PPS, 3,
                       {"fw_major": 0, "fw_minor": 1, "fw_patch": 0, "board": 4, "segment": segment,
                        "lat": 48.0, "lon": 37.0, "alt_m": 100, "position_error_m": 5, "sensors": 15,
                        "capabilities": 16, "sample_rate_hz": 16000})


def test_birth_naming_another_segment_than_its_topic_is_refused_with_its_own_reason(checks):
    ingest, key = checks
    up = topics.uplink(SEGMENT, NODE, const.BIRTH)
    assert refusal(ingest.process(up, birth(key, SEGMENT + 1), 1)) == ("segment_mismatch", NODE)
    assert isinstance(ingest.process(up, birth(key, SEGMENT, seq=2), 2), Accepted)


@pytest.mark.parametrize("spelling", ["lw/02/0201/event", "lw/2/201/event", "lw/2/0_20/event",
                                      "lw/\u00b2/0201/event", "lw/2/\uff10201/event", "lw/2/ 201/event"])
def test_other_spellings_of_a_nodes_topic_are_bad_topics_never_internal(checks, spelling):
    ingest, key = checks
    assert refusal(ingest.process(spelling, event(key), 1))[0] == "bad_topic"
    assert ingest.refused["internal"] == 0
