# Topic scheme: lw/<segment>/<node>/<kind>; segment decimal 0-255, node 4 lowercase hex digits.
#
# Only what the node publishes and subscribes is here: every name a loaded module holds is
# interned in the node's RAM for good (firmware/README.md "Memory"). The commission's and
# tools' parts (parse, filters, the fixed topics) are in lwproto.hosttopic, and on CPython
# this module carries them too, so `topic.parse` reads the same everywhere off the board.
import sys

from .const import TYPE_NAMES


def uplink(segment, node, ftype):
    """A node's topic for an uplink frame type (EVENT, HEARTBEAT, BIRTH, DEATH, SLEEP)."""
    return "lw/%d/%04x/%s" % (segment, node, TYPE_NAMES[ftype])


def downlink(segment, node):
    return "lw/%d/%04x/down" % (segment, node)


if sys.implementation.name != "micropython":
    from .hosttopic import *  # noqa: E402,F401,F403
