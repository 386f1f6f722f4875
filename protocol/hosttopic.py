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
EVIDENCE_HEAD = "lw/commission/evidence"     # the signed evidence head, retained (JSON, not a frame)
ALERTS = "lw/alerts"
DIGITS = "0123456789"
HEX_DIGITS = "0123456789abcdef"


class BadTopic(ProtocolError):
    reason = "bad_topic"


def uplink_filter(segment=None):
    """Subscription filter for every node's uplink, of one segment or all."""
    return "%s/%s/+/+" % (ROOT, "+" if segment is None else "%d" % segment)


def parse(topic):
    """(segment, node, kind) of a node topic; BadTopic for anything else.

    Exactly SPEC section 1's spelling: the segment in ASCII decimal without leading zeros, the
    node as four lowercase ASCII hex digits. int() alone would also take '003', '1_02', ' 102',
    '0x12' and other scripts' digits: one frame would then have several topics, and ACLs that
    name a node's topic would not cover them all."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != ROOT:
        raise BadTopic("not a node topic: %r" % topic)
    seg, node, kind = parts[1], parts[2], parts[3]
    if kind not in UPLINK_KINDS and kind != DOWN:
        raise BadTopic("unknown kind %r in topic %r" % (kind, topic))
    if not (seg and len(seg) <= 3 and all(ch in DIGITS for ch in seg) and (seg == "0" or seg[0] != "0")
            and int(seg) <= 255):
        raise BadTopic("bad segment %r in topic %r (decimal 0-255, no leading zeros)" % (seg, topic))
    if len(node) != 4 or not all(ch in HEX_DIGITS for ch in node):
        raise BadTopic("bad node id %r in topic %r (four lowercase hex digits)" % (node, topic))
    return int(seg), int(node, 16), kind
