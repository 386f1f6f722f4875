"""Soak: the real aggregator at full-line scale for an hour (or `--minutes`), its memory and
latency at the start and at the end.

A private Mosquitto and the real `linewatch aggregator` (default config, SQLite with
synchronous FULL); 1,201 nodes registered along 1,200 km of line (one per km, as
docs/performance.md's whole line), each publishing a heartbeat every 10 s (120 frames/s in
all) and now and then a lone event report (5 % of frames), as the nodes would, each frame
under its node's key with its own (boot, seq). This process listens to every downlink and
times each frame from its publication to the ack that covers it (the end-to-end ack: stored,
committed, acknowledged). Every 10 s it samples the aggregator's resident memory (VmRSS) and
CPU. Printed: the first and the last `--window` minutes side by side (RSS, ack latency median
and p99, frames/s acked), and the totals (published, acked, never acked).

    python -m lwtools.bench.soak                     # 60 minutes
    python -m lwtools.bench.soak --minutes 15 --window 2
"""
from __future__ import annotations

import argparse
import bisect
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from lwproto import auth, const, frame as wire, topic as topics
from linewatch.commission.registry import Registry
from linewatch.commission.store import open_store
from linewatch.geo import LocalFrame
from linewatch.keys import create_master_key
from linewatch.mosquitto import Mosquitto
from lwtools.bench.incident_latency import cpu_seconds, event, heartbeat, publisher, start_aggregator, stop_aggregator

NODES = 1201
KM = 1000.0
PER_SEGMENT = 200
HEARTBEAT_S = 10.0
EVENT_SHARE = 0.05
SAMPLE_S = 10.0
ORIGIN = LocalFrame(48.0, 30.0)


