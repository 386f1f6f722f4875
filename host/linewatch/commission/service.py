"""The commission's service: broker -> ingest -> store -> acks, health, fusion, alerts.

One asyncio task does the work in a fixed order per round, so the order of the guarantees is
visible in one place: take what the broker delivered, check every frame, commit the batch in
one transaction, and only then ack, alert and fuse. Timers (acks, resends, health) run
between rounds in the same task.

The commit (mostly waiting for the disk: synchronous=FULL fsyncs every batch) runs in one
writer thread while the task checks the next batch: round N+1 is checked while round N is
being committed, never more. Nothing else touches the store while a commit is in flight: a
round's after-commit work (acks marked, alerts, fusion) and every timer run only once it has
landed, and the ack flush waits until no checked frame is left uncommitted, so an ack still
names only frames on disk.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from lwproto import const
from lwproto import topic as topics
from lwproto.const import TYPE_NAMES

from linewatch.commission.acks import Acknowledger, Downlink
from linewatch.commission.alerts import Alerter
from linewatch.commission.config import Config
from linewatch.commission.evidence import commission_entry, now_us, state_frame
from linewatch.commission.fusionhook import make_fusion
from linewatch.commission.health import HealthTracker
from linewatch.commission.ingest import Accepted, Ingest, RefusalLog, rebuild_guard
from linewatch.commission.mqtt import MqttLink
from linewatch.commission.registry import Registry
from linewatch.commission.store import (
    FRAME,
    Batch,
    EvidenceRow,
    HealthChange,
    Refusal,
    Store,
)

log = logging.getLogger("linewatch.aggregator")
RESEND_ACK = ("replay", "given_up")


# A checked round: (batch to commit, accepted frames, health changes, (node, boot) streams).
Checked = tuple[Batch, list[Accepted], list[HealthChange], set[tuple[int, int]]]


@dataclass
class Timers:
    acks_at: float = 0.0
    health_at: float = 0.0
    fusion_at: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)


class Aggregator:
    def __init__(self, config: Config, master_key: bytes, store: Store) -> None:
        self.config = config
        self.master = master_key
        self.store = store
        self.registry = Registry(store)
        self.boot = 0
        self.link: MqttLink | None = None
        self.fusion = make_fusion(config)
        self.rounds = 0
        self.frames_committed = 0
        self._in_flight: tuple[asyncio.Future, Checked] | None = None

    def _setup(self) -> None:
        self.boot = self.store.bump_boot()
        guard = rebuild_guard(self.store, self.registry)
        self.ingest = Ingest(self.registry, self.master, guard,
                             RefusalLog(self.config.ingest.refusal_log_interval_s))
        segment_of = lambda node: (r.segment if (r := self.registry.get(node)) else None)  # noqa: E731
        self.downlink = Downlink(self.boot, self.ingest.key_of, segment_of)
        a = self.config.acks
        self.acks = Acknowledger(guard, self.downlink, a.resend_interval_s, a.resend_tries)
        self.acks.track_existing([n.id for n in self.registry.list()], now_us())
        self.health = HealthTracker(self.config.health, self.registry.get)
        self.health.load(self.store.health())

    async def start(self) -> None:
        """Open everything; raises BrokerUnreachable after the configured retries."""
        self._setup()
        b = self.config.broker
        offline = state_frame(self.master, self.boot, 1, const.OFFLINE)
        self.link = MqttLink(b.client_id, b.host, b.port, clean_session=False,
                             will=(topics.COMMISSION_STATE, offline, True), username=b.username,
                             password=b.password, keepalive_s=b.keepalive_s)
        self.alerter = Alerter(self.config.alerts, lambda t, d: self._publish(t, d))
        try:
            await self.link.connect(b.connect_retries, b.retry_delay_s)
        except Exception:
            self.link = None
            raise
        segments = self.config.ingest.segments or (None,)
        for segment in segments:
            await self.link.subscribe(topics.uplink_filter(segment), qos=1)
        self._publish(topics.COMMISSION_STATE, state_frame(self.master, self.boot, 2, const.ONLINE), retain=True)
        log.info("aggregator boot %d: %d nodes registered, listening on %s", self.boot,
                 len(self.registry.list()), ", ".join(topics.uplink_filter(s) for s in segments))

    def _publish(self, topic: str, data: bytes, retain: bool = False) -> None:
        assert self.link is not None
        self.link.publish(topic, data, qos=1, retain=retain)

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await self.serve(stop)
        finally:
            await self.shutdown()

    async def serve(self, stop: asyncio.Event) -> None:
        assert self.link is not None
        timers = Timers()
        interval = self.config.acks.interval_ms / 1000
        writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="linewatch-store")
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                if self._in_flight is None and not self._settle():
                    await self.link.wait(timeout=interval)
                messages = self.link.take(self.config.store.batch_max)
                checked = self.check_round(messages) if messages else None
                await self._land()
                if checked is not None:
                    self._in_flight = (loop.run_in_executor(writer, self.store.commit, checked[0]), checked)
                now = time.monotonic()
                if self.timers_due(timers, now):
                    await self._land()
                    self.timers(timers, now)
                await asyncio.sleep(0)   # let the client read and PUBACK between rounds
        finally:
            await self._land()
            writer.shutdown()

    def _settle(self) -> bool:
        """One wide fusion search that fusion deferred (FusionEngine.defer_wide), only while no
        frame waits: a report that completes a fix is never queued behind them."""
        if self.fusion is None or not self.fusion.parked() or self.link.queued():
            return False
        self._record_incidents(self.fusion.settle(now_us()))
        return True

    async def _land(self) -> None:
        """Wait for the commit in flight, then do its round's after-commit work."""
        if self._in_flight is None:
            return
        future, checked = self._in_flight
        self._in_flight = None
        self._committed(checked, await future)

    async def shutdown(self) -> None:
        if self.link is None:
            return
        await self._land()
        leftover = self.link.take(10 ** 9)
        if leftover:
            self.ingest_round(leftover)
        self._flush_acks()
        self._publish(topics.COMMISSION_STATE, state_frame(self.master, self.boot, 3, const.OFFLINE), retain=True)
        await asyncio.sleep(0.1)   # let the client write the last publishes
        await self.link.disconnect()
        self.alerter.close()
        self.link = None
        log.info("aggregator stopped cleanly after %d frames", self.frames_committed)

    # -- one round --

    def ingest_round(self, messages: list[tuple[str, bytes, int]]) -> None:
        """Check, commit and after-commit work for one batch, all in this thread."""
        checked = self.check_round(messages)
        self._committed(checked, self.store.commit(checked[0]))

    def check_round(self, messages: list[tuple[str, bytes, int]]) -> Checked:
        """Every frame checked and its evidence row made: the batch to commit, with what its
        commit will let us ack, alert and fuse."""
        batch = Batch()
        accepted: list[Accepted] = []
        changes: list = []
        streams: set[tuple[int, int]] = set()   # (node, boot) with a frame in this round
        process, observe, evidence = self.ingest.process, self.health.observe, batch.evidence
        for topic, payload, received_us in messages:
            result = process(topic, payload, received_us)
            if result is None:
                continue
            if isinstance(result, Refusal):
                batch.refusals.append(result)
                if result.reason in RESEND_ACK:   # the node missed our ack: say it again
                    self.acks.replayed(result.node, int.from_bytes(payload[3:5], "big"))
                continue
            f = result.frame
            accepted.append(result)
            evidence.append(EvidenceRow(0, FRAME, TYPE_NAMES[f.ftype], f.node, f.boot, f.seq, topic,
                                        received_us, result.raw, "tag_ok", ""))
            streams.add((f.node, f.boot))
            change = observe(f, received_us)
            if change:
                changes += change
            if result.gap:
                self.acks.gap(f.node, *result.gap, received_us)
        batch.health.update(self.health.take_dirty())
        batch.health_changes.extend(changes)
        return batch, accepted, changes, streams

    def _committed(self, checked: Checked, ids: list[int]) -> None:
        _, accepted, changes, streams = checked
        self.frames_committed += len(ids)
        for node, boot in streams:
            self.acks.committed(node, boot)
        self._after_commit(accepted, ids, changes)

    def _commit(self, batch: Batch, changes: list) -> list[int]:
        batch.health.update(self.health.take_dirty())
        batch.health_changes.extend(changes)
        return self.store.commit(batch)

    def _after_commit(self, accepted: list[Accepted], ids: list[int], changes: list) -> None:
        for change in changes:
            log.info("node 0x%04x: %s -> %s (%s)", change.node, change.old, change.new, change.why)
            self.alerter.node_state(change)
        if self.fusion is None:
            return
        incidents = []
        for result, evidence_id in zip(accepted, ids):
            if result.frame.ftype == const.EVENT:
                incidents += self.fusion.feed(result, evidence_id, self.registry.get(result.frame.node))
            elif result.frame.ftype == const.HEARTBEAT:
                self.fusion.heartbeat(result.frame.node, result.frame.field("temperature_c"))
        self._record_incidents(incidents)

    def _record_incidents(self, incidents: list[dict[str, Any]]) -> None:
        if not incidents:
            return
        batch = Batch()
        for incident in incidents:
            incident_id = str(incident.get("id"))
            known = self.store.incident_get(incident_id)
            status = known[1] if known else str(incident.get("status", "new"))
            batch.incidents[incident_id] = (status, now_us(), json.dumps(incident, sort_keys=True))
            if known is None:
                batch.evidence.append(commission_entry("incident", 0, {"incident": incident_id, "status": status}))
        self.store.commit(batch)
        for incident in incidents:
            self.alerter.incident(incident)

    # -- timers --

    def timers_due(self, t: Timers, now: float) -> bool:
        return now >= t.acks_at or now >= t.health_at or (self.fusion is not None and now >= t.fusion_at)

    def timers(self, t: Timers, now: float) -> None:
        if now >= t.acks_at:
            t.acks_at = now + self.config.acks.interval_ms / 1000
            self._flush_acks()
        if now >= t.health_at:
            t.health_at = now + self.config.health.tick_s
            changes = self.health.tick(now_us())
            if changes:
                self._commit(Batch(), changes)
                self._after_commit([], [], changes)
        if self.fusion is not None and now >= t.fusion_at:
            t.fusion_at = now + self.config.fusion.tick_s
            self._record_incidents(self.fusion.tick(now_us()))

    def _flush_acks(self) -> None:
        at = now_us()
        lost = self.acks.give_ups(at)
        if lost:
            entries = [commission_entry("lost", node, {"boot": boot, "first_seq": first, "last_seq": last,
                                                       "why": "no answer to %d resend requests" % self.acks.resend_tries})
                       for node, boot, first, last in lost]
            self.store.commit(Batch(evidence=entries))
            for node, boot, first, last in lost:
                log.warning("node 0x%04x boot %d: seq %d..%d given up as lost", node, boot, first, last)
        for topic, data in self.acks.resends(at) + self.acks.acks():
            self._publish(topic, data)
