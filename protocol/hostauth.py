# Per-node key derivation: the commission and the provisioning tool derive each node's key from
# the master key; a node only ever holds its own key, so this is not in auth.py (a node would
# intern its names for nothing). Runs on MicroPython too (the golden vector check).
import struct

from .auth import hmac_sha256

_KEY_LABEL = b"linewatch/node-key/v1"


def derive_node_key(master_key, node):
    """The node's own 32-byte key. The node holds only this; the commission holds the master."""
    if len(master_key) != 32:
        raise ValueError("master key must be 32 bytes, got %d" % len(master_key))
    return hmac_sha256(master_key, _KEY_LABEL + struct.pack(">H", node))
