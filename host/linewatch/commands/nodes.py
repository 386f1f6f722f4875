"""`linewatch nodes`: the registry (add/list/remove), health (status), the master key, and commands to a node (through the desk)."""
from __future__ import annotations

import getpass
import json
import sys
import time

from linewatch.commission import config as cfg
from linewatch.commission.commands import COMMANDS, CommandError, arguments
from linewatch.keys import KeyFileError, create_master_key
from linewatch.commission.health import ASLEEP_UNTIL, CLOCK_OFFSET, utc_text
from linewatch.commission.registry import Registry, RegistryError, parse_node_id
from linewatch.commission.store import StoreError, open_store


def register(sub) -> None:
    p = sub.add_parser("nodes", help="node registry and health")
    cfg.add_arguments(p)
    nodes = p.add_subparsers(dest="nodes_command", metavar="ACTION", required=True)
    add = nodes.add_parser("add", help="add or move a node")
    add.add_argument("node", help="node id in hex, like 0x0102")
    add.add_argument("--segment", type=int, required=True, help="segment of the line, 0..255")
    add.add_argument("--lat", type=float, required=True, help="latitude of the node, decimal degrees (WGS84)")
    add.add_argument("--lon", type=float, required=True, help="longitude of the node, decimal degrees (WGS84)")
    add.add_argument("--alt", type=float, default=0.0, help="altitude in metres")
    add.set_defaults(func=cmd_add)
    nodes.add_parser("list", help="registered nodes").set_defaults(func=cmd_list)
    rm = nodes.add_parser("remove", help="remove a node (its evidence stays)")
    rm.add_argument("node", help="node id in hex, like 0x0102")
    rm.set_defaults(func=cmd_remove)
    nodes.add_parser("status", help="health of every node").set_defaults(func=cmd_status)
    nodes.add_parser("init-key", help="create the master key file (0600)").set_defaults(func=cmd_init_key)
    _command_parser(nodes)


def _command_parser(nodes) -> None:
    c = nodes.add_parser("command", help="send a signed command to a node through the running aggregator's desk "
                                         "(recorded in the evidence log with the operator's name)")
    c.add_argument("node", help="node id in hex, like 0x0102")
    c.add_argument("command", choices=COMMANDS, help="what the node is to do")
    c.add_argument("--class", dest="event_class", help="set_threshold: the event class (explosion, small_arms, "
                                                       "drone, vehicle, tamper)")
    c.add_argument("--threshold", type=float, help="set_threshold: the class's new detection threshold")
    c.add_argument("--refractory-ms", type=int, help="set_threshold: quiet time after a detection (0: unchanged)")
    c.add_argument("--delay-s", type=int, help="reboot: seconds before the node reboots (default 0)")
    c.add_argument("--boot", type=int, help="resend: the boot whose frames are asked for again")
    c.add_argument("--first-seq", type=int, help="resend: first sequence asked for")
    c.add_argument("--last-seq", type=int, help="resend: last sequence asked for (default: --first-seq)")
    c.add_argument("--operator", default=getpass.getuser(),
                   help="the desk operator sending it (default: this user's login name)")
    c.add_argument("--desk", help="the desk's address (default: from [desk] listen)")
    c.add_argument("--password-stdin", action="store_true",
                   help="read the operator's password from standard input instead of asking")
    c.add_argument("--wait", type=float, default=30.0,
                   help="seconds to wait for the node's answer (0: do not wait; default 30)")
    c.set_defaults(func=cmd_command)


def _registry(args, readonly: bool = False) -> Registry:
    config = cfg.from_args(args)
    return Registry(open_store(config.store.target, config.store.synchronous, readonly=readonly))


def _guard(fn):
    def run(args) -> int:
        try:
            return fn(args)
        except (cfg.ConfigError, RegistryError, StoreError, KeyFileError) as exc:
            print(f"linewatch nodes: {exc}", file=sys.stderr)
            return 2
    return run


@_guard
def cmd_add(args) -> int:
    r = _registry(args).add(parse_node_id(args.node), args.segment, args.lat, args.lon, args.alt)
    print(f"node 0x{r.id:04x} segment {r.segment} at {r.lat:.7f}, {r.lon:.7f} ({r.alt_m:.0f} m)")
    return 0


