"""The commission's fast decode (lwproto.hostframe) against the reference lwproto.frame.decode:
the same Frame for every valid frame, the same error class and message for every bad one."""
import json
import struct
from pathlib import Path

from hypothesis import given, settings, strategies as st

from lwproto import auth, const as c, frame, hostframe
from lwproto.errors import ProtocolError

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "v1.json").read_text())
KEY = bytes.fromhex(VECTORS["valid"][0]["key"])


def outcome(decode, data, key):
    try:
        f = decode(data, key)
    except ProtocolError as exc:
        return type(exc), exc.reason, str(exc)
    return (type(f), f.ftype, f.node, f.boot, f.seq, f.time_us, f.clock_source, f.clock_error_us,
            tuple((type(v), v) for v in f.values), type(f.tag), f.tag)


def same(data, key):
    expected = outcome(frame.decode, data, key)
    assert outcome(hostframe.decode, data, key) == expected
    return expected


def test_every_valid_vector_decodes_the_same():
    for v in VECTORS["valid"]:
        data, key = bytes.fromhex(v["hex"]), bytes.fromhex(v["key"])
        assert same(data, key)[0] is frame.Frame
        assert outcome(lambda d, k: hostframe.decode_unverified(d), data, None) == outcome(frame.decode, data, key)
        assert same(bytearray(data), key)[0] is frame.Frame


def test_every_invalid_vector_is_refused_the_same():
    for v in VECTORS["invalid"]:
        result = same(bytes.fromhex(v["hex"]), bytes.fromhex(v["key"]))
        assert issubclass(result[0], ProtocolError), v["name"]


def test_a_wrong_key_is_refused_the_same():
    for v in VECTORS["valid"]:
        assert same(bytes.fromhex(v["hex"]), b"k" * 32)[1] == "bad_tag"


@st.composite
def valid_frames(draw):
    """A well-formed frame of any type, every payload field anywhere in its wire range."""
    ftype = draw(st.sampled_from(sorted(c.TYPE_NAMES)))
    header = (
        (c.VERSION << 4) | ftype,
        draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)), draw(st.integers(1, 0xFFFFFFFF)),
        draw(st.integers(-(1 << 63), (1 << 63) - 1)), draw(st.integers(0, 2)), draw(st.integers(0, 0xFFFF)),
    )
    specs = frame.fields(ftype)
    raws = [draw(st.integers(s[3], s[4])) for s in specs]
    body = struct.pack(c.HEADER_FORMAT + "".join(s[1] for s in specs), *header, *raws)
    return body + auth.tag(KEY, body)


@settings(max_examples=400)
@given(valid_frames())
def test_generated_valid_frames_decode_the_same(data):
    assert same(data, KEY)[0] is frame.Frame


@settings(max_examples=300)
@given(valid_frames(), st.data())
def test_generated_frames_with_one_field_out_of_range_are_refused_the_same(data, draw):
    """Overwrite one byte anywhere (re-tagged, so the range checks are what decides)."""
    at = draw.draw(st.integers(0, len(data) - c.TAG_SIZE - 1))
    body = bytearray(data[:-c.TAG_SIZE])
    body[at] = draw.draw(st.integers(0, 255))
    same(bytes(body) + auth.tag(KEY, bytes(body)), KEY)


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_random_bytes_are_refused_the_same(data):
    same(data, KEY)


# ---- encode: CPython's frame.encode is hostframe.encode; the node's is the reference ------

def encoded(encode, *args):
    try:
        return encode(*args)
    except ProtocolError as exc:
        return type(exc), exc.reason, str(exc)


def same_encoding(*args):
    expected = encoded(hostframe.reference_encode, *args)
    assert encoded(hostframe.encode, *args) == expected
    return expected


def test_cpython_encodes_with_hostframe():
    assert frame.encode is hostframe.encode


def test_every_valid_vector_encodes_the_same_by_name_and_in_order():
    for v in VECTORS["valid"]:
        h, key = v["header"], bytes.fromhex(v["key"])
        head = (key, v["type"], v["node"], h["boot"], h["seq"], h["time_us"], h["clock_source"],
                h["clock_error_us"])
        assert same_encoding(*head, v["fields"]) == bytes.fromhex(v["hex"]), v["name"]
        ordered = tuple(v["fields"][s[0]] for s in frame.fields(v["type"]))
        assert same_encoding(*head, ordered) == bytes.fromhex(v["hex"]), v["name"]


def test_what_encode_refuses_is_refused_the_same():
    event = (1, 0.5, 0, -20.0, 10, 100, 12.0)
    base = (KEY, c.EVENT, 0x0102, 1, 5, 1795000000000000, c.CLOCK_NTP, 1000)
    cases = [
        (KEY, 15, 0x0102, 1, 5, 0, 1, 1000, ()),                     # unknown type
        base[:6] + (3, 1000, event),                                  # clock source
        base + (event[:-1],),                                         # a value short
        base + ({"event_class": 1},),                                 # fields missing
        base + ((9,) + event[1:],),                                   # class out of range
        base[:3] + (70000,) + base[4:] + (event,),                    # boot over 16 bits
        base[:4] + (0x1_0000_0000,) + base[5:] + (event,),            # seq over 32 bits
    ]
    for args in cases:
        result = same_encoding(*args)
        assert isinstance(result, tuple) and issubclass(result[0], ProtocolError), args
    # a clock error over the maximum is clamped, not refused; a saturating field clamps
    assert isinstance(same_encoding(*base[:7], 10 ** 9, (1, 0.5, 0, -9999.0, 70000, 100, 12.0)), bytes)


@settings(max_examples=300)
@given(valid_frames())
def test_generated_frames_encode_the_same(data):
    f = frame.decode(data, KEY)
    args = (KEY, f.ftype, f.node, f.boot, f.seq, f.time_us, f.clock_source, f.clock_error_us)
    assert same_encoding(*args, f.values) == data
    assert same_encoding(*args, f.fields()) == data
