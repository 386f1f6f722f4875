"""`linewatch stats`: frames stored by type, refusals by reason, recent ingest rate."""
from __future__ import annotations

import sys
import time

from linewatch.commission import config as cfg
from linewatch.commission.store import StoreError, open_store


def register(sub) -> None:
    p = sub.add_parser("stats", help="counts by frame type, refusals by reason, ingest rate")
    cfg.add_arguments(p)
    p.add_argument("--window", type=float, default=60.0, help="seconds for the ingest rate (default 60)")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        config = cfg.from_args(args)
        store = open_store(config.store.target, readonly=True)
    except (cfg.ConfigError, StoreError) as exc:
        print(f"linewatch stats: {exc}", file=sys.stderr)
        return 2
    try:
        by_type = store.counts_by_type()
        refused = store.refusals_by_reason()
        dropped = store.quarantine_dropped()
        since = time.time_ns() // 1000 - int(args.window * 1e6)
        rate = store.frames_since(since) / args.window
    finally:
        store.close()
    print(f"frames stored: {sum(by_type.values())}")
    for name, count in sorted(by_type.items()):
        print(f"  {name:12} {count}")
    not_kept = sum(dropped.values())
    print(f"frames refused: {sum(refused.values())}"
          + (f" ({not_kept} counted but not kept: quarantine full for their reason and node)" if not_kept else ""))
    for reason, count in sorted(refused.items()):
        print(f"  {reason:16} {count}" + (f" ({dropped[reason]} not kept)" if dropped.get(reason) else ""))
    print(f"ingest rate: {rate:.1f} frames/s over the last {args.window:.0f} s")
    return 0
