"""`linewatch aggregator`: run the commission's service until SIGTERM/SIGINT."""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path

from linewatch import broker
from linewatch.commission import config as cfg
from linewatch.keys import KeyFileError, create_master_key, load_master_key
from linewatch.commission.mqtt import BrokerUnreachable
from linewatch.commission.store import StoreError, open_store

EXIT_CONFIG, EXIT_BROKER, EXIT_STORE = 2, 3, 4


def register(sub) -> None:
    p = sub.add_parser("aggregator", help="run the commission's aggregator service")
    cfg.add_arguments(p)
    p.add_argument("--broker", help="HOST:PORT of the MQTT broker (overrides [broker])")
    p.add_argument("--client-id", help="MQTT client id (the persistent session's name)")
    p.add_argument("--credentials", help="JSON file with the broker's username/password, like provisioned/broker/"
                                         "commission.json, whose port and CA certificate it takes too"
                                         " (overrides [broker]; --broker's port wins)")
    p.add_argument("--desk", metavar="HOST:PORT", help="where the desk listens (overrides [desk] listen;"
                                                       " '' for no desk, port 0 for any free port)")
    p.add_argument("--instance", help="this instance's name when several share the line "
                                      "(overrides [cluster] instance; needs [store] url)")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        config = with_flags(cfg.from_args(args), args)
        if not args.verbose:
            logging.getLogger().setLevel(config.log_level.upper())
        store = open_store(config.store.target, config.store.synchronous)
    except cfg.ConfigError as exc:
        print(f"linewatch aggregator: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as exc:
        print(f"linewatch aggregator: {exc}", file=sys.stderr)
        return EXIT_STORE
    try:
        master = master_key(config.keys.master_key_file, store)
    except KeyFileError as exc:
        store.close()
        print(f"linewatch aggregator: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return asyncio.run(serve(config, master, store))
    finally:
        store.close()


def with_flags(config: cfg.Config, args) -> cfg.Config:
    """--credentials and --desk applied to the config (the shared flags are from_args')."""
    if args.credentials:
        try:
            access = broker.access_from(config.broker, broker=args.broker, credentials=args.credentials)
        except ValueError as exc:
            raise cfg.ConfigError(str(exc)) from None
        config = replace(config, broker=replace(config.broker, port=access.port, username=access.username,
                                                password=access.password, ca_file=access.ca_file))
    if args.desk is not None:
        config = replace(config, desk=replace(config.desk, listen=args.desk))
    return cfg.validate(config)


def master_key(path: str, store) -> bytes:
    """The master key; a new one only for a new commission (no node registered, no evidence):
    otherwise every node key was derived from the missing one, and a new key would make the
    service refuse every frame."""
    if Path(path).exists() or store.nodes() or _has_evidence(store):
        return load_master_key(path)
    key = create_master_key(path)
    print(f"linewatch aggregator: no master key yet: created {path} (mode 0600); keep a copy offline",
          file=sys.stderr)
    return key


def _has_evidence(store) -> bool:
    rows = store.evidence()
    try:
        return next(rows, None) is not None
    finally:
        getattr(rows, "close", lambda: None)()


async def serve(config, master, store) -> int:
    from linewatch.commission.service import Aggregator
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    aggregator = Aggregator(config, master, store)
    from linewatch.desk.app import start_desk
    desk = await start_desk(config, master, aggregator)
    try:
        await aggregator.run(stop)
    except BrokerUnreachable as exc:
        print(f"linewatch aggregator: {exc}", file=sys.stderr)
        return EXIT_BROKER
    except StoreError as exc:
        # nothing uncommitted was acked: nodes resend after the restart
        print(f"linewatch aggregator: {exc}", file=sys.stderr)
        return EXIT_STORE
    finally:
        if desk is not None:
            await desk.stop()
    return 0
