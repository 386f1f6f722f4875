# A firmware update over the air (SPEC.md section 10), the node's side. Loaded by a manifest
# under the node's key, once Node.on_downlink has paused the detectors to make room for this
# code and the chunks; the download ends in a reboot (into the new build, or, given up, into
# the one the node runs: Node._listen), so a node that is not updating keeps none of this code
# in RAM. The state of a download is one list (node._power[6]).
#
# The build is written beside the running one: builds live in fw/a and fw/b (the factory
# build in /lib stays as it is); the factory build's lwnode.boot picks the build of each boot:
#     fw/current  the slot of the committed build (none: the factory build)
#     fw/next     a staged build: boot renames it fw/trying and boots it once
#     fw/trying   the build on trial; it commits (fw/current) once it passed its self-test
#                 and the commission acked its birth; a boot that finds fw/trying left over
#                 (the trial crashed, lost power or timed out) drops it (fw/failed) and boots
#                 the committed build again
# The node's queue and counters are in its storage folder, which no update touches.
#
# Names: each one this module holds is interned in RAM for good once it is loaded, and the
# node is a few names short of another qstr pool (firmware/README.md "Memory"), so the
# functions, arguments and texts here reuse names MicroPython or the node already interned.
import hashlib
import os
import struct

from lwproto.auth import hmac_sha256, tags_equal

# SPEC section 10; a longer text than 10 characters is not interned
_NAMES = "fw/image fw/a fw/b fw/next fw/current fw/trying linewatch/update/v1"


def write(path, text):
    """Replace a small file: temp + rename, so a power cut leaves the old text or the new."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    try:
        os.remove(path)          # FAT's rename does not replace
    except OSError:
        pass
    os.rename(path + ".tmp", path)


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def clear(path):
    """Remove a folder and everything in it (an older build in the slot)."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        try:
            os.remove(path + "/" + name)
        except OSError:
            clear(path + "/" + name)
    os.rmdir(path)


def message(node, data):
    """Take one update message; False once no update is in progress (staged, refused before
    a manifest, or a bad image). Each step is a function of its own: a node's heap has room
    for small pieces of code, not for one large one (firmware/README.md "Memory")."""
    if data[0] == 0x11:          # manifest, version 1
        return start(node, data)
    if data[0] != 0x12 or node._power[6] is None or len(data) < 17:
        return refuse(node, "update message before its manifest")
    return step(node, data)


def tag(key, body):
    return hmac_sha256(key, _NAMES.split()[-1].encode() + body)


def start(node, data):
    """A manifest: checked, then a new image is begun (an update in progress is dropped)."""
    body = data[:-32]
    if len(data) != 83 or not tags_equal(data[-32:], tag(node.key, body)):
        return refuse(node, "manifest: bad length or tag")
    v = struct.unpack(">BHIBBBBIHH32s", body)
    state = node._power[6]
    if state is not None and state[4] >= 0 and v[2] == state[0]:
        return True              # this download's manifest again (redelivered on a reconnect)
    path = "%s/%s" % (node.storage.rstrip("/"), "update")
    last = int(read(path) or 0)
    import sys
    if v[1] != node.config.node or v[2] <= last or v[6] != getattr(sys.implementation, "_mpy", 0) >> 10 \
            or not 0 < v[8] <= 1024:
        return refuse(node, "manifest: node 0x%04x, update %d (last %d), arch %d, chunk %d"
                      % (v[1], v[2], last, v[6], v[8]))
    write(path, str(v[2]))       # a replay of this manifest is refused from now on
    try:
        os.mkdir(_NAMES[:2])     # "fw": a short text would be interned
    except OSError:
        pass
    open(_NAMES.split()[0], "wb").close()
    node._power[6] = [v[2], "%d.%d.%d" % v[3:6], v[9], v[10], 0, hashlib.sha256(), node.uptime_s()]
    node.log("update %d: %s, %d bytes in %d chunks; not listening while it downloads"
             % (v[2], node._power[6][1], v[7], v[9]))
    return True


def step(node, data):
    """A chunk: checked, appended to the image and hashed; the last one stages the build."""
    # [id, release, chunk count, sha256, next index (-1: given up), hash, uptime of the last]
    state = node._power[6]
    if state[4] < 0:
        return False             # the rest of a download given up: ignored until a manifest
    body = memoryview(data)[:-8]     # no copy: a chunk's copies are what a full heap lacks
    if not tags_equal(data[-8:], tag(node.key, body)[:8]):
        state[4] = -1            # the update cannot complete: the commission sends it again
        return refuse(node, "update chunk: bad tag")
    v = struct.unpack(">BHIH", body[:9])
    if v[1] != node.config.node or v[2] != state[0] or v[3] > state[4]:
        reason = "update chunk %d of update %d (expected %d of %d)" % (v[3], v[2], state[4], state[0])
        state[4] = -1
        return refuse(node, reason)
    if v[3] < state[4]:
        return True              # a redelivery: already written
    body = body[9:]
    with open(_NAMES.split()[0], "ab") as f:
        f.write(body)
    state[5].update(body)
    state[4] += 1
    state[6] = node.uptime_s()
    if state[4] < state[2]:
        return True
    if state[5].digest() != state[3]:
        state[4] = -1
        return refuse(node, "update %d: image sha256 does not match" % state[0])
    done(node, state)            # the state stays, complete: no listening before the reboot
    return False


def done(node, state):
    """The verified image unpacked into the slot the running build is not in, then a reboot
    into it (boot runs it once, on trial)."""
    image, slot_a, slot_b, staged, current, _, _ = _NAMES.split()
    slot = slot_b if read(current) == slot_a else slot_a
    clear(slot)
    with open(image, "rb") as f:
        while True:
            head = f.read(2)
            if len(head) < 2:
                break
            path = slot + "/" + f.read(struct.unpack(">H", head)[0]).decode()
            left = struct.unpack(">I", f.read(4))[0]
            parts = path.split("/")
            for i in range(1, len(parts)):
                try:
                    os.mkdir("/".join(parts[:i]))
                except OSError:
                    pass
            with open(path, "wb") as out:
                while left:
                    piece = f.read(min(left, 256))
                    out.write(piece)
                    left -= len(piece)
    os.remove(image)
    write(staged, slot)
    node.log("update %d: %s staged in %s, rebooting into it" % (state[0], state[1], slot))
    import asyncio
    asyncio.create_task(reboot(node))


async def reboot(node):
    import asyncio
    await asyncio.sleep(1)       # the last chunk's PUBACK goes out first
    node.board.reset()


def refuse(node, reason):
    """Refuse a message (counted, logged); False once no download runs (the node then reboots
    to listen again: Node._listen)."""
    node._refuse(reason)
    return node._power[6] is not None and node._power[6][4] >= 0   # a bad manifest stops no download


def stop(node, value):
    """The build on trial passed its self-test and its birth is acked (`value`): fw/current
    names its slot from now on, and the node reboots into it (the detectors paused to make
    room for this code; a reboot is their way back)."""
    _, _, _, _, current, trying, _ = _NAMES.split()
    slot = read(trying)
    write(current, slot)
    os.remove(trying)
    node._power[7] = None
    node.log("update: build in %s committed; rebooting into it" % slot)
    import asyncio
    asyncio.create_task(reboot(node))
