"""Several aggregator instances on one line: who owns which segment.

Ingest is spread by the broker (an MQTT 5 shared subscription: each frame goes to one member
of the group), and every instance verifies and appends what it receives to the one evidence
log in PostgreSQL. What needs a whole stream — acks and resend requests, node health, fusion —
is done per segment by the segment's one owner, from the frames committed for it whichever
instance received them (owner.py).

Ownership is a PostgreSQL session-level advisory lock per segment, held on a connection of
its own (`Leases`). It lasts exactly as long as the owner's database session: a killed
instance's connection closes, the server drops its locks at once, and another instance
claims the segment at its next claim round (`claim_interval_s`). Each instance also holds a
member lock, so all can count the live members and take a fair share: ceil(segments /
members). An instance above its share gives one segment back per round (cleanly: its owner
flushes first), so a restarted instance gets work again.

Split brain: an owner whose database connection fails loses its locks with it; `claim()`
then reports every segment lost and the instance stops acting for them at once. An owner cut
off from PostgreSQL but not from the broker cannot commit anything either, so it acks
nothing (acks follow commits).
"""
from __future__ import annotations

import logging
import math
import time
import zlib

log = logging.getLogger("linewatch.aggregator")

MEMBER_LOCK = 0x4C57       # pg_try_advisory_lock(MEMBER_LOCK, backend pid): one per live instance
SEGMENT_LOCK = 0x4C58      # pg_try_advisory_lock(SEGMENT_LOCK, segment): the segment's owner
PAGE = 5000                # frames read per query of an owner's feed


class Leases:
    """This instance's advisory locks, on a dedicated connection."""

    def __init__(self, url: str, instance: str) -> None:
        import psycopg
        self._error = psycopg.Error
        self.instance = instance
        self.db = psycopg.connect(url, autocommit=True, connect_timeout=10,
                                  application_name=f"linewatch-{instance}"[:63])
        # a dead peer's session (machine gone, not just the process) is noticed by TCP keepalive
        self.pid = self.db.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.db.execute("SELECT pg_advisory_lock(%s, %s)", (MEMBER_LOCK, self.pid))
        self.owned: set[int] = set()
        self._order = zlib.crc32(instance.encode())

    def members(self) -> int:
        return self.db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
                               "AND objsubid = 2 AND granted", (MEMBER_LOCK,)).fetchone()[0]

    def owners(self) -> dict[int, int]:
        """segment -> backend pid of its owner, for every owned segment."""
        return dict(self.db.execute("SELECT objid::int, pid FROM pg_locks WHERE locktype = 'advisory' "
                                    "AND classid = %s AND objsubid = 2 AND granted", (SEGMENT_LOCK,)).fetchall())

    def claim(self, segments: list[int]) -> tuple[list[int], list[int], int | None]:
        """One claim round: (segments gained, segments lost, one segment to give back or None).

        Lost means the database says we no longer hold it (connection gone): stop at once."""
        try:
            members = max(1, self.members())
            owners = self.owners()
        except self._error as exc:
            log.warning("cluster: lost the database (%s): giving up segments %s", exc, sorted(self.owned))
            lost, self.owned = sorted(self.owned), set()
            return [], lost, None
        held = {s for s, pid in owners.items() if pid == self.pid}
        lost = sorted(self.owned - held)
        self.owned = held
        share = math.ceil(len(segments) / members)
        gained = []
        free = [s for s in segments if s not in owners]
        free.sort(key=lambda s: zlib.crc32(b"%d" % s) ^ self._order)   # instances try different ones first
        for segment in free:
            if len(self.owned) >= share:
                break
            if self.db.execute("SELECT pg_try_advisory_lock(%s, %s)", (SEGMENT_LOCK, segment)).fetchone()[0]:
                self.owned.add(segment)
                gained.append(segment)
        surplus = max(self.owned) if len(self.owned) > share else None
        return gained, lost, surplus

    def release(self, segment: int) -> None:
        try:
            self.db.execute("SELECT pg_advisory_unlock(%s, %s)", (SEGMENT_LOCK, segment))
        except self._error:
            pass
        self.owned.discard(segment)

    def close(self) -> None:
        try:
            self.db.close()     # every lock goes with the session
        except self._error:
            pass
        self.owned = set()


class Cluster:
    """This instance's part of the line: claim rounds, and the owners of the segments it holds."""

    def __init__(self, agg) -> None:
        from linewatch.commission.owner import SegmentOwner
        self._owner_cls = SegmentOwner
        self.agg = agg
        self.config = agg.config.cluster
        self.leases = Leases(agg.config.store.url, self.config.instance)
        self.owners: dict = {}
        # peers started together join before anyone claims, so the first share is fair
        self.claim_at = time.monotonic() + self.config.claim_interval_s
        self.feed_at = 0.0
        self.takeovers = 0

    def segments(self) -> list[int]:
        return sorted({r.segment for r in self.agg.registry.list()})

    def due(self, now: float) -> bool:
        return now >= self.claim_at or now >= self.feed_at

    def run(self, now: float) -> None:
        if now >= self.claim_at:
            self.claim_at = now + self.config.claim_interval_s
            self.claim()
        if now >= self.feed_at:
            self.feed_at = now + self.config.feed_interval_ms / 1000
            self.feed_all()

    def feed_all(self) -> None:
        for owner in list(self.owners.values()):
            self._feed(owner)

    def claim(self) -> None:
        gained, lost, surplus = self.leases.claim(self.segments())
        for segment in lost:
            self.owners.pop(segment, None)
        for segment in gained:
            started = time.monotonic()
            epoch = self.agg.store.bump_boot()
            owner = self._owner_cls(segment, epoch, self.agg)
            self.owners[segment] = owner
            self.agg.note_owner(segment, epoch)
            self._feed(owner, replay=True)
            self.takeovers += 1
            log.info("cluster %s: owns segment %d (epoch %d; %d frames replayed in %.2f s)",
                     self.config.instance, segment, epoch, owner.fed, time.monotonic() - started)
        if surplus is not None:
            self.give_back(surplus)

    def give_back(self, segment: int) -> None:
        owner = self.owners.pop(segment, None)
        if owner is not None:
            self.agg.flush_owner_acks(owner)
            self.agg.owner_results(owner, [], [])
        self.leases.release(segment)
        log.info("cluster %s: gave segment %d back (above its share)", self.config.instance, segment)

    def _feed(self, owner, replay: bool = False) -> None:
        store = self.agg.store
        while True:
            rows = store.frames_after(owner.last_id, owner.area, PAGE)
            if not rows:
                return
            incidents, changes = owner.feed(rows)
            self.agg.owner_results(owner, incidents, changes, alert_known=not replay)
            if len(rows) < PAGE:
                return

    def flush_acks(self) -> None:
        for owner in list(self.owners.values()):
            self.agg.flush_owner_acks(owner)

    def tick(self, at_us: int) -> None:
        for owner in list(self.owners.values()):
            incidents, changes = owner.tick(at_us)
            self.agg.owner_results(owner, incidents, changes)

    def settle(self, at_us: int) -> bool:
        for owner in self.owners.values():
            if owner.parked():
                self.agg.owner_results(owner, owner.settle(at_us), [])
                return True
        return False

    def close(self) -> None:
        self.flush_acks()
        self.owners = {}
        self.leases.close()
