"""`linewatch update`: push a `linewatch build` output over the air to one node, a segment or
the whole line, paced (--share), with progress per node (SPEC.md section 10)."""
from __future__ import annotations

import getpass
import sys
import threading
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("update", help="push a build over the air to a node, a segment or the line")
    p.add_argument("build", type=Path, help="a `linewatch build` folder (build/esp32, build/rp2)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--node", help="one node, in hex like 0x0102")
    who.add_argument("--segment", type=int, help="every registered node of this segment")
    who.add_argument("--line", action="store_true", help="every registered node")
    p.add_argument("--share", type=float, default=0.25,
                   help="at most this share of a segment's nodes update at once (at least one; default 0.25)")
    p.add_argument("--wait", type=float, default=300.0,
                   help="seconds to wait for each node's birth after its last chunk (default 300)")
    p.add_argument("--config", type=Path, help="aggregator config (TOML): broker, registry, master key")
    p.add_argument("--broker", default=None, help="HOST:PORT (default: the aggregator config's broker)")
    p.add_argument("--credentials", type=Path,
                   help="JSON file with username/password (provisioned/broker/commission.json)")
    p.add_argument("--registry", type=Path, help="registry database (default: the config's store)")
    p.add_argument("--master-key", type=Path, help="master key file (default: the config's)")
    p.add_argument("--operator", default=getpass.getuser(),
                   help="who pushes it, for the evidence log (default: this user's login name)")
    p.set_defaults(func=run)


def run(args) -> int:
    from linewatch import broker
    from linewatch.commission import config as aggregator_config
    from linewatch.commission.evidence import commission_entry
    from linewatch.commission.registry import Registry, RegistryError, parse_node_id
    from linewatch.commission.rollout import Rollout
    from linewatch.commission.store import Batch, StoreError, open_store
    from linewatch.keys import KeyFileError, load_master_key
    from lwtools.build import BuildError, update_image
    if not 0 < args.share <= 1:
        print("update: error: --share must be in (0, 1], got %s" % args.share, file=sys.stderr)
        return 2
    try:
        settings = aggregator_config.load(args.config)
        access = broker.access_from(settings.broker, broker=args.broker, credentials=args.credentials)
        master = load_master_key(args.master_key or settings.keys.master_key_file)
        store = open_store(str(args.registry or settings.store.target))
        nodes = Registry(store).list()
        image, release, arch = update_image(args.build)
        if args.node:
            wanted = parse_node_id(args.node)
            targets = [(n.id, n.segment) for n in nodes if n.id == wanted]
            if not targets:
                raise RegistryError("node 0x%04x is not in the registry" % wanted)
        else:
            targets = [(n.id, n.segment) for n in nodes if args.line or n.segment == args.segment]
            if not targets:
                raise RegistryError("no registered node in %s" % ("the line" if args.line else "segment %d" % args.segment))
    except (aggregator_config.ConfigError, KeyFileError, StoreError, RegistryError, BuildError, ValueError,
            OSError) as exc:
        print(f"update: error: {exc}", file=sys.stderr)
        return 2
    sizes: dict[int, int] = {}
    for n in nodes:
        sizes[n.segment] = sizes.get(n.segment, 0) + 1

    def report(node: int, text: str) -> None:
        print("0x%04x: %s" % (node, text), flush=True)

    recording = threading.Lock()

    def record(entry_type: str, node: int, content: dict) -> None:
        """The evidence log: who pushed what to which node, and what came of it. One commit at
        a time: the rollout's node threads record at once, and two commits chaining from the
        same last row lost one entry (a StoreError said only on stderr)."""
        try:
            with recording:
                store.commit(Batch(evidence=[commission_entry(entry_type, node, content, who=args.operator)]))
        except StoreError as exc:
            print("update: warning: not recorded in the evidence log: %s" % exc, file=sys.stderr)

    rollout = Rollout(image, release, arch, master, share=args.share, wait_s=args.wait, report=report,
                      record=record)
    print("update: %d.%d.%d (%d bytes) to %d node(s), at most %s of a segment at once"
          % (*release, len(image), len(targets), args.share), flush=True)
    try:
        client = broker.client(access, "linewatch-update")
        client.connect(access.host, access.port)
        client.loop_start()
    except (broker.BrokerError, OSError) as exc:
        print(f"update: error: broker {access.host}:{access.port}: {exc}", file=sys.stderr)
        return 3
    try:
        outcomes = rollout.run(client, targets, sizes)
    finally:
        client.disconnect()
        client.loop_stop()
    done = sum(1 for o in outcomes.values() if o.state == "updated")
    print("update: %d of %d node(s) updated" % (done, len(outcomes)), flush=True)
    return 0 if done == len(outcomes) else 1
