"""A segment's owner (one instance at a time, cluster.py): acks, health and fusion for its
nodes, fed from the evidence log, i.e. from the frames any instance committed for them.

- Feed: `frames_after(last id, area nodes)` in chain order every `feed_interval_ms`. An
  evidence id is given under the chain lock, so when id N is visible every id below it is too:
  polling "after the last id seen" misses nothing.
- Acks: the owner's replay guard is rebuilt from the log at the takeover (as after a restart)
  and advanced by the feed, so an ack still names only committed frames and a gap (frames a
  killed instance held uncommitted) is asked for again with a resend. Downlink frames carry
  the owner's epoch as their boot: a fresh value of the shared boot counter taken at the
  takeover, above any previous owner's, so nodes accept the new owner's acks and commands.
- Fusion: one engine per owned segment, fed the segment's nodes and every node within
  `margin_m` of them, so a source near a boundary is fused whole on both sides. Only the side
  that is its home publishes it: the segment of the registered node nearest the incident.
  Incident ids come from the evidence itself ("I-e" + the smallest evidence id among its
  reports at first publication): both sides, and a later owner replaying the same reports,
  name one source alike, so its versions overwrite one row and are never two incidents.
- Takeover: the new owner replays the last `replay_window_s` of the area's evidence into a
  fresh engine before going live; what it rebuilds carries the same ids as what the previous
  owner stored, so nothing is fused twice, and reports the previous owner never fused are.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from lwproto import const, hostframe, replay
from lwproto.errors import ProtocolError

from linewatch.commission.acks import Acknowledger, Downlink
from linewatch.commission.evidence import now_us
from linewatch.commission.fusionhook import make_fusion
from linewatch.commission.health import HealthTracker
from linewatch.commission.ingest import Accepted, rebuild_guard
from linewatch.commission.store import EvidenceRow, NodeRecord

log = logging.getLogger("linewatch.aggregator")
EARTH_M_PER_DEG = 111_195.0


class _Nodes:
    """A registry view of some nodes (what rebuild_guard reads)."""

    def __init__(self, records: list[NodeRecord]) -> None:
        self._records = records

    def list(self) -> list[NodeRecord]:
        return self._records


def area(records: list[NodeRecord], segment: int, margin_m: float) -> list[NodeRecord]:
    """The segment's nodes and every other node within margin_m of one of them."""
    own = [r for r in records if r.segment == segment]
    out = []
    for r in records:
        if r.segment == segment or any(_distance_m(r, o) <= margin_m for o in own):
            out.append(r)
    return out


def _distance_m(a: NodeRecord, b: NodeRecord) -> float:
    dx = (a.lon - b.lon) * math.cos(math.radians((a.lat + b.lat) / 2))
    return math.hypot(a.lat - b.lat, dx) * EARTH_M_PER_DEG


class SegmentOwner:
    def __init__(self, segment: int, epoch: int, agg: Any) -> None:
        self.segment, self.epoch, self.agg = segment, epoch, agg
        config, store = agg.config, agg.store
        records = agg.registry.list()
        self.records = records
        self.nodes = {r.id for r in records if r.segment == segment}
        self.area = sorted(r.id for r in area(records, segment, config.cluster.margin_m))
        self.live_from = store.last_evidence_id()
        guard = rebuild_guard(store, _Nodes([r for r in records if r.id in self.nodes]))
        self.guard = guard
        segment_of = lambda node: (r.segment if (r := agg.registry.get(node)) else None)  # noqa: E731
        self.downlink = Downlink(epoch, agg.ingest.key_of, segment_of)
        a = config.acks
        self.acks = Acknowledger(guard, self.downlink, a.resend_interval_s, a.resend_tries)
        self.acks.track_existing(sorted(self.nodes), now_us())
        self.health = HealthTracker(config.health, agg.registry.get)
        self.health.load([h for h in store.health() if h.node in self.nodes])
        self.fusion = make_fusion(config)
        self.last_id = store.evidence_id_at(now_us() - int(config.cluster.replay_window_s * 1e6))
        self.ids: dict[str, str] = {}       # engine incident id -> published id
        self.fed = 0

    # -- the feed --

    def feed(self, rows: list[EvidenceRow]) -> tuple[list[dict], list]:
        """Committed frames of the area, in chain order: (incidents to publish, health changes)."""
        incidents: list[dict] = []
        changes: list = []
        for row in rows:
            self.last_id = row.id
            try:
                # verified when it was stored (by whichever instance), and the chain keeps it so;
                # checking the tag again would cost each frame ~1.5 us more on its owner
                frame = hostframe.decode_unverified(row.raw)
            except ProtocolError as exc:     # stored frames were verified: only a bug gets here
                log.error("segment %d: stored frame %d does not decode: %s", self.segment, row.id, exc)
                continue
            if row.node in self.nodes and row.id > self.live_from:
                changes += self._stream(frame, row.received_us)
            if self.fusion is not None:
                if frame.ftype == const.EVENT:
                    accepted = Accepted(frame, row.topic, row.raw, row.received_us, self.segment, None)
                    incidents += self.fusion.feed(accepted, row.id, self.agg.registry.get(row.node))
                elif frame.ftype == const.HEARTBEAT:
                    self.fusion.heartbeat(frame.node, frame.field("temperature_c"))
        self.fed += len(rows)
        return self.publishable(incidents), changes

    def _stream(self, frame: Any, received_us: int) -> list:
        node, boot, seq = frame.node, frame.boot, frame.seq
        verdict, gap = self.guard.admit_frame(node, frame.ftype, boot, seq)   # SPEC section 6
        if verdict == replay.ACCEPT and gap:
            self.acks.gap(node, *gap, received_us)
        self.acks.arrived(node, boot, seq, received_us)
        self.acks.committed(node, boot)
        return self.health.observe(frame, received_us)

    # -- which incidents this owner publishes, under which id --

    def publishable(self, incidents: list[dict]) -> list[dict]:
        out = []
        for incident in incidents:
            engine_id = str(incident.get("id"))
            published = self.ids.get(engine_id)
            if published is None:
                reports = incident.get("reports") or []
                if not reports or self.home(incident) != self.segment:
                    continue
                published = self.ids[engine_id] = "I-e%d" % min(reports)
            incident = dict(incident, id=published)
            for link in ("launch_id", "impact_id"):
                if incident.get(link):
                    incident[link] = self.ids.get(str(incident[link]), incident[link])
            out.append(incident)
        return out

    def home(self, incident: dict) -> int | None:
        """The segment of the registered node nearest the incident (its reports' first node
        when it has no position)."""
        lat, lon = incident.get("lat"), incident.get("lon")
        if lat is None or lon is None:
            nodes = incident.get("nodes") or []
            record = self.agg.registry.get(nodes[0]) if nodes else None
            return record.segment if record else None
        here = NodeRecord(0, -1, float(lat), float(lon))
        nearest = min(self.records, key=lambda r: _distance_m(r, here), default=None)
        return nearest.segment if nearest else None

    # -- timers --

    def tick(self, at_us: int) -> tuple[list[dict], list]:
        incidents = self.publishable(self.fusion.tick(at_us)) if self.fusion is not None else []
        return incidents, self.health.tick(at_us)

    def settle(self, at_us: int) -> list[dict]:
        if self.fusion is None or not self.fusion.parked():
            return []
        return self.publishable(self.fusion.settle(at_us))

    def parked(self) -> int:
        return self.fusion.parked() if self.fusion is not None else 0
