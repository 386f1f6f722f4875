"""Incident latency through the real service: from publishing the report that completes a fix
to the incident arriving on lw/alerts/incident, with background frames at a given rate.

This is issue 6's wording ("from the arrival of the report that completes a fix to the
incident being published, at 1,000 frames per second of background traffic"); the fusion-only
stress figure is `fusion_latency` (1,000 *event reports*/s straight into the engine).

A private Mosquitto and the real `linewatch aggregator` (subprocess, default config but for
the ones written below) are started; this process publishes, as the nodes would:
- background: `--rate` frames/s from 300 nodes in two rows along 150 km of line (1 km apart,
  500 m either side), heartbeats but for `--event-share` lone event reports from random
  nodes (a plausible single-node detection: explosion, small arms, vehicle or drone);
- targets: every 0.5 s a blast at a random point inside the array heard by its 4 nearest
  nodes, onsets at the speed of sound of the configured temperature plus 0.3 ms picking
  noise (GPS clocks, 1 ms stated error); each report is published 150 ms after its onset (the
  detector's window), in onset order; the 4th is the completing report.
It subscribes to lw/alerts/incident and times, per target, the first "tdoa" incident naming the
completing node near the blast time; the fix's distance from the true source is checked, so
the figures are of real fixes. Each run is done at `--rate` and at 0 background, each with a
fresh aggregator, and printed side by side with the aggregator's CPU use.

    python -m lwtools.bench.incident_latency [--rate 1000] [--event-share 0.05] [--seconds 30]

`--offline` replays the same workload straight into a FusionEngine (as the service runs it:
wide searches deferred and settled after each report). LW_BENCH_PROFILE=<prefix> runs each
aggregator under cProfile, writing <prefix>.<ms>.
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lwproto import auth, const, frame as wire, topic as topics
from linewatch import keys
from linewatch.fusion import speed_of_sound
from linewatch.geo import LocalFrame
from linewatch.commission.registry import Registry
from linewatch.commission.store import open_store
from linewatch.mosquitto import Mosquitto

SEGMENT = 1
TEMPERATURE_C = 8.0
C = speed_of_sound(TEMPERATURE_C)
FRAME = LocalFrame(48.0, 37.0)
SPACING_M = 1000.0
PER_ROW = 150
LENGTH_M = PER_ROW * SPACING_M
NODE_IDS = list(range(0x0100, 0x0100 + 2 * PER_ROW))
NODE_XY = np.array([(i * SPACING_M, 500.0) for i in range(PER_ROW)] +
                   [(i * SPACING_M + 500.0, -500.0) for i in range(PER_ROW)])
LINE = [FRAME.to_latlon(-1000.0, 0.0), FRAME.to_latlon(LENGTH_M + 1000.0, 0.0)]
TARGET_EVERY_S = 0.5
HEARD_BY = 4
# Successive blasts go round the line's sectors (centres 25 km apart, within 2.5 km of the
# centre), so blasts less than 3 s apart are over 20 km apart: heard by 4 nodes only, blasts
# close in space and time are ambiguous (any 3 arrivals fit some source exactly).
SECTORS = 6
SECTOR_SPREAD_M = 2500.0
DETECT_DELAY_S = 0.15
PICK_NOISE_S = 0.0003
CLOCK_ERROR_US = 1000
WAIT_AFTER_S = 5.0          # a target without a fix this long after its last report is missed
GOOD_FIX_M = 100.0
LONE_CLASSES = (const.EXPLOSION, const.SMALL_ARMS, const.VEHICLE, const.DRONE)


@dataclass
class Target:
    number: int
    xy: tuple[float, float]
    emitted_us: int
    nodes: list[int]                   # in onset order; the last completes the fix
    completed_at: float = 0.0          # monotonic time the completing report was published
    third_at: float = 0.0
    fixed_at: float = 0.0
    first_tdoa_at: float = 0.0
    error_m: float = math.nan


@dataclass
class Run:
    rate: float
    targets: list[Target] = field(default_factory=list)
    background_sent: int = 0
    background_seconds: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    incidents_seen: int = 0


class Nodes:
    """Keys and sequence numbers of every node (one boot each)."""

    def __init__(self, master: bytes) -> None:
        self.keys = {n: auth.derive_node_key(master, n) for n in NODE_IDS}
        self.seq = dict.fromkeys(NODE_IDS, 0)

    def frame(self, node: int, ftype: int, now_us: int, values: dict) -> tuple[str, bytes]:
        self.seq[node] += 1
        data = wire.encode(self.keys[node], ftype, node, 1, self.seq[node], now_us, const.CLOCK_GPS_PPS,
                           CLOCK_ERROR_US, values)
        return topics.uplink(SEGMENT, node, ftype), data


def heartbeat(rng: random.Random) -> dict:
    return {"battery_mv": 3900, "temperature_c": TEMPERATURE_C, "uptime_s": 1000, "rssi_dbm": -60,
            "queue_depth": 0, "free_memory": 60000, "detections": 0, "dropped": 0, "reconnects": 0,
            "refused_commands": 0, "radio_ms": 1200, "slept_s": 0, "heartbeat_s": 60, "power": 0}


def event(event_class: int, onset_offset_us: int, rng: random.Random) -> dict:
    return {"event_class": event_class, "confidence": round(rng.uniform(0.6, 0.95), 2),
            "onset_offset_us": onset_offset_us, "peak_db": round(rng.uniform(-30.0, -5.0), 1),
            "duration_ms": rng.randint(20, 400), "frequency_hz": 150 if event_class == const.DRONE else 0,
            "snr_db": round(rng.uniform(8.0, 30.0), 1)}


# -- the commission's side --

def prepare(folder: Path, broker: Mosquitto, synchronous: str) -> Path:
    folder.mkdir(parents=True)
    master = keys.load_or_create(folder / "master.key")
    store = open_store(str(folder / "linewatch.db"), "NORMAL")
    try:
        registry = Registry(store)
        for node, (x, y) in zip(NODE_IDS, NODE_XY):
            registry.add(node, SEGMENT, *FRAME.to_latlon(float(x), float(y)), 100.0)
    finally:
        store.close()
    config = folder / "aggregator.toml"
    config.write_text(
        "# Written by lwtools.bench.incident_latency; everything else is the default.\n"
        "[broker]\nhost = \"%s\"\nport = %d\nclient_id = \"bench-aggregator\"\nconnect_retries = 10\n"
        "retry_delay_s = 0.5\n\n[store]\npath = \"linewatch.db\"\nsynchronous = \"%s\"\n\n"
        "[fusion]\nline = [%s]\ntemperature_c = %.1f\n"
        % (broker.host, broker.port, synchronous, ", ".join("[%.7f, %.7f]" % p for p in LINE), TEMPERATURE_C))
    return config


def start_aggregator(config: Path, log_path: Path, timeout_s: float = 20.0) -> subprocess.Popen:
    log = open(log_path, "ab")
    profile = os.environ.get("LW_BENCH_PROFILE")     # a cProfile output prefix, for looking inside
    profile = profile and "%s.%d" % (profile, time.time() * 1000)
    process = subprocess.Popen([sys.executable] + (["-m", "cProfile", "-o", profile] if profile else []) +
                               ["-m", "linewatch.cli", "aggregator", "--config", str(config)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("aggregator exited with %d: %s" % (process.returncode, log_path.read_text()[-2000:]))
        if b"listening on" in log_path.read_bytes():
            return process
        time.sleep(0.05)
    stop_aggregator(process)
    raise RuntimeError("aggregator not listening after %.0f s" % timeout_s)


def stop_aggregator(process: subprocess.Popen, timeout_s: float = 15.0) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def cpu_seconds(pid: int) -> float:
    parts = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


# -- the field's side --

class Listener:
    """lw/alerts/incident, timed on arrival (its own client and network thread)."""

    def __init__(self, broker: Mosquitto, name: str) -> None:
        import paho.mqtt.client as paho
        self.lock = threading.Lock()
        self.arrived: list[tuple[float, dict]] = []
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.subscribe("lw/alerts/incident", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        at = time.monotonic()
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        with self.lock:
            self.arrived.append((at, body))

    def take(self) -> list[tuple[float, dict]]:
        with self.lock:
            out, self.arrived = self.arrived, []
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def publisher(broker: Mosquitto, name: str):
    import paho.mqtt.client as paho
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    return client


def plan(rate: float, event_share: float, seconds: float, every: float, rng: random.Random,
         t0: float) -> list[tuple]:
    """(monotonic time, kind, detail): background frames evenly spaced, a target every `every` s."""
    items: list[tuple] = []
    for k in range(int(rate * seconds)):
        kind = "lone" if rng.random() < event_share else "heartbeat"
        items.append((t0 + k / rate, 1, kind, rng.choice(NODE_IDS)))
    for number in range(int(seconds / every)):
        emitted = t0 + 0.2 + number * every
        centre = (number % SECTORS + 0.5) * LENGTH_M / SECTORS
        xy = (centre + rng.uniform(-SECTOR_SPREAD_M, SECTOR_SPREAD_M), rng.uniform(-400.0, 400.0))
        distance = np.hypot(NODE_XY[:, 0] - xy[0], NODE_XY[:, 1] - xy[1])
        heard = [int(i) for i in np.argsort(distance)[:HEARD_BY]]
        onsets = sorted((emitted + distance[i] / C + rng.gauss(0.0, PICK_NOISE_S), NODE_IDS[i]) for i in heard)
        target = Target(number, xy, 0, [n for _, n in onsets])
        for order, (onset, node) in enumerate(onsets):
            items.append((onset + DETECT_DELAY_S, 0, "target", (target, order, onset)))
        target.emitted_us = 0   # set once the wall clock is tied to the monotonic one
        target.emitted_mono = emitted   # type: ignore[attr-defined]
    items.sort(key=lambda item: (item[0], item[1]))
    return items


def play(items: list[tuple], nodes: Nodes, client, run: Run, rng: random.Random) -> None:
    wall0_us, mono0 = time.time_ns() // 1000, time.monotonic()
    wall_us = lambda mono: wall0_us + int((mono - mono0) * 1e6)
    first_background = last_background = None
    for at, _, kind, detail in items:
        ahead = at - time.monotonic()
        if ahead > 0.001:
            time.sleep(ahead)
        now_mono = time.monotonic()
        now_us = wall_us(now_mono)
        if kind == "target":
            target, order, onset = detail
            target.emitted_us = wall_us(target.emitted_mono)
            node = target.nodes[order]
            topic, data = nodes.frame(node, const.EVENT, now_us,
                                      event(const.EXPLOSION, wall_us(onset) - now_us, rng))
            stamp = time.monotonic()
            client.publish(topic, data, qos=1)
            if order == 2:
                target.third_at = stamp
            if order == HEARD_BY - 1:
                target.completed_at = stamp
                run.targets.append(target)
            continue
        if kind == "heartbeat":
            topic, data = nodes.frame(detail, const.HEARTBEAT, now_us, heartbeat(rng))
        else:
            offset = -int((DETECT_DELAY_S + rng.uniform(0.0, 0.05)) * 1e6)
            topic, data = nodes.frame(detail, const.EVENT, now_us, event(rng.choice(LONE_CLASSES), offset, rng))
        client.publish(topic, data, qos=1)
        run.background_sent += 1
        first_background = first_background or now_mono
        last_background = now_mono
    if first_background is not None and last_background > first_background:
        run.background_seconds = last_background - first_background


def match(run: Run, arrivals: list[tuple[float, dict]]) -> None:
    """Each target's first tdoa incident naming its completing node (and any of its nodes, for
    the first fix), near its blast time."""
    for at, body in arrivals:
        if body.get("fix") != "tdoa" or body.get("lat") is None:
            continue
        nodes = set(body.get("nodes") or ())
        x, y = FRAME.to_xy(body["lat"], body["lon"])
        for target in run.targets:
            if abs(body.get("time_utc_us", 0) - target.emitted_us) > 500_000 or not nodes & set(target.nodes):
                continue
            error = math.hypot(x - target.xy[0], y - target.xy[1])
            if not target.first_tdoa_at and at >= target.third_at and error <= GOOD_FIX_M:
                target.first_tdoa_at = at
            if target.nodes[-1] in nodes and at >= target.completed_at and not target.fixed_at:
                target.error_m = error          # the good fix, or the last wrong one
                if error <= GOOD_FIX_M:
                    target.fixed_at = at


def one_run(work: Path, broker: Mosquitto, rate: float, event_share: float, seconds: float, every: float,
            seed: int, synchronous: str) -> Run:
    name = "r%d" % int(rate)
    config = prepare(work / name, broker, synchronous)
    master = keys.load_or_create(work / name / "master.key")
    run = Run(rate)
    aggregator = start_aggregator(config, work / name / "aggregator.log")
    listener = client = None
    try:
        listener = Listener(broker, "bench-alerts-" + name)
        client = publisher(broker, "bench-field-" + name)
        rng = random.Random(seed)
        items = plan(rate, event_share, seconds, every, rng, time.monotonic() + 0.5)
        cpu0, wall0 = cpu_seconds(aggregator.pid), time.monotonic()
        play(items, Nodes(master), client, run, rng)
        time.sleep(WAIT_AFTER_S)
        run.cpu_s, run.wall_s = cpu_seconds(aggregator.pid) - cpu0, time.monotonic() - wall0
        arrivals = listener.take()
        run.incidents_seen = len(arrivals)
        match(run, arrivals)
    finally:
        if client is not None:
            client.loop_stop()
            client.disconnect()
        if listener is not None:
            listener.close()
        stop_aggregator(aggregator)
    return run


# -- figures --

def valid(run: Run) -> bool:
    """Every target report makes at least a detection alert: none at all means the aggregator
    took no frames (seen once: 1% CPU, no alerts while 1,000 frames/s were published), and the
    run's figures mean nothing."""
    return run.incidents_seen > 0 or not run.targets


