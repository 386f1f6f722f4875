# The only exceptions the decoder raises. `reason` is a stable code for counting refusals.


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


class BadTopic(ProtocolError):
    reason = "bad_topic"
