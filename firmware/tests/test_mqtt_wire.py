"""The uplink MQTT client against a fake stream: exact bytes on the wire, broker packets parsed,
malformed ones refused with a clear error (never a crash)."""
import asyncio

import pytest

from lwnode import mqtt


class FakeBroker:
    """A stream pair: records what the client writes, replays what the test feeds."""

    def __init__(self, connack=b"\x20\x02\x00\x00"):
        self.sent = bytearray()
        self._incoming = bytearray(connack)
        self._more = asyncio.Event()
        self._eof = False
        self.closed = False
        self.opened = []

    async def open_connection(self, host, port):
        self.opened.append((host, port))
        return self, self

    def feed(self, data=b"", eof=False):
        self._incoming += data
        self._eof = self._eof or eof
        self._more.set()

    async def readexactly(self, n):
        while len(self._incoming) < n:
            if self._eof or self.closed:
                raise asyncio.IncompleteReadError(bytes(self._incoming), n)
            self._more.clear()
            await self._more.wait()
        data = bytes(self._incoming[:n])
        del self._incoming[:n]
        return data

    def write(self, data):
        if self.closed:
            raise ConnectionResetError("fake socket closed")
        self.sent += data

    async def drain(self):
        await asyncio.sleep(0)

    def close(self):
        self.closed = True
        self._more.set()

    async def wait_closed(self):
        pass

    def take(self):
        data = bytes(self.sent)
        self.sent.clear()
        return data


async def connected_client(broker=None, **kwargs):
    broker = broker or FakeBroker()
    client = mqtt.MQTTClient(kwargs.pop("client_id", "n0102"), "broker.test", 1884,
                             open_connection=broker.open_connection, **kwargs)
    await client.connect()
    broker.take()
    return client, broker


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


# ---- exact bytes ------------------------------------------------------------------------

def test_connect_with_will_and_credentials_bytes():
    packet = mqtt.connect_packet("n0102", 30, clean_session=False, user="u", password=b"pw",
                                 will=("lw/1/0102/death", b"\x01\x02", 1, True))
    body = (b"\x00\x04MQTT\x04" + bytes([0x80 | 0x40 | 0x20 | 0x08 | 0x04]) + b"\x00\x1e"
            + b"\x00\x05n0102" + b"\x00\x0flw/1/0102/death" + b"\x00\x02\x01\x02"
            + b"\x00\x01u" + b"\x00\x02pw")
    assert packet == b"\x10" + bytes([len(body)]) + body


def test_connect_minimal_clean_session_bytes():
    assert mqtt.connect_packet("a", 60) == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01a"


def test_publish_qos1_subscribe_ping_disconnect_bytes():
    assert mqtt.publish_packet("lw/up", b"\xaa\xbb", qos=1, pid=0x0102) == \
        b"\x32\x0b\x00\x05lw/up\x01\x02\xaa\xbb"
    assert mqtt.publish_packet("t", b"x", qos=0, retain=True) == b"\x31\x04\x00\x01tx"
    assert mqtt.subscribe_packet(7, "lw/down/#", 1) == b"\x82\x0e\x00\x07\x00\x09lw/down/#\x01"
    assert mqtt.PINGREQ_PACKET == b"\xc0\x00"
    assert mqtt.DISCONNECT_PACKET == b"\xe0\x00"
    assert mqtt.puback_packet(0xBEEF) == b"\x40\x02\xbe\xef"


@pytest.mark.parametrize("n,encoded", [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"),
                                       (16383, b"\xff\x7f"), (16384, b"\x80\x80\x01"),
                                       (268435455, b"\xff\xff\xff\x7f")])
def test_remaining_length_round_trip(n, encoded):
    assert mqtt.encode_remaining_length(n) == encoded
    assert mqtt.decode_remaining_length(encoded + b"\x99") == (n, len(encoded))


def test_remaining_length_malformed():
    with pytest.raises(mqtt.MQTTError, match="longer than 4 bytes"):
        mqtt.decode_remaining_length(b"\xff\xff\xff\xff\x01")
    with pytest.raises(mqtt.MQTTError, match="truncated"):
        mqtt.decode_remaining_length(b"\x80")
    with pytest.raises(ValueError):
        mqtt.encode_remaining_length(268435456)


