"""The desk's incident page, read from a long-running commission's database: how long one
incident (its row, reports, judgements) takes to read, on SQLite and on PostgreSQL.

    python -m lwtools.bench.desk_reads [--frames 300000] [--incidents 5000] [--backend sqlite postgresql]

Per backend: a fresh database (a private PostgreSQL cluster for that backend) holding --frames
event frames from 50 nodes, --incidents incidents of 3 reports each, and a judgement for one
incident in ten; then Views.incident (what GET /api/incidents/{id} answers) for 200 incidents
picked at random, and the incident list's first page (GET /api/incidents, 500 newest) 20
times, after one warm-up read (on PostgreSQL after a VACUUM ANALYZE, as autovacuum
leaves a table that has stood a while). Prints the median and the 95th percentile in ms,
and the engine's plan of each statement the read ran that touches evidence or incidents.
"""
from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

NODES = 50
BATCH = 5000


def fill(store, frames: int, incidents: int) -> None:
    from linewatch.commission.incidents import set_status
    from linewatch.commission.store import FRAME, Batch, EvidenceRow
    raw = bytes(42)
    t0 = 1_795_000_000_000_000
    seq = 0
    while seq < frames:
        rows = []
        for _ in range(min(BATCH, frames - seq)):
            seq += 1
            node = 0x0101 + seq % NODES
            rows.append(EvidenceRow(0, FRAME, "event", node, 1, seq, "lw/1/%04x/event" % node, t0 + seq * 1000,
                                    raw, "tag_ok", ""))
        store.commit(Batch(evidence=rows))
    for first in range(0, incidents, BATCH):
        batch = {}
        for n in range(first + 1, min(incidents, first + BATCH) + 1):
            incident_id = "I-%06d" % n
            reports = [1 + (n * 37 + k) % frames for k in range(3)]
            batch[incident_id] = ("new", t0 + n, json.dumps({"id": incident_id, "class": "explosion", "fix": "tdoa",
                                                             "reports": reports, "nodes": [0x0101, 0x0102, 0x0103],
                                                             "lat": 48.0, "lon": 37.0, "time_utc_us": t0 + n,
                                                             "ellipse_95": {"major_m": 40.0, "minor_m": 20.0,
                                                                            "angle_deg": 30.0}}))
        store.commit(Batch(incidents=batch))
    for n in range(1, incidents + 1, 10):
        set_status(store, "I-%06d" % n, "confirmed", "seen", "bench")


def plans(store, reads) -> list[str]:
    out = []
    for sql in dict.fromkeys(sql for sql, _ in reads):
        if " evidence " not in sql + " " and " incidents " not in sql + " ":
            continue
        args = next(a for s, a in reads if s == sql)
        if isinstance(store.db, sqlite3.Connection):
            plan = "; ".join(str(r[-1]) for r in store.db.execute("EXPLAIN QUERY PLAN " + sql, args))
        else:
            plan = "; ".join(r[0].strip() for r in store.db.execute("EXPLAIN " + sql.replace("?", "%s"), args)
                             if "Scan" in r[0])
        out.append("  %s\n    -> %s" % (sql[:110], plan))
    return out


def measure(target: str, frames: int, incidents: int) -> tuple[float, float, float, list[str]]:
    from linewatch.commission import config as cfg
    from linewatch.commission.store import open_store
    from linewatch.desk.views import Filters, Views
    store = open_store(target, "OFF" if not target.startswith("postgres") else "FULL")
    try:
        fill(store, frames, incidents)
    finally:
        store.close()
    if target.startswith("postgres"):       # as autovacuum leaves a table that has stood a while
        import psycopg
        with psycopg.connect(target, autocommit=True) as db:
            db.execute("VACUUM ANALYZE")
    store = open_store(target, readonly=True)
    try:
        views = Views(store, cfg.from_dict({}), bytes(32))
        ids = ["I-%06d" % random.Random(1).randint(1, incidents) for _ in range(200)]
        reads: list = []
        rows = store._rows
        views.incident(ids[0])
        times = []
        for incident_id in ids:
            store._rows = lambda sql, args=(): reads.append((sql, args)) or rows(sql, args)
            started = time.perf_counter()
            assert views.incident(incident_id) is not None
            times.append((time.perf_counter() - started) * 1000)
        store._rows = rows
        times.sort()
        listed = []
        for _ in range(20):                # the incident list's first page, no filter
            started = time.perf_counter()
            views.incidents(Filters())
            listed.append((time.perf_counter() - started) * 1000)
        return (statistics.median(times), times[int(len(times) * 0.95)], statistics.median(listed),
                plans(store, reads))
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300_000)
    ap.add_argument("--incidents", type=int, default=5000)
    ap.add_argument("--backend", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    args = ap.parse_args(argv)
    print("| backend | frames | incidents | one incident's page: median ms | p95 ms | the list (500 newest): median ms |\n"
          "|---|---|---|---|---|---|")
    notes = []
    for backend in args.backend:
        with tempfile.TemporaryDirectory(prefix="lw-bench-desk-") as folder:
            if backend == "sqlite":
                median, p95, listed, plan = measure(str(Path(folder) / "lw.db"), args.frames, args.incidents)
            else:
                from linewatch.testing.postgres import PostgresCluster
                with PostgresCluster() as pg:
                    median, p95, listed, plan = measure(pg.create_database(), args.frames, args.incidents)
        print("| %s | %d | %d | %.2f | %.2f | %.0f |" % (backend, args.frames, args.incidents, median, p95, listed),
              flush=True)
        notes += ["%s plans:" % backend, *plan]
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
