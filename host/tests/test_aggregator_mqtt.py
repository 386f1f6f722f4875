"""The link's own receive path: QoS 1 PUBLISH packets split from a socket chunk, PUBACKs
batched, every other packet handed to gmqtt in its place; and against a real broker."""
from __future__ import annotations

import asyncio

import paho.mqtt.client as paho

from linewatch.commission.mqtt import MqttLink, split_chunk


def publish(topic: bytes, payload: bytes, mid: int, flags: int = 0) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big") + payload
    return bytes([0x32 | flags]) + remaining(len(body)) + body


def remaining(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_publishes_split_and_acked_in_one_string():
    chunk = publish(b"lw/1/0001/e", b"abc", 7) + publish(b"lw/1/0002/e", bytes(200), 258, flags=0x08 | 0x01)
    others = []
    used, messages, acks = split_chunk(chunk, lambda cmd, body: others.append((cmd, body)))
    assert used == len(chunk)
    assert messages == [("lw/1/0001/e", b"abc"), ("lw/1/0002/e", bytes(200))]
    assert acks == b"\x40\x02\x00\x07" + b"\x40\x02\x01\x02"
    assert others == []


def test_partial_packet_left_for_the_next_chunk():
    whole = publish(b"t", b"payload", 1)
    second = publish(b"t", b"x" * 300, 2)   # two-byte remaining length
    for cut in (1, 2, 3, len(second) - 1):
        used, messages, acks = split_chunk(whole + second[:cut], lambda *a: None)
        assert used == len(whole) and messages == [("t", b"payload")] and acks == b"\x40\x02\x00\x01"


def test_other_packets_go_to_gmqtt_in_order_after_the_acks_owed():
    suback = b"\x90\x03\x00\x05\x01"
    qos0 = b"\x30\x06\x00\x01tzzz"
    chunk = publish(b"t", b"a", 1) + suback + qos0 + publish(b"t", b"b", 2)
    calls = []
    used, messages, acks = split_chunk(chunk, lambda cmd, body: calls.append((cmd, body)))
    assert used == len(chunk)
    assert calls == [(None, b"\x40\x02\x00\x01"), (0x90, b"\x00\x05\x01"), (0x30, b"\x00\x01tzzz")]
    assert messages == [("t", b"a"), ("t", b"b")] and acks == b"\x40\x02\x00\x02"


def test_malformed_length_is_reported():
    used, _, _ = split_chunk(b"\x32\xff\xff\xff\xff\x01", lambda *a: None)
    assert used == -1


async def test_link_receives_qos1_stream_and_broker_gets_the_pubacks(mosquitto):
    link = MqttLink("lw-test-link", mosquitto.host, mosquitto.port, clean_session=False)
    await link.connect(retries=0)
    await link.subscribe("lw/#", qos=1)
    await asyncio.sleep(0.2)
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="lw-test-pub")
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()
    infos = [pub.publish("lw/1/%04x/e" % (i % 7), b"frame %d" % i, qos=1) for i in range(2000)]
    for info in infos:
        info.wait_for_publish(10)
    got = []
    while len(got) < 2000:
        assert await link.wait(timeout=5), "stream stalled at %d" % len(got)
        got += link.take(500)
    pub.loop_stop()
    pub.disconnect()
    assert [p for _, p, _ in got] == [b"frame %d" % i for i in range(2000)]
    assert got[5][0] == "lw/1/0005/e" and got[5][2] > 0
    # the broker got every PUBACK (its inflight window would stall the stream otherwise), and
    # nothing is redelivered when the persistent session comes back
    await link.disconnect()
    again = MqttLink("lw-test-link", mosquitto.host, mosquitto.port, clean_session=False)
    await again.connect(retries=0)
    await again.subscribe("lw/#", qos=1)
    assert not await again.wait(timeout=0.5)
    await again.disconnect()


