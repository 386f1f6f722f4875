"""Put a node into the commission's books and make the files its board and the broker need.

One call: the node goes into the registry; its board config (with the node's derived key and
its own broker password) is written with mode 0600 to <out>/node-0102.json; the broker's
password file and ACL are regenerated from the registry into <out>/broker/. The master key
never leaves the commission: only the derived node key goes into the board config.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from lwtools import broker_access, broker_conf
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
    broker_port: int = broker_conf.NODE_PORT
    commission_port: int = broker_conf.COMMISSION_PORT   # the generated broker's listener for the commission
    tls: bool = True                        # the broker speaks TLS only; False: plain (--no-tls)
    tls_names: tuple[str, ...] = ()         # more names or addresses the broker's certificate covers
    extra: dict = field(default_factory=dict)   # further config sections (pins, audio, thresholds...)


@dataclass(frozen=True)
class Provisioned:
    config_path: Path
    password_file: Path
    acl_file: Path
    commission_credentials: Path
    broker_user: str
    commission_password_file: Path
    mosquitto_conf: Path


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
    try:
        broker_conf.check_ports(spec.broker_port, spec.commission_port)
    except ValueError as exc:
        raise ProvisionError(f"{exc}: give --commission-port another")
    if spec.board in ("esp32", "rp2") and not spec.wifi_ssid:
        raise ProvisionError(f"a {spec.board} board needs --wifi-ssid")


def commission_password(broker_dir: Path) -> tuple[Path, str, bool]:
    """The aggregator's broker password: the one in <broker>/commission.json, or a new one
    (True: still to be written)."""
    path = broker_dir / "commission.json"
    if path.exists():
        try:
            data = json.loads(path.read_text())
            return path, data["password"], False
        except (OSError, ValueError, KeyError) as exc:
            raise ProvisionError(f"{path}: unreadable ({exc}); delete it to make new credentials")
    return path, secrets.token_urlsafe(24), True


def provision(spec: NodeSpec, registry, master_key: bytes, out: Path, progress=print) -> Provisioned:
    """All or nothing: everything is computed first (configs, hashes, ACL), then the files are
    written and the registry entry made; if any of that fails (or is interrupted), the files
    are put back as they were. What was done is said at the end.
    `registry`: a linewatch.commission.registry.Registry (add, list)."""
    from lwproto.auth import derive_node_key
    check_spec(spec)
    out = Path(out)
    broker_dir = out / "broker"
    node_password = secrets.token_urlsafe(24)
    config = board_config(spec, derive_node_key(master_key, spec.node), node_password)
    check_board_config(config)
    ca = tls_notes = None
    if spec.tls:    # the CA and the broker's certificate stay made even if what follows fails
        ca, tls_notes = _certificates(spec, out, broker_dir)
        config["broker"]["ca"] = ca.pem
        check_board_config(config)
    credentials, commission_pw, new_commission = commission_password(broker_dir)
    # the commission's plain password is kept, so its line is simply hashed again each time
    passwords = {broker_access.node_user(spec.node): node_password, COMMISSION_USER: commission_pw}
    nodes = {r.id: NodeAccess(r.id, r.segment) for r in registry.list()}
    nodes[spec.node] = NodeAccess(spec.node, spec.segment)
    password_file, commission_file, acl_file = (broker_dir / name for name in broker_conf.FILES)
    warnings: list[str] = []
    try:
        passwd_text, commission_text, acl = broker_access.render(
            password_file, commission_file, list(nodes.values()), passwords, warn=warnings.append)
    except broker_access.AccessError as exc:
        raise ProvisionError(str(exc))
    path = config_path(out, spec.node)
    tls_files = {name: broker_dir / name for name in broker_conf.TLS_FILES} if ca else None
    conf = broker_conf.mosquitto_conf(password_file, commission_file, acl_file, spec.broker_port,
                                      spec.commission_port, tls_files)
    commission = {"username": COMMISSION_USER, "password": commission_pw, "port": spec.commission_port}
    if ca:
        commission["ca"] = str((broker_dir / "ca.crt").resolve())
    files = {path: json.dumps(config, indent=1) + "\n", password_file: passwd_text,
             commission_file: commission_text, acl_file: acl, broker_dir / "mosquitto.conf": conf,
             credentials: json.dumps(commission) + "\n"}
    with _all_or_nothing(files):
        for file, text in files.items():
            broker_access.write_private(file, text)
        unreachable = broker_conf.give_to_broker(password_file, commission_file, acl_file,
                                                 *(tls_files.values() if tls_files else ()))
        try:
            registry.add(spec.node, spec.segment, spec.lat, spec.lon, spec.alt_m)
        except ValueError as exc:
            raise ProvisionError(str(exc))
    for line in warnings + (tls_notes or []):
        progress(line)
    progress("provision: node 0x%04x in segment %d added to the registry" % (spec.node, spec.segment))
    progress(f"provision: board config written to {path} (mode 0600; it holds the node's key)")
    count = f"{len(nodes)} node" + ("" if len(nodes) == 1 else "s")
    progress(f"provision: broker password files, ACL and mosquitto.conf for {count} written to"
             f" {broker_dir}; for the system's Mosquitto:"
             f" sudo {broker_conf.linewatch_under_sudo()} broker install --from {broker_dir}")
    if unreachable:
        progress(f"provision: note: {unreachable}")
    if new_commission:
        progress(f"provision: the aggregator's broker user, password, listener (port {spec.commission_port})"
                 f"{' and CA' if ca else ''} are in {credentials}: start it with --credentials {credentials},"
                 f" or put them in its config's [broker] username, password, port{' and ca_file' if ca else ''}")
    return Provisioned(path, password_file, acl_file, credentials, broker_access.node_user(spec.node),
                       commission_file, broker_dir / "mosquitto.conf")


def _certificates(spec: NodeSpec, out: Path, broker_dir: Path):
    """The line's CA (made once, in <out>/ca/) and the broker's certificate for the names the
    nodes and the commission reach it by, issued again when those change or it nears its end.
    -> (CertificateAuthority, notes for the operator)."""
    from lwtools import tls
    names = list(dict.fromkeys([spec.broker_host, *spec.tls_names, "localhost", "127.0.0.1"]))
    ca_folder = out / "ca"
    fresh_ca = not (ca_folder / "ca.key").exists()
    try:
        ca = tls.CertificateAuthority.load_or_create(ca_folder)
    except ValueError as exc:
        raise ProvisionError(str(exc))
    notes = []
    if fresh_ca:
        notes.append(f"provision: the line's CA made in {ca_folder} (ca.key: keep it off the broker;"
                     " whoever holds it can make a broker the nodes trust)")
    why = tls.server_needs_renewal(broker_dir, names, ca)
    if why:
        broker_dir.mkdir(parents=True, exist_ok=True)
        tls.issue_server(ca, broker_dir, names)
        notes.append(f"provision: the broker's TLS certificate issued for {', '.join(names)} ({why});"
                     " install it and reload Mosquitto")
    return ca, notes


@contextlib.contextmanager
def _all_or_nothing(files: dict[Path, str]):
    """Put every file back as it was (or remove it) if the block does not finish."""
    before = {f: (f.read_bytes(), f.stat()) if f.exists() else None for f in files}
    try:
        yield
    except BaseException:
        for f, old in before.items():
            if old is None:
                f.unlink(missing_ok=True)
            else:
                broker_access.write_private(f, old[0].decode())
                if os.geteuid() == 0:
                    os.chown(f, old[1].st_uid, old[1].st_gid)
        raise
