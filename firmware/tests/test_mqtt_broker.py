"""The uplink MQTT client against a real Mosquitto, under CPython and the MicroPython unix port.
paho-mqtt is the independent witness on the other side of the broker."""
import asyncio
import queue
import subprocess
import time

import paho.mqtt.client as paho
import pytest

from lwnode import mqtt

BOARD_SCRIPT = r'''
import sys
import asyncio
from lwnode import mqtt


async def roundtrip(port):
    got = []
    client = mqtt.MQTTClient("mp-roundtrip", "127.0.0.1", port, keepalive=5,
                             on_message=lambda t, p: got.append((t, p)))
    print("SESSION", await client.connect())
    print("GRANTED", await client.subscribe("lw/test/down", 1))
    await client.publish("lw/test/up", b"\x01\x02up-from-board", qos=1)
    await client.publish("lw/test/down", b"loop", qos=1)
    for _ in range(150):
        if got:
            break
        await asyncio.sleep(0.02)
    for topic, payload in got:
        print("GOT", topic, payload.hex())
    await client.ping()
    print("PINGS", client.pings)
    await client.disconnect()
    print("DONE", client.connected)


async def will(port):
    client = mqtt.MQTTClient("mp-will", "127.0.0.1", port, keepalive=30,
                             will=("lw/test/death", b"\xde\xad", 1, False))
    await client.connect()
    print("READY")
    while True:
        await asyncio.sleep(1)


port = int(sys.argv[1])
asyncio.run(roundtrip(port) if sys.argv[2] == "roundtrip" else will(port))
'''


@pytest.fixture(autouse=True)
def _broker_workdir(tmp_path):
    # The shared `mosquitto` fixture hands Mosquitto tmp_path/"broker" without creating it
    # (reported); autouse fixtures run first, so the folder exists when the broker starts.
    (tmp_path / "broker").mkdir(exist_ok=True)


class Witness:
    """A paho-mqtt subscriber on a background thread; messages land in a queue."""

    def __init__(self, broker, *topics):
        self.messages = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="witness")
        subscribed = queue.Queue()
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.qos))
        self.client.on_subscribe = lambda *a: subscribed.put(True)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        subscribed.get(timeout=5)

    def get(self, timeout=5.0):
        return self.messages.get(timeout=timeout)

    def publish(self, topic, payload):
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def witness(mosquitto):
    w = Witness(mosquitto, "lw/test/up", "lw/test/death")
    yield w
    w.close()


async def test_cpython_publish_qos1_subscribe_and_receive(mosquitto, witness):
    got = asyncio.Queue()
    client = mqtt.MQTTClient("cp-roundtrip", mosquitto.host, mosquitto.port, keepalive=10,
                             on_message=lambda t, p: got.put_nowait((t, p)))
    assert await client.connect() is False
    assert await client.subscribe("lw/test/down/#") == 1
    await client.publish("lw/test/up", b"\x00frame\xff", qos=1)
    assert await asyncio.to_thread(witness.get) == ("lw/test/up", b"\x00frame\xff", 1)
    await asyncio.to_thread(witness.publish, "lw/test/down/0102", b"ack")
    assert await asyncio.wait_for(got.get(), 5) == ("lw/test/down/0102", b"ack")
    await client.disconnect()


async def test_cpython_will_delivered_when_socket_is_killed(mosquitto, witness):
    streams = []

    async def opener(host, port):
        pair = await asyncio.open_connection(host, port)
        streams.append(pair)
        return pair

    client = mqtt.MQTTClient("cp-will", mosquitto.host, mosquitto.port, open_connection=opener,
                             will=("lw/test/death", b"\x05gone", 1, False))
    await client.connect()
    streams[0][1].transport.abort()  # no DISCONNECT: like a node losing power
    assert await asyncio.to_thread(witness.get) == ("lw/test/death", b"\x05gone", 1)
    assert await asyncio.wait_for(client.wait_disconnected(), 5)


async def test_clean_disconnect_sends_no_will(mosquitto, witness):
    client = mqtt.MQTTClient("cp-clean", mosquitto.host, mosquitto.port,
                             will=("lw/test/death", b"x", 1, False))
    await client.connect()
    await client.disconnect()
    with pytest.raises(queue.Empty):
        await asyncio.to_thread(witness.get, 0.5)


async def test_keepalive_pings_keep_an_idle_link_up(mosquitto):
    # Mosquitto drops a client silent for 1.5 x keepalive; our pings must prevent that.
    client = mqtt.MQTTClient("cp-idle", mosquitto.host, mosquitto.port, keepalive=1)
    await client.connect()
    await asyncio.sleep(3.2)
    assert client.connected, client.error
    assert client.pings >= 2
    await client.disconnect()


def test_micropython_roundtrip_against_mosquitto(micropython, mosquitto, witness, tmp_path):
    script = tmp_path / "board.py"
    script.write_text(BOARD_SCRIPT)
    result = micropython.run(script, str(mosquitto.port), "roundtrip", timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.split("\n")
    assert "SESSION False" in lines and "GRANTED 1" in lines
    assert "GOT lw/test/down " + b"loop".hex() in lines
    assert "PINGS 1" in lines and "DONE False" in lines
    assert witness.get() == ("lw/test/up", b"\x01\x02up-from-board", 1)


def test_micropython_will_delivered_when_board_dies(micropython, mosquitto, witness, tmp_path):
    script = tmp_path / "board.py"
    script.write_text(BOARD_SCRIPT)
    lib = micropython.board_lib()
    proc = subprocess.Popen(micropython.command(script, str(mosquitto.port), "will"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=micropython.environment(lib))
    try:
        assert proc.stdout.readline().strip() == "READY"
        proc.kill()  # power loss: the broker sees the socket die and publishes the will
        proc.wait(5)
        assert witness.get() == ("lw/test/death", b"\xde\xad", 1)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()

