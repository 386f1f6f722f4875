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
import collections
import concurrent.futures
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from lwproto import const
from lwproto import topic as topics
from lwproto.const import TYPE_NAMES

from linewatch.commission import commands
from linewatch.commission.acks import Acknowledger, Downlink
from linewatch.commission.alerts import Alerter
from linewatch.commission.config import Config
from linewatch.commission import evidencehead
from linewatch.commission.evidence import commission_entry, now_us, state_frame
from linewatch.commission.fusionhook import make_fusion
from linewatch.commission.health import HealthTracker
from linewatch.commission.ingest import Accepted, Ingest, RefusalLog, rebuild_guard
from linewatch.broker import tls_context as broker_tls
from linewatch.commission.mqtt import BrokerUnreachable, MqttLink
from linewatch.commission.oplog import OperatorLog
from linewatch.commission.quarantine import Quarantine
from linewatch.commission.registry import Registry
from linewatch.commission.store import (
    FRAME,
    Batch,
    EvidenceRow,
    HealthChange,
    Refusal,
    Store,
    StoreError,
)

log = logging.getLogger("linewatch.aggregator")
RESEND_ACK = ("replay", "given_up")
LIFE = (const.BIRTH, const.DEATH)        # frames that change a node's life: told in the log


# A checked round: (batch to commit, accepted frames, health changes, (node, boot) streams).
Checked = tuple[Batch, list[Accepted], list[HealthChange], set[tuple[int, int]]]


