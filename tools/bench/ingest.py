"""Sustained ingest of the aggregator vs `mosquitto_sub`, same stream, same private broker.

    python -m lwtools.bench.ingest [--frames 50000] [--nodes 100] [--instances N] [--desk off|on|both]

Both receivers subscribe (QoS 1, persistent session) while offline, the stream is published
into the broker's queues, then both are started together and timed until they have the whole
stream: mosquitto_sub only receives; the aggregator receives, verifies every tag, applies the
replay rule, stores each frame in the hash-chained evidence log (SQLite WAL, synchronous=FULL)
and sends acks. Each receiver is pinned to one core where the machine allows. Prints frames/s
for each and the ratio (goal >= 0.8), and each receiver's CPU time per frame (its own cost,
less at the mercy of the broker and of other load on a shared machine than the wall clock).

With `--instances N` the same stream goes to N aggregator instances on one private PostgreSQL
(started here, as the tests do) through an MQTT 5 shared subscription (docs/scale-out.md),
timed until the database holds the whole stream; `--instances 1` is one instance on the same
PostgreSQL (no sharing), the figure to compare N against.

`--in-process` times the aggregator's own work without MQTT, in this process: the stream's
rounds (the service's batch size) checked alone on one fresh commission, then checked and
committed on another (SQLite, synchronous=FULL: the fsync's wait is not CPU); `--profile N`
adds cProfile's N most costly functions of the second pass.

With `--desk on` the aggregator serves its desk (docs/desk.md) while it ingests, with a page
open on it the whole time (this process holds its event stream and reads the nodes and the
incidents every 2 s, more often than the page does); `--desk both` measures off then on in
one run and prints them side by side (the desk's goal: the ratio down by no more than 5 %).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from lwproto import const, frame as wire, topic as topics
from linewatch import keys
from linewatch.mosquitto import Mosquitto

SEGMENT = 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def make_stream(master: bytes, frames: int, nodes: int) -> list[tuple[str, bytes]]:
    out = []
    node_keys = {n: keys.derive(master, n) for n in range(1, nodes + 1)}
    for i in range(frames):
        node = 1 + i % nodes
        seq = 1 + i // nodes
        data = wire.encode(node_keys[node], const.EVENT, node, 1, seq, 1795000000000000 + i, const.CLOCK_GPS_PPS, 3,
                           {"event_class": 1, "confidence": 0.8, "onset_offset_us": -5, "peak_db": -12.0,
                            "duration_ms": 100, "frequency_hz": 80, "snr_db": 15.0})
        out.append((topics.uplink(SEGMENT, node, const.EVENT), data))
    return out


def publish(broker: Mosquitto, stream: list[tuple[str, bytes]]) -> None:
    import paho.mqtt.client as paho
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-pub")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    infos = [client.publish(t, d, qos=1) for t, d in stream]
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()


def pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if os.path.exists("/usr/bin/taskset") and os.cpu_count() else []


def subscribe_offline(broker: Mosquitto, client_id: str) -> None:
    subprocess.run(["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-i", client_id, "-c", "-q", "1",
                    "-t", topics.uplink_filter(), "-W", "1", "-C", "1"], capture_output=True)


def run_mosquitto_sub(broker: Mosquitto, frames: int, core: int) -> subprocess.Popen:
    return subprocess.Popen(pin(core) + ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-i", "bench-sub",
                                         "-c", "-q", "1", "-t", topics.uplink_filter(), "-C", str(frames)],
                            stdout=subprocess.DEVNULL)


AGGREGATOR = r"""
import asyncio, sys, time
from dataclasses import replace
from linewatch.commission.service import Aggregator
from linewatch.commission.config import Config
from linewatch.keys import load_master_key
from linewatch.commission.store import open_store
host, port, db, key, frames = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
c = Config()
c = replace(c, broker=replace(c.broker, host=host, port=port, client_id="bench-agg"),
            store=replace(c.store, path=db))
instance = sys.argv[6] if len(sys.argv) > 6 else ""
desk_on = len(sys.argv) > 7 and sys.argv[7] == "desk"
c = replace(c, desk=replace(c.desk, listen="127.0.0.1:0" if desk_on else "", observers=True))
if db.startswith("postgresql"):
    c = replace(c, store=replace(c.store, url=db),
                cluster=replace(c.cluster, instance=instance, session_expiry_s=600 if instance else 0))
