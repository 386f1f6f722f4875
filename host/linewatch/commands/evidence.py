"""`linewatch evidence verify`: re-check the hash chain, every frame's tag, and the log against
the signed heads the service published (linewatch.commission.evidence does the checking).
Exit 0 when everything holds, 1 when something does not (the first bad row or head named),
2 when it could not check (no such database, bad key, unreadable head, broker unreachable).
"""
from __future__ import annotations

import argparse
import os
import sys

from lwproto import topic as topics
from linewatch import broker, keys
from linewatch.broker import BrokerError
from linewatch.commission import config as cfg
from linewatch.commission import evidencehead
from linewatch.commission.evidence import check, describe, verify  # noqa: F401 (verify: tests use it here)
from linewatch.commission.store import StoreError, open_store
from linewatch.keys import KeyFileError


def register(sub) -> None:
    p = sub.add_parser("evidence", help="the evidence log")
    cfg.add_arguments(p)
    ev = p.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    v = ev.add_parser("verify", help="re-check the hash chain, every tag, and the signed heads published")
    v.add_argument("--head", action="append", metavar="FILE",
                   help="a signed head kept elsewhere (repeatable); default: the service's own head file")
    v.add_argument("--head-from-broker", action="store_true",
                   help="also the head retained on the broker (lw/commission/evidence)")
    v.add_argument("--no-head", action="store_true", help="the chain and tags only")
    v.add_argument("--broker", help="HOST:PORT (overrides [broker]) for --head-from-broker")
    v.add_argument("--credentials", help="broker credentials JSON for --head-from-broker")
    v.add_argument("--broker-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    v.set_defaults(func=cmd_verify)


def cmd_verify(args) -> int:
    try:
        config = cfg.from_args(args)
        master = keys.load_master_key(config.keys.master_key_file)
        heads = _heads(args, config)
        store = open_store(config.store.target, readonly=True)
    except (cfg.ConfigError, KeyFileError, StoreError, evidencehead.HeadError, BrokerError, ValueError) as exc:
        print(f"linewatch evidence verify: {exc}", file=sys.stderr)
        return 2
    try:
        verdict = check(store, master, heads)
    finally:
        store.close()
    print(describe(verdict))
    return 0 if verdict.ok else 1


def _heads(args, config) -> list[tuple[str, evidencehead.Head]]:
    """The signed heads to check the log against: --head files, the broker's retained head, and
    by default the head file the service writes (when it exists)."""
    heads = [(path, evidencehead.read(path)) for path in args.head or ()]
    if args.head_from_broker:
        access = broker.access_from(config.broker, broker=args.broker, credentials=args.credentials)
        with broker.Subscription(access, [(topics.EVIDENCE_HEAD, 1)], "lw-evidence-verify").open() as sub:
            message = sub.get(timeout=args.broker_timeout)
        if message is None:
            raise evidencehead.HeadError(f"no evidence head retained on {topics.EVIDENCE_HEAD} at {access.where}"
                                         f" after {args.broker_timeout:.0f} s")
        heads.append((f"broker {access.where} {topics.EVIDENCE_HEAD}", evidencehead.parse(message[1])))
    own = config.evidence.head_path(config.store)
    if not heads and not args.no_head and own and os.path.exists(own):
        heads.append((own, evidencehead.read(own)))
    return heads
