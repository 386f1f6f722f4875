# Firmware updates over the air (SPEC.md section 10): the manifest and chunks of a build
# image, signed for one node, and the image's packing. The commission's side (CPython only; a
# node never imports this module): the node's side is lwnode.update, and tests hold the two to
# the same bytes. The image of a `linewatch build` folder is lwtools.build.update_image.
#
# Signed with HMAC-SHA256 under the node's own key (section 4), not Ed25519: the node already
# holds that key and computes HMAC-SHA256 for every frame, where an Ed25519 verifier is code
# and tables a 128 KB node cannot keep (firmware/README.md "Memory"). The price: whoever holds
# a node's key (the commission, through the master key) can sign builds for that node.
import hashlib
import hmac
import struct

VERSION = 1
MANIFEST = 1
CHUNK = 2
DOMAIN = b"linewatch/update/v1"      # prefixed to every tagged message: no frame tag is ever one
MANIFEST_FORMAT = ">BHIBBBBIHH32s"   # ver|kind, node, update id, fw x.y.z, arch, size, chunk size, chunks, sha256
MANIFEST_SIZE = struct.calcsize(MANIFEST_FORMAT) + 32   # + the full 32-byte tag
CHUNK_HEADER = ">BHIH"               # ver|kind, node, update id, index
CHUNK_TAG = 8
DEFAULT_CHUNK = 128     # a running node's heap is in small pieces: ~600 bytes is its largest hole,
                        # and each chunk is copied a few times on its way in
MAX_CHUNK = 1024
MANIFEST_FIELDS = ("node", "update_id", "release", "arch", "size", "chunk_size", "chunks", "sha256")


class UpdateError(ValueError):
    """A build or a message that cannot be used; the message says which and why."""


def topic(segment, node):
    """Where the commission publishes a node's update messages (QoS 1)."""
    return "lw/%d/%04x/down/update" % (segment, node)


def pack_image(files):
    """The image of [(path, bytes)]: (u16 path length, path, u32 size, bytes) one after the
    other, in path order."""
    out = bytearray()
    for name, data in sorted(files):
        raw = name.encode()
        out += struct.pack(">H", len(raw)) + raw + struct.pack(">I", len(data)) + data
    return bytes(out)


def unpack_image(data):
    """{path: bytes} of an image (what a node writes into its build slot)."""
    files, at = {}, 0
    while at < len(data):
        (n,) = struct.unpack_from(">H", data, at)
        name = data[at + 2:at + 2 + n].decode()
        (size,) = struct.unpack_from(">I", data, at + 2 + n)
        start = at + 6 + n
        files[name] = data[start:start + size]
        at = start + size
    return files


def _tag(key, message):
    return hmac.digest(key, DOMAIN + message, "sha256")


def manifest(key, node, update_id, data, release, arch, chunk_size=DEFAULT_CHUNK):
    """The signed manifest of image `data` for one node; release is (major, minor, patch)."""
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise UpdateError("chunk size %d outside 1..%d" % (chunk_size, MAX_CHUNK))
    if not 0 < update_id <= 0xFFFFFFFF:
        raise UpdateError("update id %d outside 1..4294967295" % update_id)
    count = (len(data) + chunk_size - 1) // chunk_size
    if count > 0xFFFF:
        raise UpdateError("image of %d bytes needs %d chunks; at most 65535" % (len(data), count))
    body = struct.pack(MANIFEST_FORMAT, (VERSION << 4) | MANIFEST, node, update_id,
                       release[0], release[1], release[2], arch, len(data), chunk_size, count,
                       hashlib.sha256(data).digest())
    return body + _tag(key, body)


def chunks(key, node, update_id, data, chunk_size=DEFAULT_CHUNK):
    """The signed chunk messages of image `data`, in order."""
    out = []
    for index, start in enumerate(range(0, len(data), chunk_size)):
        body = struct.pack(CHUNK_HEADER, (VERSION << 4) | CHUNK, node, update_id, index) \
            + data[start:start + chunk_size]
        out.append(body + _tag(key, body)[:CHUNK_TAG])
    return out


def read_manifest(key, message):
    """{field: value} (MANIFEST_FIELDS) of a verified manifest; UpdateError if its length,
    version or tag is wrong."""
    if len(message) != MANIFEST_SIZE:
        raise UpdateError("manifest of %d bytes, expected %d" % (len(message), MANIFEST_SIZE))
    body, tag = message[:-32], message[-32:]
    if body[0] != (VERSION << 4) | MANIFEST:
        raise UpdateError("not a version-1 manifest (first byte 0x%02x)" % body[0])
    if not hmac.compare_digest(tag, _tag(key, body)):
        raise UpdateError("manifest tag does not verify")
    v = struct.unpack(MANIFEST_FORMAT, body)
    return dict(zip(MANIFEST_FIELDS, (v[1], v[2], (v[3], v[4], v[5]), v[6], v[7], v[8], v[9], v[10])))


def read_chunk(key, message):
    """(node, update id, index, data) of a verified chunk message."""
    head = struct.calcsize(CHUNK_HEADER)
    if len(message) < head + CHUNK_TAG or message[0] != (VERSION << 4) | CHUNK:
        raise UpdateError("not a version-1 chunk")
    body, tag = message[:-CHUNK_TAG], message[-CHUNK_TAG:]
    if not hmac.compare_digest(tag, _tag(key, body)[:CHUNK_TAG]):
        raise UpdateError("chunk tag does not verify")
    _, node, update_id, index = struct.unpack_from(CHUNK_HEADER, body)
    return node, update_id, index, body[head:]