@_guard
def cmd_list(args) -> int:
    nodes = _registry(args, readonly=True).list()
    print(f"{'node':8} {'segment':>7} {'lat':>12} {'lon':>12} {'alt_m':>7}")
    for r in nodes:
        print(f"0x{r.id:04x}   {r.segment:7d} {r.lat:12.7f} {r.lon:12.7f} {r.alt_m:7.0f}")
    return 0


@_guard
def cmd_remove(args) -> int:
    node = parse_node_id(args.node)
    if not _registry(args).remove(node):
        print(f"linewatch nodes: node 0x{node:04x} is not registered", file=sys.stderr)
        return 1
    print(f"node 0x{node:04x} removed")
    return 0


@_guard
def cmd_status(args) -> int:
    registry = _registry(args, readonly=True)
    health = {h.node: h for h in registry.store.health()}
    now = time.time_ns() // 1000
    print(f"{'node':8} {'state':12} {'seen_s_ago':>10} {'boot':>5} {'battery_mv':>10} {'rssi':>5} "
          f"{'queue':>5} {'clock':>8} {'err_us':>7} firmware")
    for r in registry.list():
        h = health.get(r.id)
        if h is None:
            print(f"0x{r.id:04x}   {'never_heard':12}")
            continue
        clock = ("none", "ntp", "gps_pps")[h.clock_source] if 0 <= h.clock_source <= 2 else "?"
        counters = json.loads(h.counters or "{}")
        note = ""
        if h.state == "asleep" and counters.get(ASLEEP_UNTIL):
            note = f"  asleep until {utc_text(counters[ASLEEP_UNTIL])}"
        elif counters.get("power", 0) & 1:
            note = f"  saving power: heartbeat every {counters.get('heartbeat_s', '?')} s"
        if counters.get(CLOCK_OFFSET) is not None:
            note += (f"  CLOCK: its arrivals miss located sources by {counters[CLOCK_OFFSET] / 1000:+.0f} ms"
                     " (fusion weighs them less); check its time source")
        if counters.get("power", 0) & 2:
            note += "  DEGRADED: could not publish this boot (out of memory); reboot or reflash it"
        print(f"0x{r.id:04x}   {h.state:12} {(now - h.last_seen_us) / 1e6:10.1f} {h.boot:5d} {h.battery_mv:10d} "
              f"{h.rssi_dbm:5d} {h.queue_depth:5d} {clock:>8} {h.clock_error_us:7d} {h.firmware}{note}")
    return 0


def cmd_command(args) -> int:
    from linewatch.desk.client import DeskClient, DeskClientError, url_of
    try:
        node = parse_node_id(args.node)
        wanted = {"set_threshold": {"event_class": args.event_class, "threshold": args.threshold,
                                    "refractory_ms": args.refractory_ms},
                  "reboot": {"delay_s": args.delay_s}, "rebirth": {},
                  "resend": {"boot": args.boot, "first_seq": args.first_seq, "last_seq": args.last_seq}}
        values = {k: v for k, v in wanted[args.command].items() if v is not None}
        arguments(args.command, values)           # refused here, before asking for a password
        client = DeskClient(args.desk or url_of(cfg.from_args(args)))
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass(f"desk password for {args.operator}: ")
        client.login(args.operator, password)
        sent = client.command(node, args.command, values)
    except (cfg.ConfigError, RegistryError, CommandError, DeskClientError) as exc:
        print(f"linewatch nodes command: {exc}", file=sys.stderr)
        return 2
    print(f"{args.command} {json.dumps(sent['args'])} sent to node 0x{node:04x} by {sent['who']} "
          f"(evidence row {sent['evidence_id']})")
    if args.wait <= 0:
        return 0
    try:
        effect = client.wait_effect(node, sent["evidence_id"], args.wait)
    except DeskClientError as exc:
        print(f"linewatch nodes command: {exc}", file=sys.stderr)
        return 2
    if effect is None or effect["state"] == "waiting":
        print(f"node 0x{node:04x}: no answer within {args.wait:g} s (the desk keeps watching: node page)")
        return 1
    print(f"node 0x{node:04x}: {effect['state']}: {effect['detail']}")
    return 0 if effect["state"] == "obeyed" else 1


@_guard
def cmd_init_key(args) -> int:
    path = cfg.from_args(args).keys.master_key_file
    create_master_key(path)
    print(f"master key written to {path} (mode 0600); keep a copy offline")
    return 0