def describe(run: Run) -> dict[str, str]:
    fixed = [t for t in run.targets if t.fixed_at]
    latency = np.array([(t.fixed_at - t.completed_at) * 1e3 for t in fixed])
    first = np.array([(t.first_tdoa_at - t.third_at) * 1e3 for t in run.targets if t.first_tdoa_at])
    errors = np.array([t.error_m for t in fixed])
    wrong = sum(1 for t in run.targets if not t.fixed_at and not math.isnan(t.error_m))
    q = lambda a, p: "%.1f" % np.quantile(a, p) if len(a) else "-"
    achieved = run.background_sent / run.background_seconds if run.background_seconds else 0.0
    return {
        "run valid": "yes" if valid(run) else "NO: no alerts at all (aggregator took no frames?)",
        "background frames/s (asked / achieved)": "%.0f / %.0f" % (run.rate, achieved),
        "sources injected / fixed / missed": "%d / %d / %d" % (len(run.targets), len(fixed),
                                                              len(run.targets) - len(fixed)),
        "  of the missed: only a wrong fix (> %.0f m)" % GOOD_FIX_M: "%d" % wrong,
        "position error m of the fixes (p50 / p90 / max)": "%s / %s / %s" % (q(errors, 0.5), q(errors, 0.9),
                                                                           q(errors, 1.0)),
        "latency ms p50": q(latency, 0.5),
        "latency ms p90": q(latency, 0.9),
        "latency ms p99": q(latency, 0.99),
        "latency ms max": q(latency, 1.0),
        "first 3-node fix, ms after 3rd report (p50 / p99)": "%s / %s" % (q(first, 0.5), q(first, 0.99)),
        "incident alerts received": "%d" % run.incidents_seen,
        "aggregator CPU (of one core)": "%.0f%%" % (100.0 * run.cpu_s / run.wall_s if run.wall_s else 0.0),
    }


