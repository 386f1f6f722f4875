"""The whole chain on one machine, in real time: a private Mosquitto, the aggregator (the real
`linewatch aggregator`, a child process), and an emulated segment playing a bundled scenario.

What the newcomer sees is what crosses the broker, watched by a plain subscriber, in an
operator's words (linewatch.commission.wording): which side of the line is which and what the
ways of placing an incident mean, said once; the nodes coming up; a line of traffic figures
every 10 s (frames verified with each node's key); node health changes; each incident once
when it forms and once when it settles; at the end a summary of what the commission saw and
the score against the ground truth. Everything started is stopped on the way out, also on
Ctrl-C, SIGTERM or an error.
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
from linewatch.emulator.score import format_text, score
from linewatch.commission import config as cfg, wording
from linewatch.commission.mqtt import MqttLink
from linewatch.fusion.config import FusionConfig
from linewatch.mosquitto import Mosquitto, free_port

ALERTS_FILTER = topics.ALERTS + "/#"


FORM_DELAY_S = 2.0         # an incident is announced once it has stood this long (early
                           # incidents are often merged into others within a second)
TALLY_EVERY_S = 10.0       # one line of traffic figures this often
BIRTHS_TOGETHER_S = 1.0
# An incident settles (is final) once no later report can belong to it: the sound's longest
# way between nodes, then fusion's lateness allowance.
SETTLE_S = FusionConfig().max_baseline_m / 340.0 + FusionConfig().lateness_us / 1e6


@dataclass
class Watch:
    """What the demo's subscriber saw."""
    frames: Counter = field(default_factory=Counter)
    refused: int = 0
    detections: int = 0
    incidents: dict = field(default_factory=dict)        # id -> latest alert
    node_states: list = field(default_factory=list)
    nodes_up: set = field(default_factory=set)
    reboots: int = 0


