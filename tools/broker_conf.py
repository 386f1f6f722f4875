"""The broker's configuration for LineWatch: the Mosquitto lines that make every client
authenticate and keep to its ACL, and the files put where Mosquitto can read them.

Mosquitto started as root (systemd on Debian) drops to the `mosquitto` user before it reads
the password file and the ACL, so those must belong to that user and lie in folders it may
enter. `provision` writes them beside its other output (given to `mosquitto` when run as
root); `install` copies them into the system's Mosquitto folder (/etc/mosquitto/linewatch) and
adds conf.d/linewatch.conf, which a stock Debian Mosquitto includes.
"""
from __future__ import annotations

import os
import pwd
import stat
import sys
from pathlib import Path

from lwtools.broker_access import write_private

BROKER_USER = "mosquitto"
CONF_NAME = "linewatch.conf"
NODE_PORT, COMMISSION_PORT = 8883, 8884            # MQTT over TLS
PLAIN_NODE_PORT, PLAIN_COMMISSION_PORT = 1883, 1884  # --no-tls
# What provisioning writes into its broker folder and `install` copies: the nodes' password
# file, the commission's, and the ACL both listeners share; with TLS the broker's certificate,
# its key and the line's CA certificate.
FILES = ("passwd", "commission.passwd", "acl")
TLS_FILES = ("ca.crt", "server.crt", "server.key")


def default_ports(tls: bool) -> tuple[int, int]:
    return (NODE_PORT, COMMISSION_PORT) if tls else (PLAIN_NODE_PORT, PLAIN_COMMISSION_PORT)


def tls_lines(files: dict[str, Path]) -> str:
    """The lines that make the listener above them speak TLS with these files."""
    return "".join(f"{option} {Path(files[name]).resolve()}\n" for option, name in
                   (("cafile", "ca.crt"), ("certfile", "server.crt"), ("keyfile", "server.key")))


def check_ports(port: int, commission_port: int) -> None:
    if port == commission_port:
        raise ValueError(f"the nodes' and the commission's listeners need two ports (both {port})")


def mosquitto_conf(password_file: Path, commission_password_file: Path, acl_file: Path,
                   port: int = NODE_PORT, commission_port: int = COMMISSION_PORT,
                   tls: dict[str, Path] | None = None) -> str:
    """A complete Mosquitto configuration for the line (alone with `mosquitto -c`, or as
    conf.d/linewatch.conf of a stock Debian Mosquitto).

    Two listeners, because a client id is the key to a session: whoever connects with a
    connected client's id knocks it off (MQTT 3.1.1 section 3.1.4). On the nodes' listener the
    broker replaces every client id with the user name, so a node's credentials can only ever
    take its own session. The commission's listener admits only the commission's users; there
    the aggregator keeps its persistent session under its configured client id (cluster
    instances `<id>-<n>`) and tools connect under ids of their own, several at once.

    `tls` {"ca.crt": path, "server.crt": path, "server.key": path}: both listeners speak TLS
    only (no plain listener: passwords and frames would cross the node network in clear).
    None: both plain (`provision --no-tls`, for boards that cannot afford TLS)."""
    check_ports(port, commission_port)
    acl = Path(acl_file).resolve()
    secure = tls_lines(tls) if tls else ""
    return ("# LineWatch (written by `linewatch provision` / `linewatch broker install`): every client\n"
            "# authenticates; what it may touch is in the ACL.\n"
            "per_listener_settings true\n"
            "# Alerts and acks are small packets: without this the broker holds each one until\n"
            "# the previous is acknowledged (Nagle's algorithm), up to 40 ms per alert.\n"
            "set_tcp_nodelay true\n\n"
            "# The nodes: the client id is the user name (node-0102), whatever the client sends,\n"
            "# so no node can take over the commission's session or another node's.\n"
            f"listener {port}\n" + secure +
            "use_username_as_clientid true\n"
            "allow_anonymous false\n"
            f"password_file {Path(password_file).resolve()}\n"
            f"acl_file {acl}\n\n"
            "# The commission (aggregator, sniff, frames tail, flash): only its users log in here.\n"
            f"listener {commission_port}\n" + secure +
            "allow_anonymous false\n"
            f"password_file {Path(commission_password_file).resolve()}\n"
            f"acl_file {acl}\n")


