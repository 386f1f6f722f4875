import pytest

from lwproto import const as c, topic
from lwproto.errors import BadTopic


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