async def main():
    store = open_store(db)
    agg = Aggregator(c, load_master_key(key), store)
    desk = None
    if desk_on:
        from linewatch.desk.app import start_desk
        desk = await start_desk(c, load_master_key(key), agg)
        print("desk", desk.url if desk else "", flush=True)
    if frames:
        sys.stdin.readline()   # imports done: wait for the go, so start-up is not timed
    stop = asyncio.Event()
    cpu = time.process_time()   # every thread of the process: the writer's too
    await agg.start()
    task = asyncio.create_task(agg.serve(stop))
    def done():      # shared ingest: when the database holds the whole stream
        if task.done():  # the service failed: say why rather than wait for ever
            task.result()
            raise SystemExit("the service stopped before the stream was stored")
        if instance:
            return store.last_evidence_id() >= frames and store.frames_since(0) >= frames
        return agg.frames_committed >= frames
    while not done():
        await asyncio.sleep(0.02 if instance else 0.005)
    print(time.monotonic(), time.process_time() - cpu, agg.frames_committed, flush=True)
    stop.set(); await task; await agg.shutdown()
    if desk is not None:
        await desk.stop()
asyncio.run(main())
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=50000)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--instances", type=int, default=0,
                    help="N aggregator instances on PostgreSQL with a shared subscription (0: one, on SQLite)")
    ap.add_argument("--in-process", action="store_true", help="check and store without MQTT, in this process")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="with --in-process: cProfile's top N")
    ap.add_argument("--desk", choices=("off", "on", "both"), default="off",
                    help="serve the desk with a page open on it while ingesting (both: off, then on)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each (with --desk both: alternated)")
    args = ap.parse_args(argv)
    if args.in_process:
        return in_process(args)
    if args.instances:
        return shared(args)
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores, {cpu_model()}, Python {platform.python_version()}")
    print(f"stream: {args.frames} event frames of {wire.SIZES[const.EVENT]} bytes from {args.nodes} nodes, QoS 1, "
          f"queued in one private Mosquitto, both receivers started together")
    runs = {"off": [False], "on": [True], "both": [False, True]}[args.desk] * args.repeat
    results: dict[bool, list] = {False: [], True: []}
    for desk in runs:
        result = measure(args, desk)
        if result is None:
            return 1
        results[desk].append(result)
        report(args, result, desk if args.desk != "off" else None)
    if results[False] and results[True]:
        ratio = {d: statistics.median(a / s for s, a, _, _ in results[d]) for d in results}
        cpu = {d: statistics.median(ca for _, _, _, ca in results[d]) / args.frames * 1e6 for d in results}
        print(f"desk on vs off, medians of {args.repeat} run(s) each, alternated: ratio {ratio[True]:.2f} vs "
              f"{ratio[False]:.2f} ({(ratio[True] / ratio[False] - 1) * 100:+.1f} %; goal: no more than -5 %), "
              f"aggregator CPU per frame {cpu[True]:.1f} vs {cpu[False]:.1f} us ({(cpu[True] / cpu[False] - 1) * 100:+.1f} %)")
    return 0


def report(args, result, desk: bool | None) -> None:
    sub_rate, agg_rate, cpu_sub, cpu_agg = result
    t_sub, t_agg = args.frames / sub_rate, args.frames / agg_rate
    if desk is not None:
        print(f"-- desk {'on, a page open on it' if desk else 'off'}")
    print(f"mosquitto_sub (receive only):              {sub_rate:10.0f} frames/s ({t_sub:.2f} s)")
    print(f"aggregator (verify + store + ack, FULL):   {agg_rate:10.0f} frames/s ({t_agg:.2f} s)")
    print(f"ratio aggregator / mosquitto_sub: {agg_rate / sub_rate:.2f} (goal >= 0.8)")
    # Both receivers share the broker and a busy machine, so wall-clock rates move together;
    # CPU time per frame is each receiver's own cost on its core.
    print(f"CPU per frame: mosquitto_sub {cpu_sub / args.frames * 1e6:.1f} us, "
          f"aggregator {cpu_agg / args.frames * 1e6:.1f} us; frames/s per busy core: "
          f"{args.frames / cpu_sub:.0f} vs {args.frames / cpu_agg:.0f}, ratio {cpu_sub / cpu_agg:.2f}")


def open_page(url: str, stop: threading.Event) -> None:
    """What an open desk page asks of the server, a little more often: the event stream held
    open, the nodes and the incidents read every 2 s."""
    import urllib.request
    events = urllib.request.urlopen(url + "api/events", timeout=60)
    try:
        while not stop.wait(2.0):
            for path in ("api/nodes", "api/incidents?limit=500"):
                with urllib.request.urlopen(url + path, timeout=30) as r:
                    r.read()
    finally:
        events.close()