class Viewer:
    """Subscribes to every node topic and the alerts; tells what happens in a few lines: node
    births together, traffic every TALLY_EVERY_S, health changes, and each incident twice: when
    it forms (once it has stood FORM_DELAY_S) and when it settles (final)."""

    def __init__(self, broker: tuple[str, int], master: bytes, out: TextIO, started: float,
                 sides: tuple[str, str] = wording.DEFAULT_SIDES) -> None:
        self.link = MqttLink("linewatch-demo-viewer", broker[0], broker[1], clean_session=True)
        self.master = master
        self.out = out
        self.started = started
        self.sides = sides
        self.watch = Watch()
        self._tally: Counter = Counter()
        self._births: list[tuple[int, int]] = []
        self._last_birth = 0.0
        self._pending: dict[str, float] = {}                # incident id -> first seen (monotonic)
        self._told: dict[str, str] = {}                     # incident id -> "formed" | "settled" | "withdrawn"
        self._keys: dict[int, bytes] = {}

    def say(self, text: str) -> None:
        self.out.write("[%5.1fs] %s\n" % (time.monotonic() - self.started, text))
        self.out.flush()

    async def run(self, stop: asyncio.Event) -> None:
        await self.link.connect(retries=10, delay_s=0.5)
        await self.link.subscribe(topics.uplink_filter(), qos=0)
        await self.link.subscribe(ALERTS_FILTER, qos=0)
        next_tally = time.monotonic() + TALLY_EVERY_S
        try:
            while not stop.is_set():
                await self.link.wait(timeout=0.2)
                for topic, payload, _ in self.link.take(10_000):
                    self._show(topic, payload)
                self._flush_births()
                self._announce(time.monotonic())
                if time.monotonic() >= next_tally:
                    next_tally += TALLY_EVERY_S
                    self._tally_line()
        finally:
            self._flush_births(force=True)
            self._announce(float("inf"))
            await self.link.disconnect()

    def _tally_line(self) -> None:
        if not self._tally:
            return
        parts = ", ".join("%d %s" % (n, kind) for kind, n in sorted(self._tally.items()))
        self.say("last %.0f s: frames verified with their nodes' keys: %s" % (TALLY_EVERY_S, parts))
        self._tally.clear()

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
        self._tally[name] += 1
        if f.ftype == const.EVENT:
            self.watch.detections += 1
        elif f.ftype == const.BIRTH:
            self._births.append((f.node, f.boot))
            self._last_birth = time.monotonic()
        elif f.ftype == const.DEATH:
            self.say("node 0x%04x went silent (its last will, boot %d)" % (f.node, f.boot))

    def _flush_births(self, force: bool = False) -> None:
        """Births that came together (within BIRTHS_TOGETHER_S of each other) in one line."""
        if not self._births or (not force and time.monotonic() - self._last_birth < BIRTHS_TOGETHER_S):
            return
        again = [(n, b) for n, b in self._births if n in self.watch.nodes_up]
        first = sorted(n for n, _ in self._births if n not in self.watch.nodes_up)
        if first:
            self.say("%s up (birth frames verified): %s" % (
                wording.plural(len(first), "node"), " ".join("0x%04x" % n for n in first)))
        for node, boot in again:
            self.watch.reboots += 1
            self.say("node 0x%04x up again (boot %d)" % (node, boot))
        self.watch.nodes_up.update(n for n, _ in self._births)
        self._births.clear()

    def _alert(self, topic: str, payload: bytes) -> None:
        try:
            alert = json.loads(payload)
        except ValueError:
            return
        if alert.get("kind") == "node_state":
            self.watch.node_states.append(alert)
            self.say("health: node %s %s -> %s (%s)" % (alert.get("node"), alert.get("old"),
                                                        alert.get("new"), alert.get("why")))
        elif alert.get("kind") == "incident" and alert.get("id"):
            self.watch.incidents[alert["id"]] = alert
            self._pending.setdefault(alert["id"], time.monotonic())

    def _announce(self, now: float) -> None:
        """The formed / settled / withdrawn lines that are due."""
        for incident_id, first_seen in sorted(self._pending.items(), key=lambda kv: kv[1]):
            incident = self.watch.incidents[incident_id]
            told = self._told.get(incident_id)
            if wording.withdrawn(incident):
                if told in ("formed", "settled"):
                    self.say("%s withdrawn: its reports joined other incidents" % incident_id)
                self._told[incident_id] = "withdrawn"
            elif incident.get("provisional") is False and told != "settled":
                self.say("%s: %s" % ("settled" if told else "formed and settled", describe_incident(incident, self.sides)))
                self._told[incident_id] = "settled"
            elif told is None and now - first_seen >= FORM_DELAY_S:
                self.say("formed: %s" % describe_incident(incident, self.sides))
                self._told[incident_id] = "formed"

    def summary(self, scenario_s: float) -> str:
        """What the commission saw, in an operator's words."""
        w = self.watch
        kept = [i for i in w.incidents.values() if not wording.withdrawn(i)]
        kept.sort(key=lambda i: (i.get("time_utc_us") or 0, str(i.get("id"))))
        kinds = Counter(wording.fix_words({**i, "lat": None}) for i in kept)
        lines = ["", "What the commission saw in %.0f s:" % scenario_s,
                 "  %s reporting, %s verified, %d refused; %s reported by nodes"
                 % (wording.plural(len(w.nodes_up), "node"), wording.plural(sum(w.frames.values()), "frame"),
                    w.refused, wording.plural(w.detections, "detection")),
                 "  node health: %s" % ("; ".join("%s %s -> %s" % (a.get("node"), a.get("old"), a.get("new"))
                                                  for a in w.node_states) or "no changes")]
        lines.append("  %s (%s)%s" % (
            wording.plural(len(kept), "incident"), ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items())) or "none",
            "; %d more %s withdrawn as their reports joined these (their ids are not reused)"
            % (len(w.incidents) - len(kept), "was" if len(w.incidents) - len(kept) == 1 else "were")
            if len(w.incidents) > len(kept) else ""))
        lines += ["    " + line for line in wording.table(kept, self.sides)]
        still_open = sum(1 for i in kept if i.get("provisional") is not False)
        if still_open:
            lines.append("  %d of them still open when the run ended: an incident settles about %.0f s after"
                         " its first report, when no later report can still belong to it" % (still_open, SETTLE_S))
        return "\n".join(lines) + "\n"


