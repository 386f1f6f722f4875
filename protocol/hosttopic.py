# The topic scheme's parts the node never uses: the commission, tools and tests do (see
# topic.py, which re-exports them on CPython).
from .const import ACK, BIRTH, COMMAND, DEATH, EVENT, HEARTBEAT, SLEEP
from .errors import ProtocolError

ROOT = "lw"
DOWN = "down"
KIND_OF_TYPE = {EVENT: "event", HEARTBEAT: "heartbeat", BIRTH: "birth", DEATH: "death",
                SLEEP: "sleep", COMMAND: DOWN, ACK: DOWN}
UPLINK_KINDS = ("event", "heartbeat", "birth", "death", "sleep")
COMMISSION_STATE = "lw/commission/state"
ALERTS = "lw/alerts"


class BadTopic(ProtocolError):
    reason = "bad_topic"


def uplink_filter(segment=None):
    """Subscription filter for every node's uplink, of one segment or all."""
    return "%s/%s/+/+" % (ROOT, "+" if segment is None else "%d" % segment)


def parse(topic):
    """(segment, node, kind) of a node topic; BadTopic for anything else."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != ROOT:
        raise BadTopic("not a node topic: %r" % topic)
    seg, node, kind = parts[1], parts[2], parts[3]
    if kind not in UPLINK_KINDS and kind != DOWN:
        raise BadTopic("unknown kind %r in topic %r" % (kind, topic))
    if not seg.isdigit() or int(seg) > 255:
        raise BadTopic("bad segment %r in topic %r" % (seg, topic))
    if len(node) != 4:
        raise BadTopic("bad node id %r in topic %r" % (node, topic))
    try:
        node_id = int(node, 16)
    except ValueError:
        raise BadTopic("bad node id %r in topic %r" % (node, topic))
    return int(seg), node_id, kind