def measure(args, desk: bool) -> tuple[float, float, float, float] | None:
    """(mosquitto_sub frames/s, aggregator frames/s, CPU s of each) on a fresh database and broker."""
    work = Path(tempfile.mkdtemp(prefix="lw-bench-ingest-"))
    master_path = work / "master.key"
    master = keys.create_master_key(master_path)
    db = str(work / "bench.db")
    from linewatch.commission.registry import Registry
    from linewatch.commission.store import open_store
    store = open_store(db)
    registry = Registry(store)
    for n in range(1, args.nodes + 1):
        registry.add(n, SEGMENT, 48.0 + n * 1e-3, 37.0)
    store.close()
    stream = make_stream(master, args.frames, args.nodes)
    cores = os.cpu_count() or 1
    extra = ["", "desk"] if desk else []
    with Mosquitto(workdir=work / "broker", extra_config="max_queued_messages 0\n") as broker:
        # register both persistent sessions and the aggregator's boot, then fill the queues
        subscribe_offline(broker, "bench-sub")
        warm = subprocess.run([sys.executable, "-c", AGGREGATOR, broker.host, str(broker.port), db,
                               str(master_path), "0"], capture_output=True, text=True)
        if warm.returncode:
            print(warm.stderr, file=sys.stderr)
            return None
        publish(broker, stream)
        agg = subprocess.Popen(pin(1 % cores) + [sys.executable, "-c", AGGREGATOR, broker.host, str(broker.port), db,
                                                 str(master_path), str(args.frames), *extra],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert agg.stdin is not None and agg.stdout is not None
        page_stop, page = threading.Event(), None
        if desk:
            url = agg.stdout.readline().split()[-1]
            page = threading.Thread(target=open_page, args=(url, page_stop), daemon=True)
            page.start()
        time.sleep(2.0)   # the aggregator's imports
        t0 = time.monotonic()
        sub = run_mosquitto_sub(broker, args.frames, 0)
        agg.stdin.write("go\n")
        agg.stdin.flush()
        _, status, usage = os.wait4(sub.pid, 0)
        t_sub = time.monotonic() - t0
        sub.returncode = os.waitstatus_to_exitcode(status)
        cpu_sub = usage.ru_utime + usage.ru_stime
        line = agg.stdout.readline()
        page_stop.set()
        agg.communicate()
        done, cpu_agg = (float(x) for x in line.strip().split()[:2])
        if page is not None:
            page.join(10)
        t_agg = done - t0
    return args.frames / t_sub, args.frames / t_agg, cpu_sub, cpu_agg


def in_process(args) -> int:
    """CPU per frame of check alone and check + commit, one thread, no broker."""
    import cProfile
    import pstats
    from linewatch.commission.alerts import Alerter
    from linewatch.commission.config import Config
    from linewatch.commission.registry import Registry
    from linewatch.commission.service import Aggregator
    from linewatch.commission.store import open_store
    work = Path(tempfile.mkdtemp(prefix="lw-bench-ingest-"))
    master = keys.create_master_key(work / "master.key")
    stream = make_stream(master, args.frames, args.nodes)
    received = time.time_ns() // 1000
    messages = [(t, d, received + i) for i, (t, d) in enumerate(stream)]

    def commission(name: str) -> Aggregator:
        db = str(work / name)
        store = open_store(db)
        registry = Registry(store)
        for n in range(1, args.nodes + 1):
            registry.add(n, SEGMENT, 48.0 + n * 1e-3, 37.0)
        config = Config()
        agg = Aggregator(replace(config, store=replace(config.store, path=db)), master, store)
        agg._setup()
        agg.alerter = Alerter(config.alerts, lambda topic, data: None)
        return agg

    size = Config().store.batch_max
    rounds = [messages[i:i + size] for i in range(0, len(messages), size)]
    check = commission("check.db")
    cpu = time.process_time()
    for r in rounds:
        check.check_round(r)
    check_us = (time.process_time() - cpu) / args.frames * 1e6
    full = commission("full.db")
    profile = cProfile.Profile() if args.profile else None
    cpu, wall = time.process_time(), time.monotonic()
    if profile:
        profile.enable()
    for r in rounds:
        full.ingest_round(r)
    if profile:
        profile.disable()
    full_us = (time.process_time() - cpu) / args.frames * 1e6
    wall_s = time.monotonic() - wall
    stored = full.store.last_evidence_id()
    for agg in (check, full):
        agg.alerter.close()
        agg.store.close()
    print(f"in process, {args.frames} event frames from {args.nodes} nodes in rounds of {size}, SQLite FULL: "
          f"check alone {check_us:.1f} us CPU per frame, check + commit {full_us:.1f} us "
          f"({wall_s:.1f} s wall, {stored} rows stored){' [under cProfile]' if profile else ''}")
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
    return 0


def instances_finish(procs: list[subprocess.Popen]) -> bool:
    """Each instance exits once the database holds the whole stream; one that fails (its error
    is on stderr) means the others would wait for ever: they are stopped, and False."""
    while any(p.poll() is None for p in procs):
        if any(p.returncode for p in procs if p.poll() is not None):
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
            print("an instance failed (its error is above); the stream was not stored", file=sys.stderr)
            return False
        time.sleep(0.05)
    return all(p.returncode == 0 for p in procs)


def shared(args) -> int:
    """N instances on one PostgreSQL, MQTT 5 shared subscription; timed to the whole stream stored."""
    from linewatch.commission.registry import Registry
    from linewatch.commission.store import open_store
    from linewatch.testing.postgres import PostgresCluster
    work = Path(tempfile.mkdtemp(prefix="lw-bench-ingest-"))
    master_path = work / "master.key"
    master = keys.create_master_key(master_path)
    stream = make_stream(master, args.frames, args.nodes)
    cores = os.cpu_count() or 1
    names = ["%c" % (97 + i) for i in range(args.instances)] if args.instances > 1 else [""]
    with PostgresCluster() as pg, Mosquitto(workdir=work / "broker", extra_config="max_queued_messages 0\n") as broker:
        url = pg.create_database()
        store = open_store(url)
        registry = Registry(store)
        for n in range(1, args.nodes + 1):
            registry.add(n, SEGMENT, 48.0 + n * 1e-3, 37.0)
        # every session registered (the shared ones queue their share while offline), then
        # the stream queued in the broker, then every receiver started together
        subscribe_offline(broker, "bench-sub")
        for name in names:
            warm = subprocess.run([sys.executable, "-c", AGGREGATOR, broker.host, str(broker.port), url,
                                   str(master_path), "0", name], capture_output=True, text=True)
            if warm.returncode:
                print(warm.stderr, file=sys.stderr)
                return 1
        publish(broker, stream)
        procs = [subprocess.Popen(pin((1 + i) % cores) + [
            sys.executable, "-c", AGGREGATOR, broker.host, str(broker.port), url, str(master_path),
            str(args.frames), name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for i, name in enumerate(names)]
        time.sleep(2.0)   # the instances' imports
        t0 = time.monotonic()
        sub = run_mosquitto_sub(broker, args.frames, 0)
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        _, status, usage = os.wait4(sub.pid, 0)
        t_sub = time.monotonic() - t0
        cpu_sub = usage.ru_utime + usage.ru_stime
        if not instances_finish(procs):
            store.close()
            return 1
        results = [tuple(float(x) for x in p.communicate()[0].strip().splitlines()[-1].split()) for p in procs]
        stored = store.frames_since(0)
        store.close()
    t_agg = max(r[0] for r in results) - t0
    cpu_agg = sum(r[1] for r in results)
    print(f"machine: {cores} cores, {cpu_model()}, Python {platform.python_version()}")
    print(f"stream: {args.frames} event frames from {args.nodes} nodes, QoS 1, queued in one private Mosquitto "
          f"for mosquitto_sub and {len(names)} instance(s) on PostgreSQL"
          f"{' sharing it ($share, each its share queued)' if len(names) > 1 else ''}, all started together")
    print(f"mosquitto_sub (receive only):        {args.frames / t_sub:10.0f} frames/s ({t_sub:.2f} s)")
    print(f"{len(names)} instance(s), all stored:        {args.frames / t_agg:10.0f} frames/s ({t_agg:.2f} s; "
          f"per instance {', '.join(str(int(r[2])) for r in results)} frames; {stored} in the database)")
    print(f"ratio instances / mosquitto_sub: {t_sub / t_agg:.2f}")
    print(f"CPU per frame: mosquitto_sub {cpu_sub / args.frames * 1e6:.1f} us, instances {cpu_agg / args.frames * 1e6:.1f} us "
          f"(all of them); per busy core ratio {cpu_sub / cpu_agg:.2f}")
    return 0 if stored == args.frames else 1


if __name__ == "__main__":
    sys.exit(main())
