"""Nobody takes over someone else's session (issue 12 defect 5): on a real Mosquitto started from
the generated configuration (TLS, as provisioning makes it), a client holding node A's credentials connects under the
commission's client id and under node B's; the commission (two cluster instances and a tool
beside the single aggregator's persistent session) and node B stay connected and keep hearing
and publishing. Before, one listener took any client id from any user: MQTT gives the session to
the newest connection with that id, and the commission was knocked off."""
from __future__ import annotations

import json
import queue
import time

import paho.mqtt.client as paho
import pytest

from linewatch.broker import BrokerAccess, Subscription
from linewatch.commission.registry import Registry
from linewatch.keys import create_master_key
from linewatch.mosquitto import Mosquitto, free_port, wait_for_port
from lwtools.provision import NodeSpec, provision

QUIET = lambda *_: None  # noqa: E731


class Client:
    """A paho client under a chosen client id that records every disconnect and message."""

    def __init__(self, port: int, client_id: str, user: str, password: str, ca: str,
                 clean_session: bool = False):
        self.client_id = client_id
        self.connects: queue.Queue = queue.Queue()
        self.disconnects: list = []
        self.received: queue.Queue = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv311, clean_session=clean_session)
        self.client.username_pw_set(user, password)
        self.client.tls_set(ca_certs=ca)
        self.client.on_connect = lambda c, u, f, rc, p: self.connects.put(rc)
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnects.append(str(rc))
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, bytes(m.payload)))
        self.client.reconnect_delay_set(1, 2)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        self.rc = self.connects.get(timeout=10)

    def subscribe(self, topic: str) -> None:
        done: queue.Queue = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, codes, p: done.put(codes)
        self.client.subscribe(topic, qos=1)
        assert not done.get(timeout=10)[0].is_failure

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def wait_for(self, payload: bytes, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.received.get(timeout=0.2)[1] == payload:
                    return True
            except queue.Empty:
                pass
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def line(tmp_path):
    """Nodes 0x0102 (segment 3) and 0x0103 (segment 4) provisioned; Mosquitto started from the
    generated mosquitto.conf as it is. -> (broker, commission credentials, {node: broker section})."""
    master = create_master_key(tmp_path / "master.key")
    registry = Registry.open(tmp_path / "registry.db")
    ports = dict(broker_port=free_port(), commission_port=free_port())
    nodes = {}
    try:
        for node, segment in ((0x0102, 3), (0x0103, 4)):
            done = provision(NodeSpec(node=node, segment=segment, lat=48.5, lon=37.9, board="unix",
                                      broker_host="127.0.0.1", **ports), registry, master,
                             tmp_path / "provisioned", progress=QUIET)
            nodes[node] = json.loads(done.config_path.read_text())["broker"]
    finally:
        registry.store.close()
    commission = json.loads(done.commission_credentials.read_text())
    with Mosquitto(port=ports["broker_port"], workdir=tmp_path / "broker", persistence=False,
                   listeners=done.mosquitto_conf.read_text()) as broker:
        wait_for_port("127.0.0.1", commission["port"])
        yield broker, commission, nodes


def test_a_nodes_credentials_take_over_no_other_session(line):
    broker, commission, nodes = line
    desk_port, a, b = commission["port"], nodes[0x0102], nodes[0x0103]
    clients: list[Client] = []

    def connect(*args, **kw) -> Client:
        clients.append(Client(*args, ca=commission["ca"], **kw))
        return clients[-1]

    tool = None
    try:
        # the commission as it runs: the single aggregator's persistent session, two cluster
        # instances' (`<client_id>-<n>`, clean), and a tool (frames tail) at the same time
        aggregator = connect(desk_port, "linewatch-aggregator", "commission", commission["password"])
        cluster = [connect(desk_port, f"lw-cluster-{n}", "commission", commission["password"], clean_session=True)
                   for n in (1, 2)]
        tool = Subscription(BrokerAccess("127.0.0.1", desk_port, "commission", commission["password"],
                                         commission["ca"]),
                            [("lw/+/+/+", 1)], "lw-frames").open()
        # node B as its firmware connects: client id lw-0103, persistent session
        node_b = connect(broker.port, "lw-0103", b["user"], b["password"])
        for client in (aggregator, *cluster, node_b):
            assert client.rc == 0, client.client_id
        for client in (aggregator, *cluster):
            client.subscribe("lw/+/+/+")
        node_b.subscribe("lw/4/0103/down")

        # node A's credentials under the commission's ids and node B's, on both listeners
        for port in (broker.port, desk_port):
            for stolen in ("linewatch-aggregator", "lw-cluster-1", "lw-0103", "node-0103"):
                intruder = connect(port, stolen, a["user"], a["password"])
                if port == desk_port:
                    assert str(intruder.rc) == "Not authorized", stolen   # no node user on the commission's
                else:
                    assert intruder.rc == 0, stolen                # admitted, but as node-0102
                    intruder.publish("lw/3/0102/heartbeat", b"as itself: " + stolen.encode())
                time.sleep(0.3)
                intruder.close()

        # still there, still hearing and heard
        node_b.publish("lw/4/0103/event", b"from B")
        for client in (aggregator, *cluster):
            assert client.wait_for(b"from B"), client.client_id
        assert tool.get(timeout=10) is not None
        aggregator.publish("lw/4/0103/down", b"ack for B")
        assert node_b.wait_for(b"ack for B")
        for client in (aggregator, *cluster, node_b):
            assert client.disconnects == [], f"{client.client_id} was knocked off: {client.disconnects}"
        assert tool._error is None
        log = broker.log_path.read_text()
        for victim in ("linewatch-aggregator", "lw-cluster-1", "lw-0103", "node-0103"):
            assert f"Client {victim} already connected, closing old connection" not in log, log
    finally:
        if tool is not None:
            tool.close()
        for client in clients:
            client.close()
