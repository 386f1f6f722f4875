"""Three aggregator instances share a line of three segments (MQTT 5 shared subscription on a
real Mosquitto, one real PostgreSQL); the owner of the middle segment is SIGKILLed mid-run.

Every frame must be stored exactly once (the line's stand-in resends what was not acked, as
the nodes' flash queues do), the chain must verify, and every blast — two of them on segment
boundaries, some before and some after the kill — must be fused into exactly one incident.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import random
import signal
import subprocess
import sys
import time

import psycopg

from lwnode.mqtt import MQTTClient
from lwproto import const
from lwproto import frame as wire
from lwproto import topic as topics

from linewatch import keys
from linewatch.commands.evidence import verify
from linewatch.commission.cluster import SEGMENT_LOCK
from linewatch.commission.registry import Registry
from linewatch.commission.store import FRAME, open_store
from linewatch.geo import LocalFrame

LAT0, LON0 = 48.0, 37.0
SEGMENT_KM = 12
SPEED = 331.3 * math.sqrt(1 + 8 / 273.15)      # [fusion] temperature_c = 8
FRAME0 = LocalFrame(LAT0, LON0)
# (x km along the line, y km off it, seconds after the start): boundaries at 12 and 24 km
BLASTS = [(6.2, 0.3, 1.0), (12.0, -0.2, 2.5), (17.5, 0.4, 4.0), (24.0, 0.1, 7.5), (30.3, -0.3, 9.0),
          (18.4, -0.1, 10.5)]
KILL_AT_S = 5.0
RUN_S = 12.0


def layout():
    """Two rows 1 km apart (500 m either side of the line), 1 km spacing, staggered."""
    nodes = {}
    for i in range(3 * SEGMENT_KM):
        for row, y in ((0, -0.5), (1, 0.5)):
            x = i + 0.5 * row
            segment = 1 + int(x // SEGMENT_KM)
            lat, lon = FRAME0.to_latlon(x * 1000, y * 1000)
            nodes[(segment << 8) | (2 * (i % SEGMENT_KM) + row + 1)] = (segment, lat, lon, x, y)
    return nodes


class Line:
    """The line's nodes as the broker sees them: one connection publishing each node's frames
    on its own topic, keeping every frame until the commission acks it (the flash queue), and
    answering resend commands. Downlink frames are checked as the firmware does: tag, and a
    (boot, seq) above the last accepted one."""

    def __init__(self, broker, master, nodes):
        self.nodes, self.boot = nodes, 3
        self.keys = {n: keys.derive(master, n) for n in nodes}
        self.seq = {n: 0 for n in nodes}
        self.unacked: dict[tuple[int, int], tuple[str, bytes]] = {}
        self.last_ack = {n: (0, 0) for n in nodes}
        self.published = []      # (node, seq) of every frame made
        self.client = MQTTClient("line-standin", broker.host, broker.port, keepalive=30, on_message=self.downlink)

    async def start(self):
        await self.client.connect()
        await self.client.subscribe("lw/+/+/down", 1)

    def make(self, node, ftype, values, at_us):
        self.seq[node] += 1
        seq = self.seq[node]
        data = wire.encode(self.keys[node], ftype, node, self.boot, seq, at_us, const.CLOCK_GPS_PPS, 200, values)
        self.unacked[(node, seq)] = (topics.uplink(self.nodes[node][0], node, ftype), data)
        self.published.append((node, seq))
        return self.unacked[(node, seq)]

    async def send(self, message):
        await self.client.publish(message[0], message[1], 1)

    def downlink(self, topic, payload):
        node = int(topic.split("/")[2], 16)
        f = wire.decode(payload, self.keys[node])
        if (f.boot, f.seq) <= self.last_ack[node]:
            return                       # an old owner's frame: refused, as on a board
        self.last_ack[node] = (f.boot, f.seq)
        if f.ftype == const.ACK and f.field("boot") == self.boot:
            for key in [k for k in self.unacked if k[0] == node and k[1] <= f.field("seq")]:
                del self.unacked[key]
        elif f.ftype == const.COMMAND and f.field("command") == const.CMD_RESEND:
            first, last = f.field("first_seq"), f.field("last_seq")
            again = [m for (n, s), m in self.unacked.items() if n == node and first <= s <= last]
            asyncio.get_running_loop().create_task(self._resend(again))

    async def _resend(self, messages):
        for m in messages:
            await self.send(m)


def heartbeat(uptime):
    values = {spec[0]: 0 for spec in wire.fields(const.HEARTBEAT)}     # counters the test does not read
    values.update({"battery_mv": 3900, "temperature_c": 8.0, "uptime_s": uptime, "rssi_dbm": -60,
                   "free_memory": 50000})
    return values


def event(offset_us):
    return {"event_class": const.EXPLOSION, "confidence": 0.9, "onset_offset_us": offset_us, "peak_db": -10.0,
            "duration_ms": 100, "frequency_hz": 90, "snr_db": 20.0}


def owners(url):
    with psycopg.connect(url, autocommit=True) as db:
        return dict(db.execute("SELECT objid::int, pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
                               "AND objsubid = 2 AND granted", (SEGMENT_LOCK,)).fetchall())


def instance_pids(url):
    with psycopg.connect(url, autocommit=True) as db:
        return dict(db.execute("SELECT application_name, pid FROM pg_stat_activity "
                               "WHERE application_name LIKE 'linewatch-%'").fetchall())


async def until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


async def test_three_instances_one_killed_every_frame_once_every_blast_one_incident(tmp_path, mosquitto,
                                                                                    postgres_url):
    nodes = layout()
    master = keys.create_master_key(tmp_path / "master.key")
    store = open_store(postgres_url)
    registry = Registry(store)
    for node, (segment, lat, lon, _, _) in nodes.items():
        registry.add(node, segment, lat, lon)
    end = FRAME0.to_latlon(3 * SEGMENT_KM * 1000, 0)
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'[broker]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nclient_id = "lw-cluster"\n'
        f'[store]\nurl = "{postgres_url}"\nbatch_max = 200\n[keys]\nmaster_key_file = "master.key"\n'
        f'[acks]\ninterval_ms = 100\nresend_interval_s = 1.0\nresend_tries = 20\n'
        f'[fusion]\nline = [[{LAT0}, {LON0}], [{end[0]}, {end[1]}]]\ntemperature_c = 8.0\n'
        f'[cluster]\nclaim_interval_s = 0.5\nfeed_interval_ms = 20\n')
    logs = {name: open(tmp_path / f"aggregator-{name}.log", "w") for name in "abc"}
    procs = {name: subprocess.Popen([sys.executable, "-m", "linewatch.cli", "aggregator", "--config", str(config),
                                     "--instance", name], stdout=logs[name], stderr=subprocess.STDOUT,
                                    start_new_session=True) for name in "abc"}
    line = Line(mosquitto, master, nodes)
    await line.start()
    rng = random.Random(15)
    try:
        await until(lambda: len(owners(postgres_url)) == 3, 30, "three segments owned")
        start = time.time()
        t0_us = int(start * 1e6)
        pending = sorted(BLASTS, key=lambda b: b[2])
        uptime, killed = 0, None
        while time.time() - start < RUN_S:
            now = time.time() - start
            for node in nodes:                                   # 10 heartbeats/s per node
                if rng.random() < 0.1 * 1.0:
                    await line.send(line.make(node, const.HEARTBEAT, heartbeat(uptime), int(time.time() * 1e6)))
            while pending and pending[0][2] <= now:
                bx, by, bt = pending.pop(0)
                for node, (_, _, _, x, y) in nodes.items():
                    d = math.hypot(x - bx, y - by) * 1000
                    if d <= 3000:
                        onset = t0_us + int((bt + d / SPEED) * 1e6) + int(rng.gauss(0, 100))
                        await line.send(line.make(node, const.EVENT, event(-100), onset + 100))
            if killed is None and now >= KILL_AT_S:
                owner_of = owners(postgres_url)
                victim_pid = owner_of[2]
                killed = next(n for n, pid in instance_pids(postgres_url).items() if pid == victim_pid)[-1]
                os.killpg(procs[killed].pid, signal.SIGKILL)
                procs[killed].wait()
                killed_us = int(time.time() * 1e6)
            uptime += 1
            await asyncio.sleep(0.1)
        # the survivors took segment 2 over
        await until(lambda: len(owners(postgres_url)) == 3, 20, "segment 2 taken over")
        for _ in range(60):        # the nodes resend what is still unacked (reconnects, resend commands)
            if not line.unacked:
                break
            for message in list(line.unacked.values()):
                await line.send(message)
            await asyncio.sleep(1.0)
        assert not line.unacked, f"{len(line.unacked)} frames never acked"
        await asyncio.sleep(2.0)   # the owners' feed and fusion
    finally:
        for name, proc in procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {name: proc.wait(timeout=30) for name, proc in procs.items()}
        await line.client.disconnect()
        for log in logs.values():
            log.close()
    assert codes[killed] == -signal.SIGKILL and all(c == 0 for n, c in codes.items() if n != killed), codes
    # the takeover is in the evidence log (an instance may also have handed a segment over at
    # the start, above its share while the others joined: so the first one after the kill)
    takeovers = [r.received_us for r in store.evidence() if r.type == "segment_owner"
                 and json.loads(r.note)["segment"] == 2 and r.received_us > killed_us]
    assert takeovers and takeovers[0] - killed_us < 3e6      # claim_interval_s 0.5 + the replay
    stored = sorted((r.node, r.seq) for r in store.evidence() if r.kind == FRAME)
    assert stored == sorted(line.published)                        # every frame exactly once
    count, bad = verify(store, master)
    assert bad is None
    # every blast: exactly one incident holds its reports, located where it was
    report_blast = {}
    for r in store.evidence():
        if r.kind == FRAME and r.type == "event":
            f = wire.decode(r.raw, line.keys[r.node])
            onset_s = (f.time_us - 100 - t0_us) / 1e6
            _, _, _, x, y = nodes[r.node]
            report_blast[r.id] = min(range(len(BLASTS)), key=lambda i: abs(
                onset_s - BLASTS[i][2] - math.hypot(x - BLASTS[i][0], y - BLASTS[i][1]) * 1000 / SPEED))
    incidents = [inc for inc in _incidents(store) if inc["reports"]]
    held = {}
    for inc in incidents:
        blasts = {report_blast[e] for e in inc["reports"]}
        assert len(blasts) == 1, f"incident {inc['id']} mixes blasts {blasts}"
        held.setdefault(blasts.pop(), []).append(inc)
    for i, (bx, by, _) in enumerate(BLASTS):
        assert len(held.get(i, [])) == 1, f"blast {i} at {bx} km: {len(held.get(i, []))} incidents"
        inc = held[i][0]
        assert inc["fix"] == "tdoa"
        x, y = FRAME0.to_xy(inc["lat"], inc["lon"])
        assert math.hypot(x - bx * 1000, y - by * 1000) < 50, (i, x, y)
    store.close()


def _incidents(store):
    return [json.loads(body) for _, _, _, body in store.incidents()]
