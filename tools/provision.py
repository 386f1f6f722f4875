"""Put a node into the commission's books and make the files its board and the broker need.

One call: the node goes into the registry; its board config (with the node's derived key and
its own broker password) is written with mode 0600 to <out>/node-0102.json; the broker's
password file and ACL are regenerated from the registry into <out>/broker/. The master key
never leaves the commission: only the derived node key goes into the board config.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from lwtools import broker_access
from lwtools.broker_access import COMMISSION_USER, NodeAccess

BOARDS = ("esp32", "rp2", "unix")


class ProvisionError(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeSpec:
    node: int
    segment: int
    lat: float
    lon: float
    alt_m: float = 0.0
    position_error_m: float = 10.0
    board: str = "esp32"
    wifi_ssid: str | None = None
    wifi_password: str | None = None
    broker_host: str = ""
    broker_port: int = 1883
    extra: dict = field(default_factory=dict)   # further config sections (pins, audio, thresholds...)


@dataclass(frozen=True)
class Provisioned:
    config_path: Path
    password_file: Path
    acl_file: Path
    commission_credentials: Path
    broker_user: str


def config_path(out: Path, node: int) -> Path:
    return Path(out) / ("node-%04x.json" % node)


def board_config(spec: NodeSpec, node_key: bytes, broker_password: str) -> dict:
    config = {
        "node": spec.node,
        "segment": spec.segment,
        "key": node_key.hex(),
        "board": spec.board,
        "position": {"lat": spec.lat, "lon": spec.lon, "alt_m": spec.alt_m,
                     "error_m": spec.position_error_m},
        "wifi": {"ssid": spec.wifi_ssid, "password": spec.wifi_password},
        "broker": {"host": spec.broker_host, "port": spec.broker_port,
                   "user": broker_access.node_user(spec.node), "password": broker_password},
    }
    config.update(spec.extra)
    return config


def check_board_config(config: dict) -> None:
    """The same check the board makes at boot, so a bad config fails here, not on the line."""
    try:
        from lwnode import config as node_config
    except ImportError:
        return
    try:
        node_config.parse(config)
    except node_config.ConfigError as exc:
        raise ProvisionError(str(exc))


def check_spec(spec: NodeSpec) -> None:
    if spec.board not in BOARDS:
        raise ProvisionError(f"board {spec.board!r} not one of {', '.join(BOARDS)}")
    if not spec.broker_host:
        raise ProvisionError("the broker's address as the node will reach it is needed (--broker-host)")
    if spec.board in ("esp32", "rp2") and not spec.wifi_ssid:
        raise ProvisionError(f"a {spec.board} board needs --wifi-ssid")


def commission_password(broker_dir: Path) -> tuple[Path, str, bool]:
    """The aggregator's broker password, made once and kept in <broker>/commission.json (0600)."""
    path = broker_dir / "commission.json"
    if path.exists():
        try:
            data = json.loads(path.read_text())
            return path, data["password"], False
        except (OSError, ValueError, KeyError) as exc:
            raise ProvisionError(f"{path}: unreadable ({exc}); delete it to make new credentials")
    password = secrets.token_urlsafe(24)
    broker_access.write_private(path, json.dumps({"username": COMMISSION_USER, "password": password}) + "\n")
    return path, password, True


def provision(spec: NodeSpec, registry, master_key: bytes, out: Path, progress=print) -> Provisioned:
    """`registry`: a linewatch.commission.registry.Registry (add, list)."""
    from lwproto.auth import derive_node_key
    check_spec(spec)
    out = Path(out)
    broker_dir = out / "broker"
    node_password = secrets.token_urlsafe(24)
    config = board_config(spec, derive_node_key(master_key, spec.node), node_password)
    check_board_config(config)
    try:
        registry.add(spec.node, spec.segment, spec.lat, spec.lon, spec.alt_m)
    except ValueError as exc:
        raise ProvisionError(str(exc))
    progress("provision: node 0x%04x in segment %d added to the registry" % (spec.node, spec.segment))
    path = config_path(out, spec.node)
    broker_access.write_private(path, json.dumps(config, indent=1) + "\n")
    progress(f"provision: board config written to {path} (mode 0600; it holds the node's key)")
    credentials, commission_pw, new_commission = commission_password(broker_dir)
    # the commission's plain password is kept, so its line is simply hashed again each time
    passwords = {broker_access.node_user(spec.node): node_password, COMMISSION_USER: commission_pw}
    nodes = [NodeAccess(r.id, r.segment) for r in registry.list()]
    password_file, acl_file = broker_dir / "passwd", broker_dir / "acl"
    try:
        broker_access.regenerate(password_file, acl_file, nodes, passwords, warn=progress)
    except broker_access.AccessError as exc:
        raise ProvisionError(str(exc))
    broker_access.write_private(broker_dir / "mosquitto.conf",
                                broker_access.mosquitto_conf(password_file, acl_file))
    progress(f"provision: broker password file and ACL for {len(nodes)} nodes written to {broker_dir}"
             " (reload Mosquitto to apply: systemctl reload mosquitto)")
    if new_commission:
        progress(f"provision: the aggregator's broker credentials are in {credentials}:"
                 " put them in the aggregator's [broker] username/password")
    return Provisioned(path, password_file, acl_file, credentials, broker_access.node_user(spec.node))
