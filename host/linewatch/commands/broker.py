"""`linewatch broker install`: the provisioned broker files into the system's Mosquitto."""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("broker", help="the commission's Mosquitto: install what provisioning made")
    actions = p.add_subparsers(dest="broker_command", metavar="ACTION", required=True)
    install = actions.add_parser(
        "install", help="copy the password files, acl and TLS files into ETC/linewatch (owned by the mosquitto user)"
                        " and write"
                        " ETC/conf.d/linewatch.conf (run as root; then restart or reload Mosquitto)")
    install.add_argument("--from", dest="source", type=Path, default=Path("provisioned/broker"),
                         help="the folder `linewatch provision` wrote (default: provisioned/broker,"
                              " relative to the current folder)")
    install.add_argument("--etc", type=Path, default=Path("/etc/mosquitto"),
                         help="Mosquitto's configuration folder (default: /etc/mosquitto)")
    install.add_argument("--port", type=int,
                         help="the nodes' listener (client id = user name; default 8883, plain 1883)")
    install.add_argument("--commission-port", type=int,
                         help="the commission's listener: aggregator and tools, its users only (default 8884,"
                              " plain 1884)")
    install.set_defaults(func=cmd_install)


def cmd_install(args) -> int:
    from lwtools.broker_conf import install
    try:
        for line in install(args.source, args.etc, args.port, args.commission_port):
            print(line)
    except (OSError, ValueError) as exc:
        print(f"linewatch broker install: {exc}", file=sys.stderr)
        return 1
    return 0