def test_long_publish_uses_multibyte_length():
    packet = mqtt.publish_packet("t", bytes(200))
    assert packet[:4] == b"\x30\xcb\x01\x00"  # 203 = 0xcb 0x01


def test_bad_arguments_are_refused_early():
    with pytest.raises(ValueError, match="password only with a user"):
        mqtt.MQTTClient("n", "h", password="x")
    with pytest.raises(ValueError, match="wildcards"):
        mqtt.publish_packet("lw/+/up", b"")
    with pytest.raises(ValueError, match="qos"):
        mqtt.publish_packet("t", b"", qos=2)


# ---- a session against the fake broker ---------------------------------------------------

async def test_connect_sends_connect_and_reads_session_present():
    broker = FakeBroker(connack=b"\x20\x02\x01\x00")
    client = mqtt.MQTTClient("n0102", "broker.test", 1884, keepalive=30, clean_session=False,
                             open_connection=broker.open_connection)
    assert await client.connect() is True
    assert broker.opened == [("broker.test", 1884)]
    assert broker.take() == mqtt.connect_packet("n0102", 30, clean_session=False)
    assert client.connected
    await client.disconnect()
    assert broker.take() == b"\xe0\x00"
    assert not client.connected and broker.closed


async def test_connack_refusal_is_a_clear_error():
    broker = FakeBroker(connack=b"\x20\x02\x00\x05")
    client = mqtt.MQTTClient("n", "h", open_connection=broker.open_connection)
    with pytest.raises(mqtt.MQTTError, match="not authorized"):
        await client.connect()
    assert not client.connected and broker.closed


async def test_publish_qos1_waits_for_its_puback_several_in_flight():
    client, broker = await connected_client()
    first = asyncio.create_task(client.publish("lw/up", b"one", qos=1))
    second = asyncio.create_task(client.publish("lw/up", b"two", qos=1))
    await settle()
    assert broker.take() == (mqtt.publish_packet("lw/up", b"one", 1, pid=1)
                             + mqtt.publish_packet("lw/up", b"two", 1, pid=2))
    broker.feed(b"\x40\x02\x00\x02")  # acks out of order
    await settle()
    assert second.done() and not first.done()
    broker.feed(b"\x40\x02\x00\x01")
    await asyncio.wait_for(first, 1)
    await client.disconnect()


async def test_puback_timeout_drops_the_connection():
    client, broker = await connected_client(ack_timeout=0.05)
    with pytest.raises(mqtt.MQTTTimeout, match="PUBACK for packet 1"):
        await client.publish("lw/up", b"x", qos=1)
    assert not client.connected
    assert "PUBACK" in await client.wait_disconnected()
    with pytest.raises(mqtt.MQTTError, match="not connected"):
        await client.publish("lw/up", b"x")


async def test_subscribe_and_incoming_publish_qos1_is_delivered_and_acked():
    got = []
    client, broker = await connected_client(on_message=lambda t, p: got.append((t, p)))
    sub = asyncio.create_task(client.subscribe("lw/down/0102"))
    await settle()
    assert broker.take() == mqtt.subscribe_packet(1, "lw/down/0102", 1)
    broker.feed(b"\x90\x03\x00\x01\x01")
    assert await asyncio.wait_for(sub, 1) == 1
    broker.feed(b"\x32\x0b\x00\x05lw/dn\x12\x34\xca\xfe" + b"\x30\x04\x00\x01tz")
    await settle()
    assert got == [("lw/dn", b"\xca\xfe"), ("t", b"z")]
    assert broker.take() == b"\x40\x02\x12\x34"
    await client.disconnect()


async def test_refused_subscription_raises():
    client, broker = await connected_client()
    sub = asyncio.create_task(client.subscribe("forbidden"))
    await settle()
    broker.feed(b"\x90\x03\x00\x01\x80")
    with pytest.raises(mqtt.MQTTError, match="refused subscription"):
        await asyncio.wait_for(sub, 1)
    await client.disconnect()


