import pytest

from lwproto import const as c, topic
from lwproto.topic import BadTopic


def test_uplink_and_downlink_topics():
    assert topic.uplink(3, 0x0102, c.EVENT) == "lw/3/0102/event"
    assert topic.uplink(3, 0x0102, c.DEATH) == "lw/3/0102/death"
    assert topic.downlink(3, 0xABCD) == "lw/3/abcd/down"
    assert topic.parse("lw/3/0102/heartbeat") == (3, 0x0102, "heartbeat")
    assert topic.uplink_filter() == "lw/+/+/+" and topic.uplink_filter(3) == "lw/3/+/+"


@pytest.mark.parametrize("bad", ["", "lw", "lw/3/0102", "xx/3/0102/event", "lw/3/0102/evil",
                                 "lw/300/0102/event", "lw/a/0102/event", "lw/3/zz12/event",
                                 "lw/3/102/event", "lw/3/0102/event/extra"])
def test_bad_topics_are_refused_with_a_reason(bad):
    with pytest.raises(BadTopic):
        topic.parse(bad)


# Each of these was accepted (or raised a plain ValueError) while SPEC section 1 allows only
# one spelling: segment in decimal without leading zeros, node as four lowercase hex digits.
@pytest.mark.parametrize("bad", ["lw/003/0102/event", "lw/03/0102/event", "lw/3/1_02/event",
                                 "lw/3/ 102/event", "lw/3/102 /event", "lw/ 3/0102/event",
                                 "lw/3/0x12/event", "lw/3/01A2/event", "lw/3/ABCD/down",
                                 "lw/\u00b2/0102/event", "lw/\u0663/0102/event",
                                 "lw/3/\uff10\uff11\uff10\uff12/event", "lw/+3/0102/event",
                                 "lw/3/+102/event", "lw/3/-102/event", "lw/1_0/0102/event"])
def test_only_the_spec_spelling_is_accepted(bad):
    with pytest.raises(BadTopic):
        topic.parse(bad)


def test_segment_zero_and_255_and_every_hex_digit():
    assert topic.parse("lw/0/0001/event") == (0, 1, "event")
    assert topic.parse("lw/255/ffff/down") == (255, 0xFFFF, "down")
    assert topic.parse("lw/10/abcd/birth") == (10, 0xABCD, "birth")


def test_any_text_either_refused_or_the_canonical_spelling():
    from hypothesis import given, settings, strategies as st
    tricky = "0123456789abcdefABCDEF _+-x\u00b2\u0663\uff10/"
    piece = st.one_of(st.text(alphabet=tricky, max_size=5), st.text(max_size=4))
    kinds = st.one_of(st.sampled_from(["event", "down", "birth", "Event", "event "]), st.text(max_size=6))

    @settings(max_examples=1000, deadline=None)
    @given(st.sampled_from(["lw", "lw", "LW", ""]), piece, piece, kinds)
    def check(root, seg, node, kind):
        text = "/".join((root, seg, node, kind))
        try:
            segment, node_id, parsed_kind = topic.parse(text)
        except BadTopic:
            return
        assert text == "lw/%d/%04x/%s" % (segment, node_id, parsed_kind)
    check()
