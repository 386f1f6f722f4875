"""Peak heap of the node firmware on the MicroPython unix port: 10 minutes of simulated audio.

Runs the `unix` build (the same .mpy files a board gets) on a fast-playing sample file with
impulses, publishing to a private Mosquitto (the uplink runs: connect, birth, every frame),
where a small stand-in for the commission acks every frame as it comes (`--no-acks`: none,
the queue fills and every frame stays in flight, as when the commission is down but the
broker is up), and prints, side by side: the heap
the code takes once imported, the peak live heap at quiet points (after gc.collect), and for
each heap size tried whether the 10 minutes ran without a MemoryError, how many frames the
broker received, or how the node stopped (self-test failed: exit 2; cannot publish: exit 4).
Goal (issue 3): peak < 64 KB with a 128 KB heap. `python -m lwtools.bench.node_memory`
`--tls`: the broker speaks TLS only and the node checks it against a CA (its config's
broker.ca), as provisioning sets a line up: the heap TLS costs the node.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from linewatch.mosquitto import Mosquitto
from linewatch.testing import micropython as mp
from lwtools.build import build

RATE = 16000
HEAPS = ("112K", "116K", "120K", "128K", "144K", "160K", "192K")
CODE_PROBE = """
import gc
gc.collect(); base = gc.mem_alloc()
from lwnode import config, node, bootcount, store, detector, mqtt, clock
from lwnode.hal import unix
gc.collect(); print("CODE", gc.mem_alloc() - base)
"""


def sample_file(path: Path, seconds: int = 20) -> None:
    rnd = random.Random(7)
    n = seconds * RATE
    samples = [int(rnd.gauss(0, 60)) for _ in range(n)]
    for at in (5.0, 12.0):
        k = int(at * RATE)
        for i in range(2400):
            samples[k + i] += int(22000 * math.exp(-i / 500) * math.sin(2 * math.pi * 150 * i / RATE))
    path.write_bytes(struct.pack("<%dh" % n, *(max(-32768, min(32767, s)) for s in samples)))


def write_config(work: Path, storage: str, plays: int, broker: tuple[str, int] = ("127.0.0.1", 9),
                 ca_pem: str | None = None) -> Path:
    """The node's config for these benches: by default no broker reachable (port 9), so the
    queue fills as in an outage; the sample file played `plays` times as fast as the node
    takes it."""
    cfg = {"node": 0x0102, "segment": 3, "key": "ab" * 32, "board": "unix",
           "position": {"lat": 48.0, "lon": 37.7},
           "broker": {"host": broker[0], "port": broker[1], "ca": ca_pem},
           "heartbeat_s": 10, "storage": str(work / storage),
           "feed": {"audio": str(work / "audio.raw"), "realtime": False, "plays": plays,
                    "exit_at_end": True}}
    path = work / "config.json"
    path.write_text(json.dumps(cfg))
    return path


class Acker:
    """The commission's acks, no more: each uplink frame of the node is acked (its seq) on its
    downlink, tagged with the node's key (the config's "ab" * 32)."""

    def __init__(self, broker, ca_file: str = "") -> None:
        from linewatch import broker as brokers
        from linewatch.commission.acks import Downlink
        from lwproto import frame as wire
        self.received = 0
        key = bytes.fromhex("ab" * 32)
        downlink = Downlink(1, lambda node: key, lambda node: 3)
        self.client = brokers.client(brokers.BrokerAccess(broker.host, broker.port, ca_file=ca_file), "bench-acker")

        def on_message(client, userdata, message) -> None:
            self.received += 1
            if self.enabled and not message.topic.endswith("/down"):
                f = wire.decode(message.payload, key)
                client.publish(*downlink.ack(f.node, f.boot, f.seq), qos=1)
        self.enabled = True
        self.client.on_message = on_message
        self.client.on_connect = lambda c, u, flags, rc, p: c.subscribe("lw/3/0102/+", qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(build_dir: Path, work: Path, heap: str, broker, acks: bool = True, minutes: int = 10,
        ca_file: str = "") -> str:
    write_config(work, "flash-" + heap, minutes * 3, (broker.host, broker.port),
                 Path(ca_file).read_text() if ca_file else None)
    acker = Acker(broker, ca_file)
    acker.enabled = acks
    time.sleep(0.5)
    try:
        proc = subprocess.Popen(mp.command(build_dir / "main.py", str(work / "config.json"), heap=heap),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=mp.environment(build_dir / "lib"))
        out, _ = proc.communicate(timeout=600)
        time.sleep(0.5)
    finally:
        acker.close()
    received = acker.received
    ended = re.search(r"audio feed ended after \d+ samples \((\d+) s\); heap peak (\d+)", out)
    if proc.returncode == 4:
        return "%-6s  cannot publish: the node said DEGRADED and exited 4 (broker got %d frames)" % (heap, received)
    if proc.returncode == 2:
        return "%-6s  self-test failed (exit 2): %s" % (heap, (out.strip().splitlines() or ["?"])[-1][:80])
    if os.environ.get("LW_BENCH_LOG"):
        Path(os.environ["LW_BENCH_LOG"] + "-" + heap).write_text(out)
    errors = [line for line in out.splitlines() if "memory allocation failed" in line or "MemoryError" in line]
    if errors or not ended:
        return "%-6s  failed (exit %s, broker got %d frames, %d MemoryError lines): %s" % (
            heap, proc.returncode, received, len(errors), (errors or out.strip().splitlines() or ["?"])[-1][:80])
    return "%-6s  ran %s s of audio, peak live heap %6d bytes (%.0f KB), broker got %d frames" % (
        heap, ended.group(1), int(ended.group(2)), int(ended.group(2)) / 1024, received)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lwtools.bench.node_memory",
                                 description="peak heap of the node on the MicroPython unix port, 10 min of audio")
    ap.add_argument("heaps", nargs="*", metavar="HEAP", default=list(HEAPS),
                    help="heap sizes to try, like 128K (default: %s)" % " ".join(HEAPS))
    ap.add_argument("--no-acks", action="store_true",
                    help="no commission acks: the queue fills, as when the commission is down")
    ap.add_argument("--tls", action="store_true", help="the broker speaks TLS only and the node checks its CA")
    args = ap.parse_args(argv)
    bad = [h for h in args.heaps if not re.fullmatch(r"\d+[KM]", h)]
    if bad:
        ap.error("a heap size is a number and K or M, like 128K: %s" % ", ".join(bad))
    try:
        mp.find_micropython()
    except mp.MicroPythonMissing as exc:
        print("node_memory: %s" % exc)
        return 1
    with tempfile.TemporaryDirectory(prefix="lw-node-memory-") as tmp:
        work = Path(tmp)
        build_dir = work / "build"
        build("unix", build_dir, progress=lambda line: None)
        sample_file(work / "audio.raw")
        probe = work / "probe.py"
        probe.write_text(CODE_PROBE)
        code = subprocess.run(mp.command(probe, heap="1M"), capture_output=True, text=True,
                              env=mp.environment(build_dir / "lib"), timeout=60).stdout.strip()
        acks, tls = not args.no_acks, args.tls
        print("node memory on the MicroPython unix port (64-bit), 10 min of 16 kHz audio, publishing to"
              " a private Mosquitto%s, %s" % (" over TLS" if tls else "",
                                               "every frame acked" if acks else "no acks (commission down)"))
        print("code once imported: %s bytes" % code.replace("CODE ", ""))
        heaps = args.heaps
        extra, ca_file = "", ""
        if tls:
            from lwtools import broker_conf
            from lwtools.tls import private_pki
            files = private_pki(work / "pki")
            extra, ca_file = broker_conf.tls_lines(files), str(files["ca.crt"])
        with Mosquitto(workdir=work / "broker", extra_config=extra) as broker:
            for heap in heaps:
                print(run(build_dir, work, heap, broker, acks, ca_file=ca_file), flush=True)
    print("goal: peak < 64 KB within a 128 KB heap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
