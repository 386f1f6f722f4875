"""Bad input: the decoder raises only ProtocolError subclasses, and any changed bit is caught."""
import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from lwproto import auth, const as c, frame
from lwproto.errors import BadTag, OutOfRange, ProtocolError, UnknownType

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "v1.json").read_text())
VALID = [(bytes.fromhex(v["hex"]), bytes.fromhex(v["key"])) for v in VECTORS["valid"]]
KEY = VALID[0][1]


@settings(max_examples=500)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_protocol_errors(data):
    try:
        frame.decode(data, KEY)
    except ProtocolError as exc:
        assert exc.reason in {"truncated", "unknown_version", "unknown_type", "length", "bad_tag", "out_of_range"}
        assert str(exc)


@settings(max_examples=400)
@given(st.sampled_from(VALID), st.data())
def test_any_changed_bit_fails_verification(valid, data):
    raw, key = valid
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    mutated = bytearray(raw)
    mutated[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ProtocolError):
        frame.decode(bytes(mutated), key)
    assert not _verifies(bytes(mutated), key)


def _verifies(data, key):
    try:
        return frame.verify(data, key)
    except ProtocolError:
        return False


@settings(max_examples=300)
@given(st.sampled_from(VALID), st.binary(min_size=1, max_size=8), st.integers(0, 60))
def test_insertions_and_truncations_are_refused(valid, junk, at):
    raw, key = valid
    at = min(at, len(raw) - 1)
    for mutated in (raw[:at] + junk + raw[at:], raw[:at]):
        with pytest.raises(ProtocolError):
            frame.decode(mutated, key)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(1, 2**32 - 1),
       st.integers(-2**63, 2**63 - 1), st.integers(0, 2), st.integers(0, 10**6),
       st.integers(0, 5), st.integers(0, 100), st.integers(-2**31, 2**31 - 1))
def test_event_round_trip(node, boot, seq, time_us, clock, err, cls, conf, onset):
    key = auth.derive_node_key(b"k" * 32, node)
    values = {"event_class": cls, "confidence": conf / 100, "onset_offset_us": onset, "peak_db": -20.5,
              "duration_ms": 70000, "frequency_hz": 120, "snr_db": 9.9}
    got = frame.decode(frame.encode(key, c.EVENT, node, boot, seq, time_us, clock, err, values), key)
    assert (got.node, got.boot, got.seq, got.time_us, got.clock_source) == (node, boot, seq, time_us, clock)
    assert got.clock_error_us == min(err, c.CLOCK_ERROR_MAX_US)
    fields = got.fields()
    assert fields["duration_ms"] == 65535            # saturates, documented
    assert fields["confidence"] == pytest.approx(conf / 100)
    assert fields["onset_offset_us"] == onset


def test_event_frame_fits_48_bytes():
    assert frame.SIZES[c.EVENT] <= 48


def test_wrong_key_is_bad_tag_naming_the_node():
    raw, _ = VALID[0]
    with pytest.raises(BadTag, match="node 0x0102: bad tag"):
        frame.decode(raw, auth.derive_node_key(b"another master key, of 32 bytes.", 0x0102))


def test_encoder_refuses_out_of_range_fields():
    with pytest.raises(OutOfRange, match="event_class"):
        frame.encode(KEY, c.EVENT, 1, 1, 1, 0, 0, 0, (9, 0.5, 0, 0, 0, 0, 0))
    with pytest.raises(OutOfRange, match="lat"):
        frame.encode(KEY, c.BIRTH, 1, 1, 1, 0, 0, 0, {**VECTORS["valid"][2]["fields"], "lat": 91.0})
    with pytest.raises(OutOfRange, match="seq|header"):
        frame.encode(KEY, c.ACK, 1, 1, 2**32, 0, 0, 0, (1, 1))
    with pytest.raises(UnknownType):
        frame.encode(KEY, 15, 1, 1, 1, 0, 0, 0, ())


def test_short_master_key_refused():
    with pytest.raises(ValueError):
        auth.derive_node_key(b"short", 1)


def test_decode_without_a_key_is_refused_and_unverified_reading_is_named():
    from lwproto import hostframe
    v = json.loads((Path(__file__).parents[1] / "vectors" / "v1.json").read_text())["valid"][0]
    data = bytes.fromhex(v["hex"])
    for decode in (frame.decode, hostframe.decode):
        with pytest.raises(TypeError):
            decode(data, None)
        with pytest.raises(TypeError):
            decode(data)
    forged = data[:-1] + bytes([data[-1] ^ 1])
    assert hostframe.decode_unverified(forged).seq == v["header"]["seq"]   # the tag is not looked at
