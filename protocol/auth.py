# Frame authentication: truncated HMAC-SHA256 under a per-node key.
# CPython uses the standard library's hmac; MicroPython has no hmac module (and its sha256
# has no copy()), so the board computes RFC 2104 HMAC on top of hashlib.sha256. Golden
# vectors and tests hold both to the same bytes. Key derivation (the commission's side, never
# on a node) is in lwproto.hostauth, re-exported here on CPython.
import hashlib
import sys

from .const import TAG_SIZE

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

try:
    import hmac as _hmac

    def hmac_sha256(key, message):
        return _hmac.digest(key, message, "sha256")

    tags_equal = _hmac.compare_digest
except ImportError:  # MicroPython
    _BLOCK = const(64)

    def hmac_sha256(key, message):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = bytes(key) + bytes(_BLOCK - len(key))
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        inner.update(message)
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        outer.update(inner.digest())
        return outer.digest()

    def tags_equal(a, b):
        # constant time for equal lengths: a timing oracle on tags would help a forger
        if len(a) != len(b):
            return False
        diff = 0
        for x, y in zip(a, b):
            diff |= x ^ y
        return diff == 0


def tag(key, message):
    return hmac_sha256(key, message)[:TAG_SIZE]


if sys.implementation.name != "micropython":
    from .hostauth import *  # noqa: E402,F401,F403
