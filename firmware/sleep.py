# The node's deep sleep (firmware/README.md "Power"): the sleep notice, then sleep once the
# commission stored it. Loaded by Node.sleep when the node goes to sleep and unloaded by it:
# that happens at most once per boot, so its code does not stay in RAM.
from lwproto import const as c

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_WAIT_MS = const(30000)    # at most this long for the sleep notice's ack before sleeping


async def sleep(node, delay_s, reason):
    """The sleep notice (reason 0 quiet window, 1 low battery), then deep sleep once the
    commission stored it (or after _WAIT_MS): the board wakes as a new boot."""
    node._enqueue(c.SLEEP, (delay_s, reason))
    node.log("power: sleeping %d s (%s)" % (delay_s, ("quiet window", "low battery")[reason]))
    waited = 0
    while node.queue.depth and waited < _WAIT_MS:
        await node.sleep_ms(250)
        waited += 250
    try:   # for the heartbeats of the next boot (lwnode.boot.self_test reads it: slept_s)
        with open("%s/%s" % (node.storage.rstrip("/"), "sleep"), "w") as f:
            f.write("%d %d" % (node.clock.now_us() // 1000000, delay_s))
    except OSError:
        pass
    client = node._client
    if client is not None and client.connected:
        await client.disconnect()         # cleanly: the broker drops the will (no death)
    node.queue.close()
    node.board.deep_sleep(delay_s * 1000)
