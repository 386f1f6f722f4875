"""Update messages (SPEC.md section 10): the commission's signer and reader, byte for byte.
The node's side (lwnode.update) is held to the same bytes on the virtual board
(hil-tests/test_node_update.py)."""
import hashlib
import hmac

import pytest

from lwproto import hostupdate as update

KEY = bytes(range(32))


def test_manifest_layout_and_tag():
    data = bytes(range(256)) * 5
    m = update.manifest(KEY, 0x0102, 7, data, (0, 2, 1), 2, chunk_size=512)
    assert len(m) == update.MANIFEST_SIZE == 83
    assert m[0] == 0x11 and m[1:3] == b"\x01\x02" and m[3:7] == b"\x00\x00\x00\x07"
    assert m[7:10] == bytes((0, 2, 1)) and m[10] == 2
    assert m[11:15] == (1280).to_bytes(4, "big") and m[15:17] == (512).to_bytes(2, "big")
    assert m[17:19] == (3).to_bytes(2, "big") and m[19:51] == hashlib.sha256(data).digest()
    assert m[51:] == hmac.digest(KEY, b"linewatch/update/v1" + m[:51], "sha256")
    read = update.read_manifest(KEY, m)
    assert (read["node"], read["update_id"], read["release"], read["chunks"]) == (0x0102, 7, (0, 2, 1), 3)


def test_chunks_cover_the_image_and_verify():
    data = bytes(range(200)) * 6
    parts = update.chunks(KEY, 0x0102, 7, data, chunk_size=500)
    assert len(parts) == 3 and len(parts[-1]) == 9 + 200 + 8
    assert parts[1][:9] == bytes((0x12, 0x01, 0x02, 0, 0, 0, 7, 0, 1))
    assert parts[1][-8:] == hmac.digest(KEY, b"linewatch/update/v1" + parts[1][:-8], "sha256")[:8]
    got = [update.read_chunk(KEY, p) for p in parts]
    assert [g[2] for g in got] == [0, 1, 2] and b"".join(g[3] for g in got) == data


@pytest.mark.parametrize("flip", [0, 5, 40, 82])
def test_a_changed_byte_or_another_key_is_refused(flip):
    m = bytearray(update.manifest(KEY, 0x0102, 7, b"x" * 100, (0, 1, 1), 2))
    with pytest.raises(update.UpdateError):
        update.read_manifest(bytes(32), bytes(m))
    m[flip] ^= 1
    with pytest.raises(update.UpdateError):
        update.read_manifest(KEY, bytes(m))
    c = bytearray(update.chunks(KEY, 0x0102, 7, b"x" * 100)[0])
    c[-9] ^= 1
    with pytest.raises(update.UpdateError):
        update.read_chunk(KEY, bytes(c))


def test_image_packing_round_trips():
    files = [("lib/lwproto/frame.mpy", b"abc"), ("lib/lwnode/node.mpy", b"\x4d" * 300)]
    data = update.pack_image(files)
    assert data[:2] == (19).to_bytes(2, "big") and data[2:21] == b"lib/lwnode/node.mpy"
    assert update.unpack_image(data) == dict(files)


def test_topic_and_limits():
    assert update.topic(3, 0x0102) == "lw/3/0102/down/update"
    with pytest.raises(update.UpdateError, match="chunk size"):
        update.manifest(KEY, 1, 1, b"x", (0, 1, 0), 2, chunk_size=2000)
    with pytest.raises(update.UpdateError, match="update id"):
        update.manifest(KEY, 1, 0, b"x", (0, 1, 0), 2)
