"""`linewatch flash --port PORT --node NODE_ID`: build and config onto a board, then watch it boot."""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("flash", help="copy a build and a node's config onto a board (only what changed)"
                                     " and wait for its self-test and birth")
    p.add_argument("--port", required=True, help="serial port of the board (/dev/ttyUSB0, /dev/ttyACM0)")
    p.add_argument("--node", required=True, help="node id in hex, like 0x0102")
    p.add_argument("--build", type=Path, help="build folder (default: build/esp32 under the current folder)")
    p.add_argument("--config", type=Path, help="the node's board config (default: provisioned/node-XXXX.json under the current folder)")
    reset = p.add_mutually_exclusive_group()
    reset.add_argument("--no-reset", action="store_true", help="copy only: no reset, no self-test wait")
    reset.add_argument("--virtual", action="store_true",
                       help="the board is the MicroPython unix port behind a pseudo-terminal: start main.py"
                            " instead of resetting (a reset would end it)")
    p.add_argument("--broker", help="host:port of the broker's commission listener as seen from here (default:"
                                    " the config's host, the credentials file's port)")
    p.add_argument("--credentials", type=Path,
                   help="broker credentials to watch for the birth (default: provisioned/broker/commission.json)")
    p.add_argument("--self-test-timeout", type=float, default=60.0,
                   help="seconds to wait for the board's self-test line after the reset (default 60)")
    p.add_argument("--birth-timeout", type=float, default=60.0,
                   help="seconds to wait for the node's birth frame on the broker (default 60)")
    p.add_argument("--timeout", type=float, default=30.0, help="limit for each mpremote call, seconds")
    p.set_defaults(func=run)


def run(args) -> int:
    from linewatch.broker import credentials_listener, parse_address, read_credentials
    from linewatch.commission.registry import RegistryError, parse_node_id
    from lwtools.flash import FlashError, Options, flash
    from lwtools.remote import Mpremote, RemoteError
    try:
        node = parse_node_id(args.node)
        config = args.config or Path("provisioned") / ("node-%04x.json" % node)
        options = Options(reset="none" if args.no_reset else "virtual" if args.virtual else "hard",
                          self_test_timeout=args.self_test_timeout, birth_timeout=args.birth_timeout)
        credentials = args.credentials or (config.parent / "broker" / "commission.json")
        if args.credentials or credentials.exists():
            options.broker_user, options.broker_password = read_credentials(credentials)
            options.broker_port, options.broker_ca = credentials_listener(credentials)
        if args.broker:
            options.broker = parse_address(args.broker)
        flash(Mpremote(args.port, timeout=args.timeout), args.build or Path("build/esp32"), config, node,
              options, progress=lambda line: print(line, flush=True))
    except (RegistryError, FlashError, RemoteError) as exc:
        print(f"flash: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"flash: error: {exc}", file=sys.stderr)
        return 1
    return 0
