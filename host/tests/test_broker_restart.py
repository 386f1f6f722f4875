"""A broker that crashes and comes back (issue 12, defect 1): with `persistence false` it has
forgotten every session and subscription. The commission must subscribe again (and say so),
or it stays connected and deaf while the nodes' queues fill; the firmware subscribes to its
downlink on every connection, so acks reach it again. Real service, real Mosquitto, the
firmware's own MQTT client as the node."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import pytest

from lwnode.mqtt import MQTTClient, MQTTError
from lwproto import const, frame as wire, topic as topics
from linewatch import keys
from linewatch.commission.registry import Registry
from linewatch.commission.store import open_store
from linewatch.mosquitto import Mosquitto

SEGMENT, NODE, BOOT = 2, 0x0201, 4


def heartbeat(key, seq):
    return wire.encode(key, const.HEARTBEAT, NODE, BOOT, seq, 1795000000000000 + seq, const.CLOCK_NTP, 900,
                       {"battery_mv": 3900, "temperature_c": 10.0, "uptime_s": seq, "rssi_dbm": -60,
                        "queue_depth": 0, "free_memory": 50000, "detections": 0, "dropped": 0,
                        "reconnects": 0, "refused_commands": 0, "radio_ms": 0, "slept_s": 0,
                        "heartbeat_s": 60, "power": 0})


class FirmwareLink:
    """The node's side as the firmware does it: a persistent session, the downlink subscribed
    on every connection, acks taken."""

    def __init__(self, broker, master):
        self.broker, self.key = broker, keys.derive(master, NODE)
        self.acked = 0
        self.resends: list[tuple[int, int]] = []
        self.client: MQTTClient | None = None

    def _on_message(self, topic, payload):
        f = wire.decode(payload, self.key)
        if f.ftype == const.ACK:
            self.acked = max(self.acked, f.field("seq"))
        elif f.ftype == const.COMMAND and f.field("command") == const.CMD_RESEND:
            self.resends.append((f.field("first_seq"), f.field("last_seq")))
            asyncio.get_running_loop().create_task(self.send(f.field("first_seq"), f.field("last_seq")))

    async def connect(self, timeout=20.0):
        for _ in range(int(timeout / 0.2)):
            self.client = MQTTClient("lw-%04x" % NODE, self.broker.host, self.broker.port, keepalive=10,
                                     clean_session=False, on_message=self._on_message)
            try:
                await self.client.connect()
                await self.client.subscribe(topics.downlink(SEGMENT, NODE), 1)
                return
            except MQTTError:
                await asyncio.sleep(0.2)
        raise AssertionError("node could not reconnect")

    async def send(self, first, last):
        for seq in range(first, last + 1):
            await self.client.publish(topics.uplink(SEGMENT, NODE, const.HEARTBEAT), heartbeat(self.key, seq), 1)


async def wait_for(condition, timeout):
    for _ in range(int(timeout / 0.05)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("persistence", [False, True], ids=["persistence false", "persistence true"])
async def test_commission_and_node_hear_each_other_after_a_broker_crash(tmp_path, persistence):
    master = keys.create_master_key(tmp_path / "master.key")
    store = open_store(str(tmp_path / "lw.db"))
    Registry(store).add(NODE, SEGMENT, 48.0, 37.0)
    config = tmp_path / "aggregator.toml"
    with Mosquitto(workdir=tmp_path / "broker", persistence=persistence) as broker:
        config.write_text(f'[broker]\nhost = "{broker.host}"\nport = {broker.port}\nclient_id = "agg-crash"\n'
                          f'retry_delay_s = 0.5\n[store]\npath = "lw.db"\n[keys]\nmaster_key_file = "master.key"\n'
                          f'[acks]\ninterval_ms = 50\n')
        log_path = tmp_path / "aggregator.log"
        log = open(log_path, "w")
        service = subprocess.Popen([sys.executable, "-m", "linewatch.cli", "-v", "aggregator", "--config",
                                    str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            assert await wait_for(lambda: b"listening on" in log_path.read_bytes(), 20)
            node = FirmwareLink(broker, master)
            await node.connect()
            await node.send(1, 5)
            assert await wait_for(lambda: node.acked == 5, 20), "no ack before the crash"
            if persistence:                    # an autosave (every 1 s) with the sessions in it:
                saved_after = time.time()      # a fixed wait lost the race at load ~25
                db = tmp_path / "broker" / "mosquitto.db"
                assert await wait_for(lambda: db.exists() and db.stat().st_mtime > saved_after + 0.1, 30), \
                    "the broker saved nothing"
            broker.kill()                      # kill -9: no goodbye, nothing saved since the last autosave
            broker.start()
            await node.connect()               # the firmware reconnects (and subscribes) as always
            await node.send(6, 10)             # may beat the commission's new subscription: then the
            await asyncio.sleep(2)             # broker drops them, and the next frame shows the gap,
            await node.send(11, 11)            # which the commission asks for again
            stored = await wait_for(lambda: store.frames_since(0) == 11, 30)
            assert stored, f"{store.frames_since(0)} of 11 frames stored after the broker came back:\n" \
                           + log_path.read_text()[-2000:]
            assert await wait_for(lambda: node.acked == 11, 20), "acks do not reach the node again"
            text = log_path.read_text()
            assert ("kept no session" in text) == (not persistence), text[-2000:]
            await node.client.disconnect()
        finally:
            service.send_signal(signal.SIGTERM)
            code = service.wait(timeout=20)
            log.close()
        assert code == 0
    assert sorted(r.seq for r in store.evidence() if r.kind == "frame") == list(range(1, 12))
    store.close()