async def test_failing_callback_is_counted_and_the_link_stays_up():
    def boom(topic, payload):
        raise ValueError("bad command")
    client, broker = await connected_client(on_message=boom)
    broker.feed(b"\x30\x04\x00\x01tz")
    await settle()
    assert client.callback_errors == 1 and client.connected
    await client.disconnect()


@pytest.mark.parametrize("packet,reason", [
    (b"\x20\x02\x00\x00", "unexpected packet type 2"),
    (b"\x40\x03\x00\x01\x00", "type 4 with 3-byte body"),
    (b"\xd0\x01\x00", "type 13 with 1-byte body"),
    (b"\x34\x05\x00\x01t\x00\x01", "QoS 2"),
    (b"\x30\x03\x00\x09t", "topic length 9 beyond body"),
    (b"\x30\xff\xff\xff\xff\x01", "longer than 4 bytes"),
    (b"\x30\x80\x80\x01", "exceeds the limit"),
    (b"\xf0\x00", "unexpected packet type 15"),
])
async def test_malformed_broker_packet_closes_with_a_clear_error(packet, reason):
    client, broker = await connected_client()
    broker.feed(packet)
    error = await asyncio.wait_for(client.wait_disconnected(), 1)
    assert reason in error
    assert not client.connected
    await settle()
    assert broker.closed


async def test_broker_eof_marks_disconnected_and_fails_waiters():
    client, broker = await connected_client()
    pending = asyncio.create_task(client.publish("lw/up", b"x", qos=1))
    await settle()
    broker.feed(eof=True)
    with pytest.raises(mqtt.MQTTError, match="closed by the broker"):
        await asyncio.wait_for(pending, 1)
    assert client.error == "connection closed by the broker"


async def test_idle_client_pings_and_missing_pingresp_is_a_dead_link():
    client, broker = await connected_client(keepalive=1, ack_timeout=0.3)
    await asyncio.sleep(1.1)
    assert broker.take() == b"\xc0\x00"
    broker.feed(b"\xd0\x00")
    await settle()
    assert client.pings == 1 and client.connected
    error = await asyncio.wait_for(client.wait_disconnected(), 2)
    assert error == "no PINGRESP within 0.3 s"
    assert broker.take() == b"\xc0\x00"


async def test_reconnect_after_drop():
    broker = FakeBroker()
    client = mqtt.MQTTClient("n", "h", open_connection=broker.open_connection)
    await client.connect()
    broker.feed(eof=True)
    await client.wait_disconnected()
    broker2 = FakeBroker()
    client._open = broker2.open_connection
    await client.connect()
    assert client.connected and client.error is None
    await client.disconnect()


def test_backoff_delays_grow_to_the_cap_with_jitter():
    delays = mqtt.backoff_delays(base=1, cap=8, factor=2, jitter=0.5, rand=lambda: 1.0)
    assert [next(delays) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    plain = mqtt.backoff_delays(base=1, cap=8, rand=lambda: 0.0)
    assert [next(plain) for _ in range(5)] == [1, 2, 4, 8, 8]
    real = mqtt.backoff_delays(base=2, cap=2, jitter=0.5)
    assert all(1.0 <= next(real) <= 2.0 for _ in range(50))


async def test_refused_tcp_connection_is_a_clear_error():
    async def refuse(host, port):
        raise ConnectionRefusedError(111, "Connection refused")
    client = mqtt.MQTTClient("n", "broker.test", 1884, open_connection=refuse)
    with pytest.raises(mqtt.MQTTError, match="connect to broker.test:1884: .*Connection refused"):
        await client.connect()
    assert not client.connected


async def test_silent_broker_gives_a_connack_timeout():
    broker = FakeBroker(connack=b"")
    client = mqtt.MQTTClient("n", "h", 1, open_connection=broker.open_connection,
                             ack_timeout=0.05)
    with pytest.raises(mqtt.MQTTTimeout, match="no CONNACK within 0.05 s"):
        await client.connect()
    assert broker.closed
