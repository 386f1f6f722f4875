"""The broker as provisioning sets it up, used as written: Mosquitto started from the generated
mosquitto.conf (as is, and installed into a stock-Debian-like /etc/mosquitto), and every command
that talks to it (frames tail, sniff) connecting with the configured credentials, or saying
clearly that the broker refused it. Provisioning is all or nothing."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.publish as publish
import pytest

from linewatch.commission.registry import Registry
from linewatch.keys import create_master_key, load_master_key
from linewatch.mosquitto import BrokerError, find_mosquitto, free_port, wait_for_port
from lwproto import const, frame, topic
from lwproto.auth import derive_node_key
from lwtools import broker_access
from lwtools.provision import NodeSpec, ProvisionError, provision

LINEWATCH = str(Path(sys.executable).parent / "linewatch")
EVENT = {"event_class": const.EXPLOSION, "confidence": 0.9, "onset_offset_us": -1200, "peak_db": 96.5,
         "duration_ms": 40, "frequency_hz": 120, "snr_db": 31.0}


def run(*args, cwd=None, timeout=60):
    return subprocess.run([LINEWATCH, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture
def site():
    """A folder the `mosquitto` user may enter (pytest's own tmp folders are 0700 for root), as
    a commission's /etc/linewatch would be."""
    folder = Path(tempfile.mkdtemp(prefix="lw-site-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


class Broker:
    """`mosquitto -c CONF`, exactly as an operator would start it; always stopped."""

    def __init__(self, conf: Path, port: int):
        self.port, self.host = port, "127.0.0.1"
        self.process = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(self.host, port, timeout=10)
        except BrokerError:
            self.stop()
            raise AssertionError("Mosquitto did not start from %s:\n%s" % (conf, self.output))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.output = self.process.stdout.read().decode(errors="replace")


def provision_node(site: Path, port: int, desk_port: int, node: str = "0x0102") -> dict:
    result = run("provision", node, "--segment", "3", "--lat", "48.5", "--lon", "37.9", "--board", "unix",
                 "--broker-host", "127.0.0.1", "--broker-port", str(port), "--commission-port", str(desk_port),
                 "--config", "my.toml", cwd=site)
    assert result.returncode == 0, result.stderr
    return json.loads((site / "provisioned" / f"node-{int(node, 16):04x}.json").read_text())


def commission_config(site: Path, port: int, with_credentials: bool = True) -> Path:
    creds = json.loads((site / "provisioned" / "broker" / "commission.json").read_text())
    user = 'username = "%s"\npassword = "%s"\n' % (creds["username"], creds["password"])
    (site / "my.toml").write_text('[broker]\nhost = "127.0.0.1"\nport = %d\nca_file = "%s"\n%s'
                                  % (port, creds["ca"], user if with_credentials else ""))
    return site / "my.toml"


def event_frame(site: Path, node: int = 0x0102) -> bytes:
    master = load_master_key(site / "master.key")
    return frame.encode(derive_node_key(master, node), const.EVENT, node, 1, 1, 1_795_000_000_000_000,
                        const.CLOCK_NTP, 500, EVENT)


def test_the_provisioned_config_starts_mosquitto_as_is_and_commands_use_the_configured_user(site):
    port, desk = free_port(), free_port()
    (site / "my.toml").write_text('[broker]\nport = %d\n' % desk)
    assert run("nodes", "--config", "my.toml", "init-key", cwd=site).returncode == 0
    node = provision_node(site, port, desk)
    conf = site / "provisioned" / "broker" / "mosquitto.conf"
    text = conf.read_text()
    assert f"listener {port}\ncafile " in text and f"listener {desk}\ncafile " in text
    assert text.count("use_username_as_clientid true") == 1 and "keyfile" in text
    if os.geteuid() == 0:       # the broker drops to `mosquitto`: the files are that user's
        owner = pwd.getpwuid((site / "provisioned" / "broker" / "passwd").stat().st_uid).pw_name
        assert owner == "mosquitto"
    broker = Broker(conf, port)
    tail = None
    try:
        commission_config(site, desk)
        tail = subprocess.Popen([LINEWATCH, "frames", "--config", "my.toml", "tail", "--count", "1"],
                                cwd=site, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        frame_bytes = event_frame(site)
        out = None
        while out is None and time.monotonic() < deadline:   # published until the tail has subscribed
            publish.single(topic.uplink(3, 0x0102, const.EVENT), frame_bytes, qos=1, hostname="127.0.0.1",
                           port=port, auth={"username": "node-0102", "password": node["broker"]["password"]},
                           tls={"ca_certs": str(site / "provisioned" / "broker" / "ca.crt")})
            try:
                out, err = tail.communicate(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        assert tail.returncode == 0, err
        assert "event node=0x0102" in out and "tag_ok" in out
        assert f"listening on 127.0.0.1:{desk} (TLS) as commission" in err
        # the commission on the nodes' listener: refused, and told where it belongs
        commission_config(site, port)
        wrong_listener = run("frames", "--config", "my.toml", "tail", "--count", "1", cwd=site, timeout=30)
        assert wrong_listener.returncode == 3 and "commission's listener" in wrong_listener.stderr
        # without the [broker] user: refused at once and said so, not a silent hang
        commission_config(site, desk, with_credentials=False)
        refused = run("frames", "--config", "my.toml", "tail", "--count", "1", cwd=site, timeout=30)
        assert refused.returncode == 3
        assert "refused the connection anonymously" in refused.stderr and "username/password" in refused.stderr
        sniffed = run("sniff", "--config", "my.toml", "--broker", f"127.0.0.1:{desk}", "--count", "1",
                      "--timeout", "10", cwd=site)
        assert sniffed.returncode == 3 and "refused the connection" in sniffed.stderr
        wrong = run("sniff", "--config", "my.toml", "--broker", f"127.0.0.1:{desk}", "--user", "commission",
                    "--password", "nope",
                    "--count", "1", "--timeout", "10", cwd=site)
        assert wrong.returncode == 3 and "refused the connection as user 'commission'" in wrong.stderr
        # the aggregator too: at once (no retries of a refusal), naming the broker and the user
        creds = json.loads((site / "provisioned" / "broker" / "commission.json").read_text())
        (site / "bad.json").write_text(json.dumps({**creds, "password": "nope"}))
        refused = run("aggregator", "--credentials", "bad.json", "--desk", "", cwd=site, timeout=60)
        assert refused.returncode == 3, refused.stderr
        assert f"broker 127.0.0.1:{desk} (TLS) refused the connection as user 'commission'" in refused.stderr
        assert "retry" not in refused.stderr and "unreachable" not in refused.stderr, refused.stderr
    finally:
        if tail is not None and tail.poll() is None:
            tail.kill()
            tail.wait()
        broker.stop()


def test_broker_install_gives_a_stock_debian_mosquitto_what_it_loads(site):
    """/etc/mosquitto as Debian ships it (main file with include_dir conf.d); the installed
    conf.d/linewatch.conf and the files it names, loaded as they are."""
    port, desk = free_port(), free_port()
    (site / "my.toml").write_text("")
    create_master_key(site / "master.key")
    node = provision_node(site, port, desk)
    etc = site / "etc" / "mosquitto"
    (etc / "conf.d").mkdir(parents=True)
    (etc / "mosquitto.conf").write_text(
        f"persistence false\nlog_dest stdout\ninclude_dir {etc}/conf.d\n")
    result = run("broker", "install", "--etc", str(etc), "--port", str(port), "--commission-port", str(desk),
                 cwd=site)
    assert result.returncode == 0, result.stderr
    assert "restart mosquitto" in result.stdout and "include_dir" not in result.stdout
    broker = Broker(etc / "mosquitto.conf", port)
    try:
        creds = {"username": "node-0102", "password": node["broker"]["password"]}
        tls = {"ca_certs": str(site / "provisioned" / "broker" / "ca.crt")}
        publish.single(topic.uplink(3, 0x0102, const.BIRTH), b"x", qos=1, hostname="127.0.0.1", port=port,
                       auth=creds, tls=tls)
        with pytest.raises(Exception):   # anonymous clients are turned away
            publish.single("lw/3/0102/event", b"x", hostname="127.0.0.1", port=port, tls=tls)
        assert plain_connack("127.0.0.1", port) is None   # and plain MQTT gets no answer
        wait_for_port("127.0.0.1", desk)   # and the commission's listener is there too
    finally:
        broker.stop()


def plain_connack(host: str, port: int) -> bytes | None:
    """A plain MQTT CONNECT to a TLS listener: the broker takes it for a bad handshake."""
    import socket
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        try:
            return s.recv(4) or None
        except (ConnectionResetError, socket.timeout):
            return None


def test_provisioning_is_all_or_nothing(tmp_path):
    master = create_master_key(tmp_path / "master.key")
    registry = Registry.open(tmp_path / "registry.db")
    out = tmp_path / "provisioned"
    spec = dict(segment=3, lat=48.5, lon=37.9, board="unix", broker_host="127.0.0.1")
    try:
        provision(NodeSpec(node=0x0102, **spec), registry, master, out, progress=lambda *_: None)
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        # a node the board would refuse: refused before anything is written
        with pytest.raises(ProvisionError):
            provision(NodeSpec(node=0x0103, **{**spec, "lat": 91.0}), registry, master, out,
                      progress=lambda *_: None)
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
        assert [r.id for r in registry.list()] == [0x0102]
        # the registry refuses the node once every file is written (its database is read-only
        # here): each file is put back as it was, the new board config removed
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        readonly = Registry.open(tmp_path / "registry.db", readonly=True)
        try:
            with pytest.raises(Exception, match="(?i)read-only|readonly"):
                provision(NodeSpec(node=0x0103, **spec), readonly, master, out, progress=lambda *_: None)
        finally:
            readonly.store.close()
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
        assert [r.id for r in registry.list()] == [0x0102]
        # the first file cannot be written: nothing else is, and the registry is untouched
        (out / "node-0104.json").mkdir()
        with pytest.raises(OSError):
            provision(NodeSpec(node=0x0104, **spec), registry, master, out, progress=lambda *_: None)
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
        assert [r.id for r in registry.list()] == [0x0102]
    finally:
        registry.store.close()


def test_provision_into_a_closed_pipe_finishes_its_work_quietly(tmp_path):
    """`provision ... | head -c 0`: the reader is gone before anything is printed."""
    create_master_key(tmp_path / "master.key")
    cmd = [LINEWATCH, "provision", "0x0a01", "--segment", "7", "--lat", "48.1", "--lon", "37.2", "--board", "unix",
           "--broker-host", "10.0.0.2", "--registry", "r.db", "--master-key", "master.key"]
    read, write = os.pipe()
    os.close(read)
    result = subprocess.run(cmd, stdout=write, stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=60)
    os.close(write)
    assert "Traceback" not in result.stderr
    registry = Registry.open(tmp_path / "r.db")
    try:
        assert [r.id for r in registry.list()] == [0x0a01]
    finally:
        registry.store.close()
    assert "node-0a01:" in (tmp_path / "provisioned" / "broker" / "passwd").read_text()
    assert "user node-0a01" in (tmp_path / "provisioned" / "broker" / "acl").read_text()
    assert broker_access.node_user(0x0a01) == "node-0a01"
