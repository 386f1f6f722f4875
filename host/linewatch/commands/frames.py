"""`linewatch frames tail`: decoded frames live from the broker (a read-only observer).

It uses its own clean MQTT session (never the aggregator's), so watching takes nothing away
from the service. With the master key, each frame's tag is checked too.
"""
from __future__ import annotations

import sys

from lwproto import const, frame as wire, hostframe, topic as topics
from lwproto.errors import ProtocolError
from linewatch import broker, keys
from linewatch.commission import config as cfg
from linewatch.keys import KeyFileError

EXIT_BROKER = 3


def register(sub) -> None:
    p = sub.add_parser("frames", help="watch frames on the broker")
    cfg.add_arguments(p)
    fr = p.add_subparsers(dest="frames_command", metavar="ACTION", required=True)
    tail = fr.add_parser("tail", help="print frames as they arrive, decoded")
    tail.add_argument("--broker", help="HOST:PORT (overrides [broker])")
    tail.add_argument("--credentials", help="JSON file with the broker's username/password (overrides [broker];"
                                            " e.g. provisioned/broker/commission.json)")
    tail.add_argument("--segment", type=int, help="only this segment (0..255)")
    tail.add_argument("--count", type=int, default=0, help="stop after this many frames")
    tail.add_argument("--no-verify", action="store_true", help="do not check tags (no master key needed)")
    tail.set_defaults(func=cmd_tail)


def describe(topic: str, data: bytes, master: bytes | None) -> str:
    try:
        ftype, node = wire.peek(data)
        f = wire.decode(data, keys.derive(master, node)) if master else hostframe.decode_unverified(data)
    except ProtocolError as exc:
        return f"{topic}: REFUSED {exc.reason}: {exc}"
    fields = " ".join(f"{k}={_show(k, v)}" for k, v in f.fields().items())
    tag = "tag_ok" if master else "unverified"
    return (f"{topic}: {f.type_name()} node=0x{f.node:04x} boot={f.boot} seq={f.seq} time_us={f.time_us} "
            f"clock={const.CLOCK_NAMES[f.clock_source]}±{f.clock_error_us}us {tag} {fields}")


def _show(name: str, value) -> str:
    if name == "event_class" and isinstance(value, int) and 0 <= value < len(const.CLASS_NAMES):
        return const.CLASS_NAMES[value]
    if name == "command":
        return const.COMMAND_NAMES.get(value, str(value))
    return str(value)


def cmd_tail(args) -> int:
    try:
        config = cfg.from_args(args)
        master = None if args.no_verify else keys.load_master_key(config.keys.master_key_file)
        access = broker.access_from(config.broker, credentials=args.credentials)
    except (cfg.ConfigError, KeyFileError, ValueError) as exc:
        print(f"linewatch frames tail: {exc}", file=sys.stderr)
        return 2
    say = lambda text: print(f"linewatch frames tail: {text}", file=sys.stderr, flush=True)  # noqa: E731
    wanted = topics.uplink_filter(args.segment)
    seen = 0
    try:
        with broker.Subscription(access, [(wanted, 0)], "lw-frames", notice=say).open() as sub:
            say(f"listening on {access.where} as {access.user} ({wanted})"
                + ("" if master else ", tags not checked"))
            while not args.count or seen < args.count:
                message = sub.get(timeout=1.0)
                if message is not None:
                    print(describe(*message, master), flush=True)
                    seen += 1
    except broker.BrokerError as exc:
        say(str(exc))
        return EXIT_BROKER
    return 0
