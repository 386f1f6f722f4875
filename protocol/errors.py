# The only exceptions the decoder raises. `reason` is a stable code for counting refusals.
# BadTopic (topic parsing: the commission's side only) is lwproto.topic.BadTopic (defined in
# hosttopic): a node does not intern its names (firmware/README.md "Memory").


class ProtocolError(ValueError):
    reason = "invalid"


class Truncated(ProtocolError):
    reason = "truncated"


class UnknownVersion(ProtocolError):
    reason = "unknown_version"


class UnknownType(ProtocolError):
    reason = "unknown_type"


class LengthMismatch(ProtocolError):
    reason = "length"


class BadTag(ProtocolError):
    reason = "bad_tag"


class OutOfRange(ProtocolError):
    reason = "out_of_range"
