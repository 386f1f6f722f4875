"""`linewatch sniff`: print every frame on the broker, decoded (and verified with the master key)."""
from __future__ import annotations

import sys
from pathlib import Path

EXIT_BROKER = 3


def register(sub) -> None:
    p = sub.add_parser("sniff", help="print every frame on the broker, decoded and verified")
    p.add_argument("--broker", default=None, help="HOST:PORT (default: the aggregator config's broker)")
    p.add_argument("--user", help="broker user (default: the aggregator config's)")
    p.add_argument("--password", help="broker password (default: the aggregator config's)")
    p.add_argument("--credentials", type=Path,
                   help="JSON file with username/password (provisioned/broker/commission.json)")
    p.add_argument("--config", type=Path, help="aggregator config (TOML): broker, registry, master key")
    p.add_argument("--registry", type=Path, help="registry database: flag nodes it does not know")
    p.add_argument("--master-key", type=Path, help="master key file: verify every frame's tag")
    p.add_argument("--raw", action="store_true", help="add each frame's bytes in hex")
    p.add_argument("--count", type=int, help="stop after this many messages")
    p.add_argument("--timeout", type=float, help="stop after this many seconds")
    p.set_defaults(func=run)


def run(args) -> int:
    from linewatch import broker
    from linewatch.commission import config as aggregator_config
    from linewatch.commission.store import StoreError
    from linewatch.keys import KeyFileError, load_master_key
    from lwtools.sniff import Verifier, sniff
    try:
        settings = aggregator_config.load(args.config)
        access = broker.access_from(settings.broker, broker=args.broker, credentials=args.credentials,
                                    username=args.user, password=args.password)
        verifier = Verifier()
        key_file = args.master_key or (settings.keys.master_key_file if args.config else None)
        if key_file:
            verifier.master_key = load_master_key(key_file)
        registry_db = args.registry or (settings.store.target if args.config else None)
        if registry_db:
            verifier.known_nodes = _known_nodes(registry_db)
    except (aggregator_config.ConfigError, KeyFileError, StoreError, ValueError, OSError) as exc:
        print(f"sniff: error: {exc}", file=sys.stderr)
        return 2
    try:
        return sniff(access, verifier, raw=args.raw, count=args.count, timeout=args.timeout,
                     out=lambda line: print(line, flush=True),
                     notice=lambda line: print(line, file=sys.stderr, flush=True))
    except broker.BrokerError as exc:
        print(f"sniff: error: {exc}", file=sys.stderr)
        return EXIT_BROKER


def _known_nodes(db_path):
    from linewatch.commission.registry import Registry
    registry = Registry.open(db_path, readonly=True)
    return lambda node: registry.get(node) is not None
