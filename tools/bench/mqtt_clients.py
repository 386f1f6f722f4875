"""Receive ceilings of the MQTT clients the aggregator could use, on the same queued stream.

    python -m lwtools.bench.mqtt_clients [--messages 100000] [--topics 500] [--qos 1]

Why: the ingest path's client decides the commission's ceiling (DESIGN.md measured a 9x
spread). Each receiver gets its own persistent session, subscribed while offline; the stream
(48-byte payloads on many node topics) is queued in one private Mosquitto for all of them;
then each receiver in turn drains its queue, timed from its first message to its last, in
its own process: `mosquitto_sub` (C, libmosquitto), gmqtt (asyncio), paho-mqtt (loop_forever).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from linewatch.mosquitto import Mosquitto

GMQTT = r"""
import asyncio, sys, time
import gmqtt
N, host, port, qos = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
got, first = 0, None
async def main():
    done = asyncio.Event()
    def on_message(client, topic, payload, q, properties):
        global got, first
        if first is None:
            first = time.perf_counter()
        got += 1
        if got >= N:
            done.set()
        return 0
    c = gmqtt.Client("bench-gmqtt", clean_session=False)
    c.on_message = on_message
    await c.connect(host, port, version=gmqtt.constants.MQTTv311)
    await asyncio.wait_for(done.wait(), 300)
    print(N / (time.perf_counter() - first))
    await c.disconnect()
asyncio.run(main())
"""

PAHO = r"""
import sys, time
import paho.mqtt.client as paho
N, host, port, qos = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
state = {"got": 0, "first": None}
def on_message(client, userdata, msg):
    if state["first"] is None:
        state["first"] = time.perf_counter()
    state["got"] += 1
    if state["got"] >= N:
        print(N / (time.perf_counter() - state["first"]))
        client.disconnect()
c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-paho", clean_session=False)
c.on_message = on_message
c.connect(host, port)
c.loop_forever()
"""

SUBSCRIBE = r"""
import sys, paho.mqtt.client as paho
host, port, qos, filt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for cid in sys.argv[5:]:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False)
    c.connect(host, port)
    c.loop_start()
    c.subscribe(filt, qos)
    import time; time.sleep(0.3)   # the SUBACK; the session keeps the subscription
    c.loop_stop(); c.disconnect()
"""


def publish(broker: Mosquitto, messages: int, topics: int, qos: int) -> None:
    import paho.mqtt.client as paho
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-pub")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)        # unlimited: the whole stream is queued up front
    client.connect(broker.host, broker.port)
    client.loop_start()
    payload = bytes(range(48))
    for start in range(0, messages, 20_000):     # packet ids wrap at 65,535: bounded batches
        infos = [client.publish("lw/1/%04x/event" % (1 + i % topics), payload, qos=qos)
                 for i in range(start, min(messages, start + 20_000))]
        for info in infos:
            info.wait_for_publish(120)
    client.loop_stop()
    client.disconnect()


def mosquitto_sub(broker: Mosquitto, messages: int, qos: int) -> float:
    # output to /dev/null (a pipe would slow it); timed from its start, connect included
    start = time.perf_counter()
    subprocess.run(["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-i", "bench-sub",
                    "-c", "-q", str(qos), "-t", "lw/+/+/+", "-C", str(messages)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300, check=True)
    return messages / (time.perf_counter() - start)


def python_receiver(code: str, broker: Mosquitto, messages: int, qos: int) -> float:
    out = subprocess.run([sys.executable, "-c", code, str(messages), broker.host, str(broker.port), str(qos)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.split()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=500)
    parser.add_argument("--qos", type=int, default=1, choices=(0, 1))
    args = parser.parse_args(argv)
    clients = ("bench-sub", "bench-gmqtt", "bench-paho")
    with Mosquitto(persistence=False) as broker:
        subprocess.run([sys.executable, "-c", SUBSCRIBE, broker.host, str(broker.port), str(args.qos),
                        "lw/+/+/+", *clients], check=True, timeout=60)
        publish(broker, args.messages, args.topics, args.qos)
        rates = {"mosquitto_sub (C)": mosquitto_sub(broker, args.messages, args.qos),
                 "gmqtt (asyncio)": python_receiver(GMQTT, broker, args.messages, args.qos),
                 "paho-mqtt (loop_forever)": python_receiver(PAHO, broker, args.messages, args.qos)}
    base = rates["mosquitto_sub (C)"]
    print(f"{args.messages} messages of 48 bytes on {args.topics} topics, QoS {args.qos}, "
          f"queued in a private Mosquitto; {os.cpu_count()} cores")
    for name, rate in rates.items():
        print(f"  {name:<26} {rate:>9,.0f} msg/s   {rate / base:4.2f}x mosquitto_sub")


if __name__ == "__main__":
    main()
