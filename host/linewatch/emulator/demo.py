"""The whole chain on one machine, in real time: a private Mosquitto, the aggregator (the real
`linewatch aggregator`, a child process), and an emulated segment playing a bundled scenario.

What the newcomer sees is what crosses the broker, watched by a plain subscriber: a line per
second with the frames that flowed (verified with each node's key), one line per detection,
node health changes and incidents as the aggregator publishes them on its alerts topic, and
at the end the score against the ground truth. Everything started is stopped on the way out,
also on Ctrl-C or an error.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from lwproto import const, frame as wire, topic as topics
from lwproto.errors import ProtocolError

from linewatch import keys
from linewatch.emulator import scenario as sc, vclock
from linewatch.emulator.commission import Commission
from linewatch.emulator.runner import RunOptions, Runner, prepare
from linewatch.emulator.score import format_text, score, withdrawn
from linewatch.commission.mqtt import MqttLink
from linewatch.mosquitto import Mosquitto

ALERTS_FILTER = topics.ALERTS + "/#"


@dataclass
class Watch:
    """What the demo's subscriber saw."""
    frames: Counter = field(default_factory=Counter)
    refused: int = 0
    incidents: dict = field(default_factory=dict)
    node_states: list = field(default_factory=list)


class Viewer:
    """Subscribes to every node topic and the alerts; prints what happens, rate-limited."""

    def __init__(self, broker: tuple[str, int], master: bytes, out: TextIO, started: float) -> None:
        self.link = MqttLink("linewatch-demo-viewer", broker[0], broker[1], clean_session=True)
        self.master = master
        self.out = out
        self.started = started
        self.watch = Watch()
        self._second: Counter = Counter()
        self._keys: dict[int, bytes] = {}

    def say(self, text: str) -> None:
        self.out.write("[%5.1fs] %s\n" % (time.monotonic() - self.started, text))
        self.out.flush()

    async def run(self, stop: asyncio.Event) -> None:
        await self.link.connect(retries=10, delay_s=0.5)
        await self.link.subscribe(topics.uplink_filter(), qos=0)
        await self.link.subscribe(ALERTS_FILTER, qos=0)
        next_line = time.monotonic() + 1.0
        try:
            while not stop.is_set():
                await self.link.wait(timeout=0.2)
                for topic, payload, _ in self.link.take(10_000):
                    self._show(topic, payload)
                if time.monotonic() >= next_line:
                    next_line += 1.0
                    self._summary()
        finally:
            await self.link.disconnect()

    def _summary(self) -> None:
        if not self._second:
            return
        total = sum(self.watch.frames.values())
        parts = ", ".join("%d %s" % (n, kind) for kind, n in sorted(self._second.items()))
        self.say("frames this second: %s  (all: %d verified, %d refused)" % (parts, total, self.watch.refused))
        self._second.clear()

    def _show(self, topic: str, payload: bytes) -> None:
        if topic.startswith(topics.ALERTS + "/"):
            return self._alert(topic, payload)
        try:
            _segment, node, _kind = topics.parse(topic)
            key = self._keys.setdefault(node, keys.derive(self.master, node))
            f = wire.decode(payload, key)
        except ProtocolError as exc:
            self.watch.refused += 1
            self.say("refused on %s: %s" % (topic, exc))
            return
        name = f.type_name()
        self.watch.frames[name] += 1
        self._second[name] += 1
        if f.ftype == const.EVENT:
            v = f.fields()
            self.say("node 0x%04x reports %s (confidence %.2f, %.0f dB above its noise)"
                     % (f.node, const.CLASS_NAMES[v["event_class"]], v["confidence"], v["snr_db"]))
        elif f.ftype in (const.BIRTH, const.DEATH):
            self.say("node 0x%04x %s (boot %d)" % (f.node, name, f.boot))

    def _alert(self, topic: str, payload: bytes) -> None:
        try:
            alert = json.loads(payload)
        except ValueError:
            return
        if alert.get("kind") == "node_state":
            self.watch.node_states.append(alert)
            self.say("health: node %s %s -> %s (%s)" % (alert.get("node"), alert.get("old"),
                                                        alert.get("new"), alert.get("why")))
        elif alert.get("kind") == "incident":
            before = self.watch.incidents.get(alert.get("id"))
            self.watch.incidents[alert.get("id")] = alert
            if before is None or before.get("fix") != alert.get("fix"):
                self.say("incident %s: %s" % (alert.get("id"), describe_incident(alert)))


def describe_incident(i: dict) -> str:
    if withdrawn(i):
        return "%s, withdrawn: its reports now belong to other incidents" % i.get("class")
    where = ("at %.5f, %.5f" % (i["lat"], i["lon"])) if i.get("lat") is not None else "position unknown"
    side = {"L": "left", "R": "right"}.get(i.get("side") or "", "undecided")
    return "%s, fix %s, %s, side of the line: %s, %d nodes" % (
        i.get("class"), i.get("fix"), where, side, len(i.get("nodes") or ()))


def run_demo(scenario_name: str = "demo", out: TextIO | None = None, keep: Path | None = None,
             drain_s: float = 5.0) -> dict:
    """Run the demo to its end; returns the score. Raises BrokerError without Mosquitto."""
    import sys
    out = out or sys.stdout
    scenario = sc.load(scenario_name)
    folder = Path(tempfile.mkdtemp(prefix="lw-demo-")) if keep is None else keep
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    broker = Mosquitto(workdir=folder / "broker")
    desk: Commission | None = None
    try:
        broker.start()
        world, truth = prepare(scenario, real_time=True)
        address = (broker.host, broker.port)
        desk = Commission.prepare(folder / "commission", world, address)
        out.write("LineWatch demo: scenario %r, %d nodes in %d segments, %.0f s in real time\n"
                  "  broker     Mosquitto on %s:%d (private)\n"
                  "  commission linewatch aggregator, registry and master key in %s\n"
                  % (scenario.name, len(world.nodes), len(world.segments), scenario.duration_s,
                     broker.host, broker.port, desk.folder))
        desk.start_aggregator()
        options = RunOptions(address, folder / "nodes", desk.master_key, virtual=False,
                             drain_s=drain_s, progress=False)
        viewer = Viewer(address, desk.master_key, out, started)
        summary = vclock.run(lambda: _play(Runner(scenario, world, options), viewer))
        code = desk.stop_aggregator()
        out.write("\n%s\naggregator stopped (exit %s)\n\n" % (summary.text(), code))
        result = score(truth, desk.incidents())
        out.write(format_text(result))
        return result
    finally:
        if desk is not None:
            desk.stop_aggregator()
        broker.stop()
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


async def _play(runner: Runner, viewer: Viewer):
    stop = asyncio.Event()
    watching = asyncio.get_running_loop().create_task(viewer.run(stop))
    try:
        await asyncio.sleep(0.3)          # the viewer subscribes before the nodes' births
        return await runner.run()
    finally:
        await asyncio.sleep(1.0)          # the last alerts
        stop.set()
        await asyncio.gather(watching, return_exceptions=True)
