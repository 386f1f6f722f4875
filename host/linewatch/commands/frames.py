"""`linewatch frames tail`: decoded frames live from the broker (a read-only observer).

It uses its own clean MQTT session (never the aggregator's), so watching takes nothing away
from the service. With the master key, each frame's tag is checked too.
"""
from __future__ import annotations

import sys
import time

import paho.mqtt.client as paho

from lwproto import const, frame as wire, topic as topics
from lwproto.errors import ProtocolError
from linewatch import keys
from linewatch.commission import config as cfg
from linewatch.keys import KeyFileError


def register(sub) -> None:
    p = sub.add_parser("frames", help="watch frames on the broker")
    cfg.add_arguments(p)
    fr = p.add_subparsers(dest="frames_command", metavar="ACTION", required=True)
    tail = fr.add_parser("tail", help="print frames as they arrive, decoded")
    tail.add_argument("--broker", help="HOST:PORT (overrides [broker])")
    tail.add_argument("--segment", type=int, help="only this segment")
    tail.add_argument("--count", type=int, default=0, help="stop after this many frames")
    tail.add_argument("--no-verify", action="store_true", help="do not check tags (no master key needed)")
    tail.set_defaults(func=cmd_tail)


def describe(topic: str, data: bytes, master: bytes | None) -> str:
    try:
        ftype, node = wire.peek(data)
        key = keys.derive(master, node) if master else None
        f = wire.decode(data, key)
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
    except (cfg.ConfigError, KeyFileError) as exc:
        print(f"linewatch frames tail: {exc} (or use --no-verify)", file=sys.stderr)
        return 2
    seen = 0
    done = False

    def on_message(client, userdata, message) -> None:
        nonlocal seen, done
        if done:             # paho may deliver a few more before the loop stops
            return
        print(describe(message.topic, message.payload, master), flush=True)
        seen += 1
        if args.count and seen >= args.count:
            done = True

    def on_connect(client, userdata, flags, reason, properties=None) -> None:
        client.subscribe(topics.uplink_filter(args.segment), qos=0)

    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_connect = on_connect
    try:
        client.connect(config.broker.host, config.broker.port, keepalive=30)
    except OSError as exc:
        print(f"linewatch frames tail: broker {config.broker.host}:{config.broker.port}: {exc}", file=sys.stderr)
        return 3
    client.loop_start()
    try:
        while not done:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    return 0
