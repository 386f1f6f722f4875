"""`linewatch provision NODE_ID ...`: registry entry, board config, broker credentials and ACL."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("provision", help="add a node: registry, board config (key), broker password and ACL")
    p.add_argument("node", metavar="NODE_ID", help="node id in hex, like 0x0102")
    p.add_argument("--segment", type=int, required=True, help="segment number 0..255")
    p.add_argument("--lat", type=float, required=True, help="latitude of the node, decimal degrees (WGS84)")
    p.add_argument("--lon", type=float, required=True, help="longitude of the node, decimal degrees (WGS84)")
    p.add_argument("--alt", type=float, default=0.0, help="altitude in metres")
    p.add_argument("--position-error", type=float, default=10.0, help="position error estimate, metres")
    p.add_argument("--board", default="esp32", choices=("esp32", "rp2", "unix"),
                   help="esp32 (default), rp2 (Pico W) or unix (the virtual board: MicroPython's unix port)")
    p.add_argument("--wifi-ssid", help="Wi-Fi network the node joins (needed for esp32 and rp2)")
    p.add_argument("--wifi-password", help="its password")
    p.add_argument("--broker-host", help="the broker's address as the node reaches it")
    p.add_argument("--broker-port", type=int,
                   help="the broker's port as the node reaches it, and the listener in the generated"
                        " mosquitto.conf where the client id is the user name (default 8883; 1883 with --no-tls)")
    p.add_argument("--commission-port", type=int,
                   help="the generated mosquitto.conf's listener for the commission (aggregator, sniff,"
                        " frames tail, flash), where only the commission's users log in (default 8884;"
                        " 1884 with --no-tls)")
    p.add_argument("--no-tls", action="store_true",
                   help="plain MQTT (no CA, no certificate): only for boards that cannot afford TLS")
    p.add_argument("--tls-name", action="append", default=[],
                   help="a further host name or address the broker's certificate covers (repeatable;"
                        " --broker-host, localhost and 127.0.0.1 always are)")
    p.add_argument("--extra", type=Path, help="JSON file with further board config sections (pins, audio...)")
    p.add_argument("--config", type=Path, help="aggregator config (TOML): registry DB and master key from it")
    p.add_argument("--registry", type=Path, help="registry database (default: the aggregator config's store)")
    p.add_argument("--master-key", type=Path, help="master key file (default: the aggregator config's)")
    p.add_argument("--out", type=Path, default=Path("provisioned"),
                   help="folder for board configs and broker files (default: provisioned/ under the current folder)")
    p.set_defaults(func=run)


def run(args) -> int:
    from linewatch.commission import config as aggregator_config
    from linewatch.keys import KeyFileError, load_master_key
    from linewatch.commission.registry import Registry, RegistryError, parse_node_id
    from lwtools.provision import NodeSpec, ProvisionError, provision
    try:
        node = parse_node_id(args.node)
        settings = aggregator_config.load(args.config)
        extra = json.loads(args.extra.read_text()) if args.extra else {}
        master = load_master_key(args.master_key or settings.keys.master_key_file)
        from lwtools.broker_conf import default_ports
        ports = default_ports(not args.no_tls)
        spec = NodeSpec(node=node, segment=args.segment, lat=args.lat, lon=args.lon, alt_m=args.alt,
                        position_error_m=args.position_error, board=args.board,
                        wifi_ssid=args.wifi_ssid, wifi_password=args.wifi_password,
                        broker_host=args.broker_host or "", broker_port=args.broker_port or ports[0],
                        commission_port=args.commission_port or ports[1], tls=not args.no_tls,
                        tls_names=tuple(args.tls_name), extra=extra)
        registry = Registry.open(args.registry or settings.store.target)
        try:
            provision(spec, registry, master, args.out)
        finally:
            registry.store.close()
    except (RegistryError, KeyFileError, ProvisionError, aggregator_config.ConfigError) as exc:
        print(f"provision: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"provision: error: {exc}", file=sys.stderr)
        return 1
    return 0