def node_ids() -> list[int]:
    return [(1 + i // PER_SEGMENT) << 8 | (1 + i % PER_SEGMENT) for i in range(NODES)]


def prepare(folder: Path, broker: Mosquitto) -> tuple[Path, bytes]:
    """The commission's folder: master key, registry of every node, config. -> (config, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    master = create_master_key(folder / "master.key")
    store = open_store(str(folder / "linewatch.db"))
    try:
        registry = Registry(store)
        for i, node in enumerate(node_ids()):
            registry.add(node, node >> 8, *ORIGIN.to_latlon(i * KM, 500.0 if i % 2 else -500.0), 100.0)
    finally:
        store.close()
    config = folder / "aggregator.toml"
    config.write_text("# Written by lwtools.bench.soak; everything else is the default.\n"
                      "[broker]\nhost = \"%s\"\nport = %d\nclient_id = \"soak-aggregator\"\nconnect_retries = 10\n"
                      "retry_delay_s = 0.5\n\n[store]\npath = \"linewatch.db\"\n"
                      "[keys]\nmaster_key_file = \"master.key\"\n" % (broker.host, broker.port))
    return config, master


class Acks:
    """Every downlink, decoded: per node the publication times of its frames, and the latency
    of each frame once an ack covers it."""

    def __init__(self, broker: Mosquitto, keys: dict[int, bytes]) -> None:
        import paho.mqtt.client as paho
        self.keys = keys
        self.lock = threading.Lock()
        self.sent: dict[int, list[tuple[int, float]]] = {n: [] for n in keys}   # (seq, monotonic)
        self.latencies: list[tuple[float, float]] = []                          # (acked at, seconds)
        self.acked = 0
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="soak-acks")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("lw/+/+/down", qos=1)
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()

    def published(self, node: int, seq: int) -> None:
        with self.lock:
            self.sent[node].append((seq, time.monotonic()))

    def _on_message(self, client, userdata, message) -> None:
        now = time.monotonic()
        node = int(message.topic.split("/")[2], 16)
        try:
            f = wire.decode(message.payload, self.keys[node])
        except Exception:   # noqa: BLE001  a command or garbage: not an ack
            return
        if f.ftype != const.ACK:
            return
        upto = f.field("seq")
        with self.lock:
            waiting = self.sent[node]
            k = bisect.bisect_right([s for s, _ in waiting], upto)
            for _seq, at in waiting[:k]:
                self.latencies.append((now, now - at))
            self.acked += k
            del waiting[:k]

    def unacked(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.sent.values())

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def rss_kb(pid: int) -> int:
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def summary(latencies: list[float]) -> str:
    if not latencies:
        return "no acks"
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return "ack latency median %.0f ms, p99 %.0f ms (%d frames)" % (statistics.median(ordered) * 1000,
                                                                     p99 * 1000, len(ordered))


def soak(minutes: float, window_min: float, seed: int = 1) -> int:
    rng = random.Random(seed)
    ids = node_ids()
    seqs = dict.fromkeys(ids, 0)
    with tempfile.TemporaryDirectory(prefix="lw-soak-") as tmp, Mosquitto(workdir=Path(tmp) / "broker") as broker:
        config, master = prepare(Path(tmp) / "commission", broker)
        node_keys = {n: auth.derive_node_key(master, n) for n in ids}
        process = start_aggregator(config, Path(tmp) / "aggregator.log")
        acks = Acks(broker, node_keys)
        client = publisher(broker, "soak-nodes")
        samples: list[tuple[float, int, float]] = []     # (monotonic, rss kB, cpu s)
        t0 = time.monotonic()
        end = t0 + minutes * 60
        interval = HEARTBEAT_S / len(ids)
        k = published = 0
        next_sample = t0
        print("soak: %d nodes along %d km, a heartbeat each every %.0f s (%.0f frames/s), %.0f min"
              % (len(ids), len(ids) - 1, HEARTBEAT_S, len(ids) / HEARTBEAT_S, minutes), flush=True)
        try:
            while time.monotonic() < end:
                due = t0 + k * interval
                ahead = due - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                node = ids[k % len(ids)]
                k += 1
                seqs[node] += 1
                kind = const.EVENT if rng.random() < EVENT_SHARE else const.HEARTBEAT
                values = (event(rng.choice((const.EXPLOSION, const.SMALL_ARMS, const.VEHICLE)), 0, rng)
                          if kind == const.EVENT else heartbeat(rng))
                data = wire.encode(node_keys[node], kind, node, 1, seqs[node], time.time_ns() // 1000,
                                   const.CLOCK_GPS_PPS, 1000, values)
                acks.published(node, seqs[node])
                client.publish(topics.uplink(node >> 8, node, kind), data, qos=1)
                published += 1
                if time.monotonic() >= next_sample:
                    samples.append((time.monotonic(), rss_kb(process.pid), cpu_seconds(process.pid)))
                    next_sample += SAMPLE_S
                    if len(samples) % 30 == 1:
                        print("soak: %5.1f min, %d published, %d acked, aggregator RSS %d kB"
                              % ((time.monotonic() - t0) / 60, published, acks.acked, samples[-1][1]), flush=True)
            time.sleep(5)     # the last acks
            samples.append((time.monotonic(), rss_kb(process.pid), cpu_seconds(process.pid)))
        finally:
            client.loop_stop()
            client.disconnect()
            acks.close()
            stop_aggregator(process)
        report(t0, end, window_min * 60, samples, acks, published)
    return 0


def report(t0: float, end: float, window_s: float, samples, acks: Acks, published: int) -> None:
    def part(lo: float, hi: float) -> str:
        mine = [s for s in samples if lo <= s[0] <= hi] or samples[:1]
        rss = statistics.median(s[1] for s in mine)
        cpu = (mine[-1][2] - mine[0][2]) / max(mine[-1][0] - mine[0][0], 1e-9)
        lat = [d for at, d in acks.latencies if lo <= at <= hi]
        return "RSS %.1f MB, CPU %.0f %% of a core, %s, %.0f frames/s acked" % (
            rss / 1024, 100 * cpu, summary(lat), len(lat) / max(hi - lo, 1e-9))

    print("soak: start (minutes 0-%.0f): %s" % (window_s / 60, part(t0, t0 + window_s)))
    print("soak: end   (last %.0f min):   %s" % (window_s / 60, part(end - window_s, end + 5)))
    print("soak: %d frames published, %d acked, %d never acked; RSS min %.1f / max %.1f MB over the run"
          % (published, acks.acked, acks.unacked(), min(s[1] for s in samples) / 1024,
             max(s[1] for s in samples) / 1024))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lwtools.bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="how long (default 60)")
    parser.add_argument("--window", type=float, default=5.0, help="minutes compared at start and end (default 5)")
    args = parser.parse_args(argv)
    if args.window * 2 > args.minutes:
        parser.error("--window must be at most half of --minutes")
    return soak(args.minutes, args.window)


if __name__ == "__main__":
    sys.exit(main())