def where_the_nodes_are(world) -> str:
    """'12 nodes in 2 segments': the segments that have nodes (what runs and what the desk draws),
    not every segment the line is cut into (the demo's line runs 1.2 km past its last node)."""
    watched = {n.segment for n in world.nodes}
    return "%d node%s in %d segment%s" % (len(world.nodes), "" if len(world.nodes) == 1 else "s",
                                          len(watched), "" if len(watched) == 1 else "s")


def describe_incident(i: dict, sides: tuple[str, str] = wording.DEFAULT_SIDES) -> str:
    return wording.describe(i, sides)


def run_demo(scenario_name: str = "demo", out: TextIO | None = None, keep: Path | None = None,
             drain_s: float = 5.0, stay: bool = False) -> dict:
    """Run the demo to its end; returns the score. Raises BrokerError without Mosquitto.
    `stay`: the broker and the aggregator (and so the desk) go on after the score until
    interrupted (SIGINT/SIGTERM)."""
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
        desk = Commission.prepare(folder / "commission", world, address, desk_listen="127.0.0.1:%d" % free_port())
        fusion = cfg.load(desk.config_path).fusion
        sides = tuple(fusion.sides)
        out.write("LineWatch demo: scenario %r, %s, %.0f s in real time\n"
                  "  world      realism profile %s (docs/scenarios.md)\n"
                  "  broker     Mosquitto on %s:%d (private)\n"
                  "  commission linewatch aggregator, registry and master key in %s\n"
                  "  the line   %s (names from [fusion] sides)\n"
                  "How each incident was placed:\n%s\n\n"
                  % (scenario.name, where_the_nodes_are(world), scenario.duration_s,
                     world.profile.name, broker.host, broker.port, desk.folder, wording.side_legend(fusion.line, sides),
                     wording.LEGEND))
        desk.start_aggregator()
        out.write("The desk (map, incidents, nodes; live): %s\n  open it now; it stays open while the demo "
                  "runs%s\n\n" % (desk.desk_url() or "not serving (see %s)" % (desk.folder / "aggregator.log"),
                                    "" if stay else " (add --stay to keep it open afterwards)"))
        options = RunOptions(address, folder / "nodes", desk.master_key, virtual=False,
                             drain_s=drain_s, progress=False)
        viewer = Viewer(address, desk.master_key, out, started, sides)
        summary = vclock.run(lambda: _play(Runner(scenario, world, options), viewer))
        code = desk.stop_aggregator()
        out.write(viewer.summary(scenario.duration_s))
        out.write("\n%s\naggregator stopped (exit %s)\n\nScore against the scenario's ground truth:\n"
                  % (summary.text(), code))
        result = score(truth, desk.incidents())
        out.write(format_text(result))
        if stay:
            _stay(desk, out)
        else:
            out.write("\nThe desk closed with the demo. To keep it open afterwards: linewatch demo --stay\n")
        return result
    finally:
        if desk is not None:
            desk.stop_aggregator()
        broker.stop()
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def _stay(desk: Commission, out: TextIO) -> None:
    """The aggregator again on the demo's database, its desk at the same address, until
    interrupted (KeyboardInterrupt: linewatch's SIGINT/SIGTERM handling)."""
    desk.start_aggregator()
    out.write("\nThe desk stays open at %s with the demo's database (the nodes are gone; operators: "
              "linewatch desk --config %s add-operator NAME). Ctrl-C to stop.\n"
              % (desk.desk_url(), desk.config_path))
    out.flush()
    try:
        while desk.process is not None and desk.process.poll() is None:
            time.sleep(0.5)
    finally:
        desk.stop_aggregator()


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