def broker_account() -> pwd.struct_passwd | None:
    """The user a root-started Mosquitto drops to, when this machine has it."""
    try:
        return pwd.getpwnam(BROKER_USER)
    except KeyError:
        return None


def give_to_broker(*paths: Path) -> str | None:
    """As root, hand the files (0600) to the broker's user, so the broker can read them after
    dropping privileges. Returns a warning when it still cannot reach them, else None."""
    account = broker_account()
    if os.geteuid() != 0 or account is None:
        return None
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)
    blocked = [d for d in _folders_above(Path(paths[0]).resolve().parent) if not _can_enter(d, account)]
    if blocked:
        return (f"Mosquitto runs as user {BROKER_USER!r}, which cannot enter {blocked[0]}: install the"
                " broker files where it can read them with `sudo %s broker install`" % linewatch_under_sudo())
    return None


def linewatch_under_sudo() -> str:
    """How to name this linewatch after `sudo`: sudo's secure_path (Debian's default) leaves out
    the venv, so a bare `sudo linewatch` is "command not found". The program next to this
    Python (the venv's), by its full path; a bare name when there is none."""
    beside = Path(sys.executable).parent / "linewatch"
    return str(beside.absolute()) if beside.exists() else "linewatch"


def _folders_above(folder: Path) -> list[Path]:
    return [folder, *folder.parents]


def _can_enter(folder: Path, account: pwd.struct_passwd) -> bool:
    st = folder.stat()
    if st.st_uid == account.pw_uid:
        return bool(st.st_mode & stat.S_IXUSR)
    groups = {account.pw_gid} | {g.gr_gid for g in _groups() if account.pw_name in g.gr_mem}
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _groups():
    import grp
    return grp.getgrall()


def install(source: Path, etc: Path = Path("/etc/mosquitto"), port: int | None = None,
            commission_port: int | None = None) -> list[str]:
    """Copy the password files, the ACL and (with TLS) the certificates and key from <source>
    into <etc>/linewatch/ (the broker's user owns them, mode 0600) and write
    <etc>/conf.d/linewatch.conf. Returns what to tell the operator."""
    source, etc = Path(source), Path(etc)
    tls = (source / "server.crt").is_file()
    defaults = default_ports(tls)
    port, commission_port = port or defaults[0], commission_port or defaults[1]
    names = FILES + (TLS_FILES if tls else ())
    missing = [name for name in names if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{source}: no {' or '.join(missing)} (run `linewatch provision` first"
                                " or again: it writes every broker file)")
    check_ports(port, commission_port)
    folder = etc / "linewatch"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o750)
    copies = []
    for name in names:
        write_private(folder / name, (source / name).read_text())
        copies.append(folder / name)
    account = broker_account() if os.geteuid() == 0 else None
    warning = None
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)
        warning = give_to_broker(*copies)
    conf = etc / "conf.d" / CONF_NAME
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(mosquitto_conf(copies[0], copies[1], copies[2], port, commission_port,
                                   {name: folder / name for name in TLS_FILES} if tls else None))
    conf.chmod(0o644)
    owner = account.pw_name if account is not None else pwd.getpwuid(os.geteuid()).pw_name
    notes = [f"broker install: {', '.join(str(c) for c in copies)} (mode 0600, owner {owner}),"
             f" {conf} (nodes' listener {port}, the commission's {commission_port},"
             f" {'TLS' if tls else 'plain: no TLS'})"]
    if warning:
        notes.append(f"broker install: warning: {warning}")
    main = etc / "mosquitto.conf"
    if main.exists() and f"include_dir {conf.parent}" not in main.read_text():
        notes.append(f"broker install: {main} does not include {conf.parent}: add the line"
                     f" `include_dir {conf.parent}` to it")
    notes.append("broker install: apply with `systemctl restart mosquitto` the first time (new listeners),"
                 " `systemctl reload mosquitto` after later provisioning")
    return notes
