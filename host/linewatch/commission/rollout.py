"""Pushing a build to nodes over the air (`linewatch update`; SPEC.md section 10), paced so a
segment is never blind: at most `share` of a segment's nodes (at least one) update at a time.

Per node: the manifest and the chunks, signed with the node's key, published at QoS 1 on its
`down/update` topic; then the node's next birth tells the outcome: the build's release
(updated), or another (not updated: it rolled back, or refused the update). No birth within `wait_s`: no answer. Progress
is reported per node through `report(node, text)`; `record(type, node, content)` (the
command's: a commission entry in the evidence log) gets an `update` entry before a node's
first message (update id, release, size, sha256, chunks) and an `update_outcome` after.
"""
from __future__ import annotations

import hashlib
import math
import queue
import threading
import time
from dataclasses import dataclass, field

from lwproto import auth, frame, hostupdate
from lwproto import const as c


@dataclass
class Outcome:
    node: int
    segment: int
    state: str = "waiting"        # waiting, sending, sent, updated, not updated, no answer, failed
    detail: str = ""


@dataclass
class Rollout:
    image: bytes
    release: tuple[int, int, int]
    arch: int
    master_key: bytes
    share: float = 0.25
    wait_s: float = 300.0
    chunk_size: int = hostupdate.DEFAULT_CHUNK
    report: object = print
    record: object = None         # record(entry type, node, content): the evidence log (see run)
    outcomes: dict = field(default_factory=dict)
    _last_id: int = 0

    def slots(self, nodes_in_segment: int) -> int:
        """How many of a segment's nodes may update at once."""
        return max(1, math.floor(self.share * nodes_in_segment))

    def update_id(self) -> int:
        """Greater than any id this commission gave before (UTC seconds, then +1)."""
        self._last_id = max(self._last_id + 1, int(time.time()))
        return self._last_id

    def run(self, client, targets: list[tuple[int, int]], segment_sizes: dict[int, int]) -> dict:
        """Update every (node, segment) of `targets` through the connected paho `client`;
        `segment_sizes` is how many nodes each segment has (the registry's count, which the
        share is of). Returns {node: Outcome}."""
        births: dict[int, queue.Queue] = {node: queue.Queue() for node, _ in targets}

        def on_message(cl, userdata, message) -> None:
            try:
                f = frame.decode(message.payload, auth.derive_node_key(self.master_key,
                                                                       int(message.topic.split("/")[2], 16)))
            except Exception:
                return
            if f.ftype == c.BIRTH and f.node in births:
                births[f.node].put(f)

        client.on_message = on_message
        for seg in {s for _, s in targets}:
            client.subscribe("lw/%d/+/%s" % (seg, "birth"), qos=1)
        time.sleep(0.3)
        by_segment: dict[int, list[int]] = {}
        for node, seg in targets:
            by_segment.setdefault(seg, []).append(node)
            self.outcomes[node] = Outcome(node, seg)
        threads = [threading.Thread(target=self._segment, args=(client, seg, nodes, segment_sizes.get(seg, len(nodes)), births))
                   for seg, nodes in sorted(by_segment.items())]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.outcomes

    def _segment(self, client, seg: int, nodes: list[int], size: int, births) -> None:
        gate = threading.Semaphore(self.slots(size))
        workers = []
        for node in nodes:
            gate.acquire()
            t = threading.Thread(target=self._node, args=(client, seg, node, births[node], gate))
            workers.append(t)
            t.start()
        for t in workers:
            t.join()

    def _node(self, client, seg: int, node: int, births: queue.Queue, gate) -> None:
        out = self.outcomes[node]
        try:
            while not births.empty():
                births.get_nowait()
            key = auth.derive_node_key(self.master_key, node)
            uid = self.update_id()
            where = hostupdate.topic(seg, node)
            messages = [hostupdate.manifest(key, node, uid, self.image, self.release, self.arch, self.chunk_size)]
            messages += hostupdate.chunks(key, node, uid, self.image, self.chunk_size)
            if self.record:
                self.record("update", node, {"update_id": uid, "release": "%d.%d.%d" % tuple(self.release),
                                             "size": len(self.image), "chunks": len(messages) - 1,
                                             "sha256": hashlib.sha256(self.image).hexdigest(), "segment": seg})
            out.state = "sending"
            step = max(1, len(messages) // 10)
            for i, message in enumerate(messages):
                client.publish(where, message, qos=1).wait_for_publish(30)
                if i % step == 0 or i == len(messages) - 1:
                    self.report(node, "update %d: %d of %d messages sent" % (uid, i + 1, len(messages)))
            out.state = "sent"
            self.report(node, "sent; waiting for its birth (at most %.0f s)" % self.wait_s)
            deadline = time.monotonic() + self.wait_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    out.state, out.detail = "no answer", "no birth within %.0f s" % self.wait_s
                    break
                try:
                    birth = births.get(timeout=left)
                except queue.Empty:
                    continue
                running = (birth.field("fw_major"), birth.field("fw_minor"), birth.field("fw_patch"))
                if running == tuple(self.release):
                    out.state, out.detail = "updated", "running %d.%d.%d (boot %d)" % (*running, birth.boot)
                    break
                out.state, out.detail = "not updated", ("running %d.%d.%d (boot %d): rolled back, or the update"
                                                        " refused (its log says which)" % (*running, birth.boot))
                break
        except Exception as exc:    # a broker error: this node fails, the others go on
            out.state, out.detail = "failed", repr(exc)
        finally:
            self.report(node, "%s %s" % (out.state, out.detail))
            gate.release()
            if self.record:
                self.record("update_outcome", node, {"state": out.state, "detail": out.detail})

