# Frame authentication: truncated HMAC-SHA256 under a per-node key.
# CPython uses the standard library's hmac; MicroPython has no hmac module (and its sha256
# has no copy()), so the board computes RFC 2104 HMAC on top of hashlib.sha256. Golden
# vectors and tests hold both to the same bytes.
import hashlib
import struct

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

_KEY_LABEL = const(b"linewatch/node-key/v1")


def derive_node_key(master_key, node):
    """The node's own 32-byte key. The node holds only this; the commission holds the master."""
    if len(master_key) < 16:
        raise ValueError("master key must be at least 16 bytes")
    return hmac_sha256(master_key, _KEY_LABEL + struct.pack(">H", node))


def tag(key, message):
    return hmac_sha256(key, message)[:TAG_SIZE]