def publish_v5(topic: bytes, payload: bytes, mid: int, properties: bytes = b"") -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big") + remaining(len(properties)) \
        + properties + payload
    return bytes([0x32]) + remaining(len(body)) + body


def test_mqtt5_publishes_skip_their_properties_and_aliases_go_to_gmqtt():
    props = b"\x01\x01" + b"\x26\x00\x01k\x00\x01v"     # payload format + a user property
    aliased = publish_v5(b"", b"zz", 9, b"\x23\x00\x01")  # topic alias 1, empty topic
    chunk = publish_v5(b"lw/up/1/0001/e", b"abc", 7, props) + publish_v5(b"t", b"", 8) + aliased
    calls = []
    used, messages, acks = split_chunk(chunk, lambda cmd, body: calls.append((cmd, body)), v5=True)
    assert used == len(chunk)
    assert messages == [("lw/up/1/0001/e", b"abc"), ("t", b"")]
    assert calls == [(None, b"\x40\x02\x00\x07\x40\x02\x00\x08"), (0x32, aliased[2:])]
    # the same bytes read as 3.1.1 would keep the property block in the payload
    _, as311, _ = split_chunk(publish_v5(b"t", b"abc", 7, props), lambda *a: None)
    assert as311[0][1] != b"abc"


async def test_two_links_share_one_stream_on_a_shared_subscription(mosquitto):
    """MQTT 5 `$share/...`: the broker hands each frame to one of the group's links."""
    links = [MqttLink("lw-share-%d" % i, mosquitto.host, mosquitto.port, v5=True, session_expiry_s=0)
             for i in range(2)]
    for link in links:
        await link.connect(retries=0)
        await link.subscribe("$share/lw/lw/#", qos=1)
    await asyncio.sleep(0.3)
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="lw-test-pub")
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()
    for info in [pub.publish("lw/1/%04x/e" % (i % 7), b"frame %d" % i, qos=1) for i in range(1000)]:
        info.wait_for_publish(10)
    got: list[list] = [[], []]
    for _ in range(250):
        for i, link in enumerate(links):
            got[i] += link.take(1000)
        if len(got[0]) + len(got[1]) >= 1000:
            break
        await asyncio.sleep(0.02)
    pub.loop_stop()
    pub.disconnect()
    payloads = sorted(p for share in got for _, p, _ in share)
    assert payloads == sorted(b"frame %d" % i for i in range(1000))    # each frame once, none lost
    assert all(len(share) > 100 for share in got)                       # both took part
    for link in links:
        await link.disconnect()


async def test_mqtt5_publishes_past_the_brokers_receive_maximum_are_held_not_refused(mosquitto):
    """MQTT 5: the broker's CONNACK caps our QoS 1 publishes in flight (Mosquitto's
    max_inflight_messages, 100 here). A segment owner flushes one ack per node at once, so more
    than that in one go must be held and sent as PUBACKs come, in order; gmqtt alone refuses
    the 100th with OverflowError, which stopped a three-instance ingest bench's owner."""
    got = []
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="lw-test-sub")
    sub.on_message = lambda client, userdata, message: got.append(message.payload)
    sub.connect(mosquitto.host, mosquitto.port)
    sub.subscribe("lw/1/+/down", qos=1)
    sub.loop_start()
    link = MqttLink("lw-owner", mosquitto.host, mosquitto.port, v5=True, session_expiry_s=0)
    await link.connect(retries=0)
    await asyncio.sleep(0.3)
    for i in range(350):
        link.publish("lw/1/%04x/down" % (i % 300), b"ack %d" % i)
    for _ in range(250):
        if len(got) >= 350:
            break
        link.take(10)            # the service's round: what was held goes out as PUBACKs come
        await asyncio.sleep(0.02)
    await link.disconnect()
    sub.loop_stop()
    sub.disconnect()
    assert got == [b"ack %d" % i for i in range(350)]      # every one, in order
