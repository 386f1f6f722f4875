# A verified command frame from the commission, applied once (SPEC.md 3.6). Imported with the
# node and kept (~1.5 KB of heap): loaded only when a command arrived, into a heap the running
# node had fragmented, its import failed now and then with MemoryError (a 592-byte block at
# 128K) and the command was lost.
import asyncio

from lwproto import const as c


def run(node, f):
    """Apply `f` unless it is not newer than the last command applied; its counter is kept in
    flash (temp + rename, so a power cut leaves the old counter or the new)."""
    last = node._last_command
    if (f.boot, f.seq) <= last:
        return node._refuse("replayed command (boot %d seq %d, last %d/%d)"
                            % (f.boot, f.seq, last[0], last[1]))
    node._last_command = (f.boot, f.seq)
    tmp = node._command_path + ".tmp"
    try:
        with open(tmp, "w") as out:
            out.write("%d %d" % node._last_command)
        import os
        os.rename(tmp, node._command_path)
    except OSError as exc:
        node.log_once(6, "command counter not saved: %r" % (exc,))   # node's _COMMAND cause
    v = f.fields()
    name = c.COMMAND_NAMES.get(v["command"], "?")
    detector = node.detector
    try:
        if name == "set_threshold":
            cls = v["event_class"]
            detector.set_threshold(cls, v["threshold"])
            if v["refractory_ms"]:
                detector.set_refractory(cls, v["refractory_ms"])
            detail = "%s threshold=%s refractory_ms=%d applied" % (
                c.CLASS_NAMES[cls], v["threshold"], detector.refractory_ms(cls))
        elif name == "rebirth":
            node._enqueue(c.BIRTH, node.birth())
            detail = "birth seq %d queued" % node.seq
        elif name == "resend":
            boot, first, last = v["boot"], v["first_seq"], v["last_seq"]
            again = node.queue.mark(boot, first, last, 0)
            node._unsent = True
            node._wake.set()
            detail = "boot %d seq %d..%d: %d frames again" % (boot, first, last, again)
        elif name == "reboot":
            asyncio.create_task(reboot(node, v["delay_s"]))
            detail = "due in %d s" % v["delay_s"]
        else:
            raise ValueError("unknown command")
    except ValueError as exc:
        return node._refuse("command %s: %s" % (name, exc))
    node.log("command %s %s (commission boot %d seq %d)" % (name, detail, f.boot, f.seq))


async def reboot(node, delay_s):
    await asyncio.sleep(delay_s)
    node.log("rebooting on command")
    node.board.reset()
