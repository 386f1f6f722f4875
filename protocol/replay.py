# The replay rule (SPEC.md, "Replay rule"): pure bookkeeping, no I/O, no clocks.
#
# Uplink frames of one node form one stream per boot, numbered from 1. Store-and-forward
# means frames arrive late and out of order (a resend fills a gap after newer frames), so
# the rule is not "seq must grow" but "each (boot, seq) is accepted at most once, and boots
# older than the ones being tracked are refused".

ACCEPT = "accept"
REPLAY = "replay"
OLD_BOOT = "old_boot"
GIVEN_UP = "given_up"     # from a range the commission gave up as lost (and recorded so)
_NEXT = (ACCEPT, None)
_LOST_KEPT = 64           # given-up ranges remembered per stream, to name late frames from them
DEATH = 4                 # lwproto.const.DEATH, BIRTH (this module is never on a node)
BIRTH = 3


def newer(boot, seq, last_boot, last_seq):
    """Strict order for streams that never fill gaps (downlink commands on the node)."""
    return boot > last_boot or (boot == last_boot and seq > last_seq)


class _Stream:
    __slots__ = ("highest", "missing", "lost")

    def __init__(self):
        self.highest = 0
        self.missing = []   # sorted, disjoint [first, last] ranges below `highest`
        self.lost = []      # [first, last] ranges given up (forget), newest last

    def was_lost(self, seq):
        for first, last in self.lost:
            if first <= seq <= last:
                return True
        return False

    def has_seen(self, seq):
        if seq > self.highest:
            return False
        for first, last in self.missing:
            if first <= seq <= last:
                return False
        return True

    def take(self, seq):
        """Record seq; returns the new gap (first, last) it reveals, or None."""
        if seq > self.highest:
            gap = (self.highest + 1, seq - 1) if seq > self.highest + 1 else None
            if gap:
                self.missing.append([gap[0], gap[1]])
            self.highest = seq
            return gap
        for i, (first, last) in enumerate(self.missing):
            if first <= seq <= last:
                pieces = []
                if first < seq:
                    pieces.append([first, seq - 1])
                if seq < last:
                    pieces.append([seq + 1, last])
                self.missing[i:i + 1] = pieces
                break
        return None

    def contiguous(self):
        return self.missing[0][0] - 1 if self.missing else self.highest

    def forget(self, first, last):
        """Stop waiting for [first, last]: the node no longer has them (dropped or coalesced)."""
        kept = []
        for a, b in self.missing:
            if b < first or a > last:
                kept.append([a, b])
            else:
                if a < first:
                    kept.append([a, first - 1])
                if b > last:
                    kept.append([last + 1, b])
        self.missing = kept
        self.lost.append([first, last])
        if len(self.lost) > _LOST_KEPT:
            del self.lost[0]


class ReplayGuard:
    """Per node: the last `boots_kept` boots, each with its highest seq and its gaps."""

    def __init__(self, boots_kept=4):
        self.boots_kept = boots_kept
        self._nodes = {}    # node -> {boot: _Stream}
        self._births = {}   # node -> (boot, seq) of the last accepted birth
        self._deaths = {}   # node -> (boot, seq) of the last accepted death

    def check(self, node, boot, seq):
        """ACCEPT, REPLAY, GIVEN_UP or OLD_BOOT for an uplink frame; changes nothing."""
        streams = self._nodes.get(node)
        if not streams:
            return ACCEPT
        stream = streams.get(boot)
        if stream is not None:
            if not stream.has_seen(seq):
                return ACCEPT
            return GIVEN_UP if stream.was_lost(seq) else REPLAY
        if boot > max(streams):
            return ACCEPT
        if len(streams) < self.boots_kept or boot > min(streams):
            return ACCEPT   # a boot never heard from (the node rebooted during an outage)
        return OLD_BOOT

    def admit_frame(self, node, ftype, boot, seq):
        """The whole rule (SPEC section 6) for one uplink frame that decoded and verified:
        (verdict, gap (boot, first, last) it reveals or None)."""
        if ftype == DEATH:
            verdict = self.check_death(node, boot, seq)
            if verdict == ACCEPT:
                self.note_death(node, boot, seq)
            return verdict, None
        verdict, gap = self.admit(node, boot, seq)
        if ftype == BIRTH and verdict == ACCEPT:
            self.note_birth(node, boot, seq)
        return verdict, gap

    def admit(self, node, boot, seq):
        """check(), then accept() if it said ACCEPT: (verdict, gap or None)."""
        streams = self._nodes.get(node)
        if streams:
            stream = streams.get(boot)
            if stream is not None and seq == stream.highest + 1:
                stream.highest = seq   # the usual frame: the next of its stream, no gap, no replay
                return _NEXT
        verdict = self.check(node, boot, seq)
        return verdict, (self.accept(node, boot, seq) if verdict == ACCEPT else None)

    def accept(self, node, boot, seq):
        """Record an accepted frame; returns the gap (boot, first, last) it reveals, or None."""
        streams = self._nodes.setdefault(node, {})
        stream = streams.get(boot)
        if stream is None:
            stream = streams[boot] = _Stream()
            while len(streams) > self.boots_kept:
                del streams[min(streams)]
        gap = stream.take(seq)
        return (boot, gap[0], gap[1]) if gap else None

    def contiguous(self, node, boot):
        """Highest seq of (node, boot) below which nothing is missing: what an ack names."""
        stream = self._nodes.get(node, {}).get(boot)
        return stream.contiguous() if stream else 0

    def gaps(self, node):
        """[(boot, first, last)] still missing for a node, oldest first."""
        out = []
        for boot in sorted(self._nodes.get(node, {})):
            for first, last in self._nodes[node][boot].missing:
                out.append((boot, first, last))
        return out

    def forget(self, node, boot, first, last):
        stream = self._nodes.get(node, {}).get(boot)
        if stream:
            stream.forget(first, last)

    def boots(self, node):
        return sorted(self._nodes.get(node, {}))

    # The death frame (MQTT last will) is composed at connect time, so it carries the (boot,
    # seq) of the birth frame sent on the same connection and sits outside the stream. It is
    # accepted once, when it is not older than the last birth accepted (the will of an older
    # connection) and newer than the last death accepted. A death newer than the last birth
    # is accepted: its connection died before its birth got through (the birth stays in the
    # node's queue and arrives later, as any queued frame).
    def note_birth(self, node, boot, seq):
        last = self._births.get(node)
        if last is None or newer(boot, seq, last[0], last[1]):
            self._births[node] = (boot, seq)

    def check_death(self, node, boot, seq):
        birth = self._births.get(node)
        if birth is not None and newer(birth[0], birth[1], boot, seq):
            return OLD_BOOT if boot < birth[0] else REPLAY       # an older connection's will
        death = self._deaths.get(node)
        if death is not None and not newer(boot, seq, death[0], death[1]):
            return OLD_BOOT if boot < death[0] else REPLAY       # heard already, or older
        return ACCEPT

    def note_death(self, node, boot, seq):
        last = self._deaths.get(node)
        if last is None or newer(boot, seq, last[0], last[1]):
            self._deaths[node] = (boot, seq)