@dataclass
class Timers:
    acks_at: float = 0.0
    health_at: float = 0.0
    fusion_at: float = 0.0
    head_at: float = 0.0
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
        self.oplog = OperatorLog(log, tuple(config.fusion.sides))
        self.rounds = 0
        self.frames_committed = 0
        self._in_flight: tuple[asyncio.Future, Checked] | None = None
        self.cluster = None     # linewatch.commission.cluster.Cluster when [cluster] instance is set
        # A failed write (disk full, I/O error): the service stops without acking anything more.
        # The replay guard has already admitted the frames of the failed round, so an ack made
        # now could name frames that are not on disk.
        self.failed: StoreError | None = None
        # The desk (linewatch.desk): told of every incident stored and health change, and its
        # acts (a status change, a node command) run here between rounds, never beside a commit.
        self.listeners: list[Callable[[str, Any], None]] = []
        self._acts: collections.deque = collections.deque()

    def _setup(self) -> None:
        self.boot = self.store.bump_boot()
        shared = bool(self.config.cluster.instance)
        # Sharing the ingest, no instance sees a whole stream: the store refuses duplicates
        # and each segment's owner keeps the replay guard for acks (cluster.py, owner.py).
        guard = None if shared else rebuild_guard(self.store, self.registry)
        self.ingest = Ingest(self.registry, self.master, guard,
                             RefusalLog(self.config.ingest.refusal_log_interval_s))
        self.quarantine = Quarantine(self.config.ingest.quarantine_per_source, self.config.ingest.quarantine_total)
        self.quarantine.load(self.store.quarantine_counts())
        self.heads = evidencehead.Publisher(
            self.store, self.master, self.config.evidence.head_path(self.config.store),
            lambda text: self._publish(topics.EVIDENCE_HEAD, text, retain=True), log)
        if shared:
            from linewatch.commission.cluster import Cluster
            self.fusion = None
            self.health = HealthTracker(self.config.health, self.registry.get)
            self.cluster = Cluster(self)
            return
        if self.fusion is not None:     # a restarted service names no new incident as an old one
            self.fusion.number_after(self.store.last_incident_id())
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
        b, c = self.config.broker, self.config.cluster
        offline = state_frame(self.master, self.boot, 1, const.OFFLINE)
        try:
            tls = broker_tls(b.ca_file) if b.ca_file else None
        except ValueError as exc:
            raise BrokerUnreachable(str(exc)) from None
        if c.instance:   # MQTT 5 for the shared subscription; one session per instance
            self.link = MqttLink(f"{b.client_id}-{c.instance}", b.host, b.port, clean_session=c.session_expiry_s == 0,
                                 username=b.username, password=b.password, keepalive_s=b.keepalive_s, v5=True,
                                 session_expiry_s=c.session_expiry_s, ssl_context=tls)
        else:
            self.link = MqttLink(b.client_id, b.host, b.port, clean_session=False,
                                 will=(topics.COMMISSION_STATE, offline, True), username=b.username,
                                 password=b.password, keepalive_s=b.keepalive_s, ssl_context=tls)
        self.alerter = Alerter(self.config.alerts, lambda t, d: self._publish(t, d))
        try:
            await self.link.connect(b.connect_retries, b.retry_delay_s)
        except Exception:
            self.link = None
            raise
        segments = self.config.ingest.segments or (None,)
        share = f"$share/{c.group}/" if c.instance else ""
        for segment in segments:
            await self.link.subscribe(share + topics.uplink_filter(segment), qos=1)
        if not c.instance:   # instances come and go: the line's state is not one instance's
            self._publish(topics.COMMISSION_STATE, state_frame(self.master, self.boot, 2, const.ONLINE), retain=True)
        self.heads.tick(now_us(), force=True)
        registered = len(self.registry.list())
        log.info("aggregator boot %d%s: %d %s registered, listening on %s", self.boot,
                 f" (instance {c.instance})" if c.instance else "", registered, "node" if registered == 1 else "nodes",
                 ", ".join(share + topics.uplink_filter(s) for s in segments))

    def _publish(self, topic: str, data: bytes, retain: bool = False) -> None:
        assert self.link is not None
        self.link.publish(topic, data, qos=1, retain=retain)

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await self.serve(stop)
        except StoreError as exc:
            self.failed = exc
            raise
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
                if self._acts:
                    self._run_acts()
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

    def act(self, fn: Callable[["Aggregator"], Any]) -> asyncio.Future:
        """Run fn(self) in the service's task between rounds (no commit in flight); the future
        has its result or its exception."""
        future = asyncio.get_running_loop().create_future()
        self._acts.append((fn, future))
        return future

    def _run_acts(self) -> None:
        while self._acts:
            fn, future = self._acts.popleft()
            if future.cancelled():
                continue
            try:
                future.set_result(fn(self))
            except Exception as exc:      # the caller's: told to it, the service goes on
                future.set_exception(exc)

    def command(self, node: int, name: str, args: dict[str, Any], who: str):
        """A command to a node, recorded with who gave it, then sent (commands.py)."""
        if self.cluster is not None:
            raise commands.CommandError("node commands are sent by a single aggregator; this instance "
                                        "shares the line (docs/scale-out.md)")
        health = next((h for h in self.store.health() if h.node == node), None)
        return commands.send(self.store, self.downlink, self._publish, node, name, args, who,
                             commands.node_before(health))

    def _tell(self, kind: str, what: Any) -> None:
        for listener in self.listeners:
            try:
                listener(kind, what)
            except Exception:            # a listener's fault never stops the ingest
                log.exception("desk listener failed on %s", kind)

    def _settle(self) -> bool:
        """One wide fusion search that fusion deferred (FusionEngine.defer_wide), only while no
        frame waits: a report that completes a fix is never queued behind them."""
        if self.cluster is not None:
            return not self.link.queued() and self.cluster.settle(now_us())
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
        if self.failed is None:
            try:
                await self._land()
            except StoreError as exc:
                self.failed = exc
        if self.failed is not None:
            await self._stop_after_failure()
            return
        leftover = self.link.take(10 ** 9)
        if leftover:
            self.ingest_round(leftover)
        if self.cluster is not None:
            self.cluster.feed_all()        # the owners read what was just committed
            self.cluster.close()           # acks flushed, segments released for the others
            self.heads.tick(now_us())
        else:
            self._flush_acks()
            self.heads.tick(now_us())
            self._publish(topics.COMMISSION_STATE, state_frame(self.master, self.boot, 3, const.OFFLINE),
                          retain=True)
        await asyncio.sleep(0.1)   # let the client write the last publishes
        await self.link.disconnect()
        self.alerter.close()
        self.link = None
        log.info("aggregator stopped cleanly after %d frames", self.frames_committed)

    async def _stop_after_failure(self) -> None:
        """The store failed: no ack, no head, nothing more written; say we are gone. The nodes
        keep every frame that was not acked and send it again to the next run."""
        self._in_flight = None
        self._publish(topics.COMMISSION_STATE, state_frame(self.master, self.boot, 3, const.OFFLINE), retain=True)
        await asyncio.sleep(0.1)
        await self.link.disconnect()
        self.alerter.close()
        self.link = None
        log.error("aggregator stopped: the database could not be written; %d frames were committed and acked "
                  "before, nothing after them was acked", self.frames_committed)

    # -- one round --

    def ingest_round(self, messages: list[tuple[str, bytes, int]]) -> None:
        """Check, commit and after-commit work for one batch, all in this thread."""
        checked = self.check_round(messages)
        self._committed(checked, self.store.commit(checked[0]))

    def check_round(self, messages: list[tuple[str, bytes, int]]) -> Checked:
        """Every frame checked and its evidence row made: the batch to commit, with what its
        commit will let us ack, alert and fuse."""
        if self.cluster is not None:
            return self._check_shared(messages)
        batch = Batch()
        accepted: list[Accepted] = []
        changes: list = []
        streams: set[tuple[int, int]] = set()   # (node, boot) with a frame in this round
        process, observe, evidence = self.ingest.process, self.health.observe, batch.evidence
        arrived = self.acks.arrived
        for topic, payload, received_us in messages:
            result = process(topic, payload, received_us)
            if result is None:
                continue
            if isinstance(result, Refusal):
                if self.quarantine.admit(result):
                    batch.refusals.append(result)
                if result.reason in RESEND_ACK:   # the node missed our ack: say it again
                    boot = int.from_bytes(payload[3:5], "big")
                    self.acks.replayed(result.node, boot)
                    arrived(result.node, boot, int.from_bytes(payload[5:9], "big"), received_us)
                continue
            f = result.frame
            accepted.append(result)
            evidence.append(EvidenceRow(0, FRAME, TYPE_NAMES[f.ftype], f.node, f.boot, f.seq, topic,
                                        received_us, result.raw, "tag_ok", ""))
            streams.add((f.node, f.boot))
            arrived(f.node, f.boot, f.seq, received_us)
            change = observe(f, received_us)
            if change:
                changes += change
            if result.gap:
                self.acks.gap(f.node, *result.gap, received_us)
        batch.health.update(self.health.take_dirty())
        batch.health_changes.extend(changes)
        batch.refusals_dropped = self.quarantine.take_dropped()
        return batch, accepted, changes, streams

    def _check_shared(self, messages: list[tuple[str, bytes, int]]) -> Checked:
        """Check and chain only: acks, health and fusion are the segment owners' (owner.py)."""
        batch = Batch(dedupe=True)
        process, evidence = self.ingest.process, batch.evidence
        for topic, payload, received_us in messages:
            result = process(topic, payload, received_us)
            if result is None:
                continue
            if isinstance(result, Refusal):
                if self.quarantine.admit(result):
                    batch.refusals.append(result)
                continue
            f = result.frame
            evidence.append(EvidenceRow(0, FRAME, TYPE_NAMES[f.ftype], f.node, f.boot, f.seq, topic,
                                        received_us, result.raw, "tag_ok", ""))
        batch.refusals_dropped = self.quarantine.take_dropped()
        return batch, [], [], set()

    def _committed(self, checked: Checked, ids: list[int]) -> None:
        _, accepted, changes, streams = checked
        if self.cluster is not None:
            self.frames_committed += sum(1 for i in ids if i)
            return
        self.frames_committed += len(ids)
        for node, boot in streams:
            self.acks.committed(node, boot)
        self._after_commit(accepted, ids, changes)

    def _commit(self, batch: Batch, changes: list) -> list[int]:
        batch.health.update(self.health.take_dirty())
        batch.health_changes.extend(changes)
        return self.store.commit(batch)

    def _after_commit(self, accepted: list[Accepted], ids: list[int], changes: list) -> None:
        for result in accepted:
            if result.frame.ftype in LIFE:
                self.oplog.frame(result.frame)
        for change in changes:
            self.oplog.health(change)
            self.alerter.node_state(change)
            self._tell("health", change)
        if self.fusion is None:
            return
        incidents = []
        for result, evidence_id in zip(accepted, ids):
            if result.frame.ftype == const.EVENT:
                incidents += self.fusion.feed(result, evidence_id, self.registry.get(result.frame.node))
            elif result.frame.ftype == const.HEARTBEAT:
                self.fusion.heartbeat(result.frame.node, result.frame.field("temperature_c"))
        self._record_incidents(incidents)

    def _record_incidents(self, incidents: list[dict[str, Any]], batch: Batch | None = None,
                          alert_known: bool = True) -> None:
        if not incidents and not batch:
            return
        batch = batch or Batch()
        alerts = []
        first = set()
        for incident in incidents:
            incident_id = str(incident.get("id"))
            known = self.store.incident_get(incident_id)
            status = known[1] if known else str(incident.get("status", "new"))
            batch.incidents[incident_id] = (status, now_us(), json.dumps(incident, sort_keys=True))
            if known is None:
                first.add(incident_id)
                batch.evidence.append(commission_entry("incident", 0, {"incident": incident_id, "status": status}))
            if known is None or (alert_known and known[3] != batch.incidents[incident_id][2]):
                alerts.append(incident)
        self.store.commit(batch)
        for incident in incidents:
            self._tell("incident", incident)
        for incident in alerts:
            self.oplog.incident(incident, first=str(incident.get("id")) in first)
            self.alerter.incident(incident)

    # -- a segment owner's results (cluster mode) --

    def note_owner(self, segment: int, epoch: int) -> None:
        """A takeover is an act of the commission: in the evidence log, who and from when."""
        self.store.commit(Batch(evidence=[commission_entry(
            "segment_owner", 0, {"segment": segment, "epoch": epoch, "instance": self.config.cluster.instance})]))

    def owner_results(self, owner: Any, incidents: list[dict[str, Any]], changes: list,
                      alert_known: bool = True) -> None:
        """Health and incidents from an owner's feed or timers: stored, then alerted. A takeover's
        replay re-alerts only incidents the previous owner never stored."""
        batch = Batch(health=owner.health.take_dirty(), health_changes=list(changes))
        self._record_incidents(incidents, batch, alert_known)
        for change in changes:
            log.info("node 0x%04x: %s -> %s (%s)", change.node, change.old, change.new, change.why)
            self.alerter.node_state(change)
            self._tell("health", change)

    def flush_owner_acks(self, owner: Any) -> None:
        self._flush_acks(owner.acks)

    # -- timers --

    def timers_due(self, t: Timers, now: float) -> bool:
        if now >= t.head_at:
            return True
        if self.cluster is not None:
            return now >= t.acks_at or now >= t.health_at or self.cluster.due(now)
        return now >= t.acks_at or now >= t.health_at or (self.fusion is not None and now >= t.fusion_at)

    def timers(self, t: Timers, now: float) -> None:
        if now >= t.head_at:
            t.head_at = now + self.config.evidence.head_interval_s
            self.heads.tick(now_us())
        if self.cluster is not None:
            self._cluster_timers(t, now)
            return
        if now >= t.acks_at:
            t.acks_at = now + self.config.acks.interval_ms / 1000
            self._flush_acks()
        if now >= t.health_at:
            t.health_at = now + self.config.health.tick_s
            self.oplog.flush()
            if self.fusion is not None:
                self._clock_checks(self.fusion.node_timing())
            changes = self.health.tick(now_us())
            if changes:
                self._commit(Batch(), changes)
                self._after_commit([], [], changes)
        if self.fusion is not None and now >= t.fusion_at:
            t.fusion_at = now + self.config.fusion.tick_s
            self._record_incidents(self.fusion.tick(now_us()))

    def _clock_checks(self, timing: dict[int, dict]) -> None:
        """Fusion's flags on nodes' clocks into their health (stored with the next round)."""
        for node in self.health.clock_checks(timing):
            judged = timing.get(node)
            if judged and judged["flagged"]:
                log.warning("node 0x%04x: its arrivals miss located sources by %+.0f ms over %d fixes; "
                            "fusion weighs them less (check its time source)", node,
                            judged["offset_us"] / 1000, judged["fixes"])
            else:
                log.info("node 0x%04x: its arrivals agree with located sources again", node)

    def _cluster_timers(self, t: Timers, now: float) -> None:
        self.cluster.run(now)
        if now >= t.acks_at:
            t.acks_at = now + self.config.acks.interval_ms / 1000
            self.cluster.flush_acks()
        if now >= t.health_at:
            t.health_at = now + min(self.config.health.tick_s, self.config.fusion.tick_s)
            self.cluster.tick(now_us())

    def _flush_acks(self, acks: Acknowledger | None = None) -> None:
        acks = acks or self.acks
        at = now_us()
        lost = acks.give_ups(at)
        if lost:
            entries = [commission_entry("lost", node, {"boot": boot, "first_seq": first, "last_seq": last,
                                                       "why": "no answer to %d resend requests" % acks.resend_tries})
                       for node, boot, first, last in lost]
            self.store.commit(Batch(evidence=entries))
            for node, boot, first, last in lost:
                log.warning("node 0x%04x boot %d: seq %d..%d given up as lost", node, boot, first, last)
        for topic, data in acks.resends(at) + acks.acks():
            self._publish(topic, data)