def offline(rate: float, event_share: float, seconds: float, every: float, seed: int) -> dict[str, str]:
    """The same workload (same plan, same seed) replayed straight into a FusionEngine in
    virtual time, one thread, no broker or store: how many blasts the engine itself fixes
    and its CPU per event report, without queueing. Heartbeats are not fusion's work and are
    skipped (the service's ingest of them is measured by the service run)."""
    from linewatch.fusion import FusionConfig, FusionEngine, Report
    from linewatch.geo import ContactLine
    rng = random.Random(seed)
    items = plan(rate, event_share, seconds, every, rng, 0.0)
    names = {getattr(const, n): n.lower() for n in ("EXPLOSION", "SMALL_ARMS", "VEHICLE", "DRONE")}
    where = {n: FRAME.to_latlon(float(x), float(y)) for n, (x, y) in zip(NODE_IDS, NODE_XY)}
    engine = FusionEngine(ContactLine(LINE), FusionConfig(temperature_c=TEMPERATURE_C))
    engine.defer_wide = True            # as the service runs it: wide searches settled when idle
    t0_us = 1_800_000_000_000_000
    us = lambda s: t0_us + int(s * 1e6)
    found: dict[int, float] = {}
    targets = {}
    cpu = 0.0
    count = 0
    costs = []
    completing = []                 # the cost of each target's completing report
    next_tick = 1.0
    for at, _, kind, detail in items:
        if kind == "heartbeat":
            continue
        if kind == "target":
            target, order, onset = detail
            node, cls, onset_us = target.nodes[order], "explosion", us(onset)
            targets[target.number] = target
            event(const.EXPLOSION, 0, rng)          # the service run's draws, in its order
        else:
            onset_us = us(at - DETECT_DELAY_S - rng.uniform(0.0, 0.05))
            node, cls = detail, rng.choice(LONE_CLASSES)
            event(cls, 0, rng)
            cls = names[cls]
        lat, lon = where[node]
        report = Report(node, lat, lon, 0.0, cls, onset_us, CLOCK_ERROR_US, 0.8, -10.0, 100, 0, 20.0, None, us(at))
        started = time.process_time()
        out = engine.add(report, us(at))
        if at >= next_tick:
            out += engine.tick(us(at))
            next_tick += 1.0
        costs.append(time.process_time() - started)
        if kind == "target" and order == HEARD_BY - 1:
            completing.append(costs[-1])
        while engine.parked():          # the service does these while no frame waits
            out += engine.settle(us(at))
        costs[-1] = time.process_time() - started
        cpu += costs[-1]
        count += 1
        for incident in out:
            if incident.fix != "tdoa" or incident.lat is None:
                continue
            x, y = FRAME.to_xy(incident.lat, incident.lon)
            for target in targets.values():
                if target.nodes[-1] in incident.nodes and math.hypot(x - target.xy[0], y - target.xy[1]) <= GOOD_FIX_M:
                    found.setdefault(target.number, at)
    return {"blasts fixed (offline)": "%d / %d" % (len(found), len(targets)),
            "event reports / fusion CPU s": "%d / %.2f" % (count, cpu),
            "fusion CPU per report us": "%.0f" % (cpu / max(count, 1) * 1e6),
            "per report p99 / max ms": "%.1f / %.1f" % (_percentile(costs, 0.99) * 1e3, max(costs, default=0.0) * 1e3),
            "completing report's add() p50 / p99 ms": "%.1f / %.1f" % (_percentile(completing, 0.5) * 1e3,
                                                               _percentile(completing, 0.99) * 1e3),
            "fusion CPU (of one core) at this rate": "%.0f%%" % (100.0 * cpu / seconds)}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="background frames per second")
    parser.add_argument("--event-share", type=float, default=0.05, help="share of lone event reports in it")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of traffic per run")
    parser.add_argument("--every", type=float, default=TARGET_EVERY_S, help="seconds between target blasts")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--synchronous", default="FULL", choices=("FULL", "NORMAL"),
                        help="the store's setting (FULL is the aggregator's default)")
    parser.add_argument("--offline", action="store_true",
                        help="replay the workload straight into the fusion engine (no service)")
    args = parser.parse_args(argv)
    if not (0 <= args.event_share <= 1 and args.rate >= 0 and 0 < args.seconds <= 600 and args.every >= 0.1):
        parser.error("need 0 <= --event-share <= 1, --rate >= 0, 0 < --seconds <= 600, --every >= 0.1")
    if args.offline:
        for rate in (args.rate, 0.0):
            print("offline replay, background %.0f/s: %s" % (rate, offline(rate, args.event_share, args.seconds,
                                                                             args.every, args.seed)))
        return 0
    sys.setswitchinterval(0.001)   # the publisher's and listener's threads share one GIL
    with tempfile.TemporaryDirectory(prefix="lw-incident-latency-") as tmp:
        work = Path(tmp)
        with Mosquitto(workdir=work / "broker") as broker:
            runs = [one_run(work, broker, rate, args.event_share, args.seconds, args.every, args.seed,
                            args.synchronous)
                    for rate in (args.rate, 0.0)]
    rows = [describe(r) for r in runs]
    print("incident latency through the service: %d nodes, %.0f s per run, event share %.2f, "
          "a 4-node blast every %.1f s, store synchronous=%s"
          % (len(NODE_IDS), args.seconds, args.event_share, args.every, args.synchronous))
    width = max(len(k) for k in rows[0])
    print("%-*s  %22s  %22s" % (width, "", "background %.0f/s" % args.rate, "no background"))
    for key in rows[0]:
        print("%-*s  %22s  %22s" % (width, key, rows[0][key], rows[1][key]))
    return 0 if all(valid(r) for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
