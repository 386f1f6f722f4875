"""Plays a scenario through virtual nodes running the firmware, in one asyncio loop.

    world + synthesizer (what each node hears)  ->  feeders push audio windows on time
    faults (failures, reboots, outages, tamper)  ->  nodes powered off/on, links cut
    virtual nodes (firmware + sim board)          ->  real frames to a real broker

Time is the loop's (vclock): real time for the demo and live tests, virtual time (as fast
as possible) for long scenarios. The ground truth is built from the same world before the
run starts, so it depends on the scenario and seed only (and on the start time of a
real-time run, which is "now").
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from linewatch.emulator import feedplan, vclock
from linewatch.emulator.progress import Progress, hms
from linewatch.emulator.scenario import Scenario
from linewatch.emulator.sources import NodeFault, Outage, Tamper
from linewatch.emulator.synth import MAX_CHUNK_S, SAMPLE_RATE, Synthesizer
from linewatch.emulator.truth import build_truth
from linewatch.emulator.virtual_node import AUDIO_BLOCK, VirtualNode
from linewatch.emulator.world import World

log = logging.getLogger("linewatch.emulator.runner")

# Audio is handed over one firmware block at a time, when its last sample is heard, as the
# I2S DMA does: the firmware's sampling task reads without yielding while data is ready, so
# larger pushes overrun its 4-block ring and lose audio.
PUSH_SAMPLES = AUDIO_BLOCK


@dataclass
class RunOptions:
    broker: tuple[str, int]
    workdir: Path                            # the nodes' flash folders go under here
    master_key: bytes
    virtual: bool = False
    grace_s: float = vclock.DEFAULT_GRACE_S
    drain_s: float = 20.0                    # after the end: wait (run time) for queues to empty
    progress: bool | None = None             # None: when stderr is a TTY
    on_log: Callable[[int, str], None] | None = None
    false_alarms_per_hour: dict | None = None   # None: measured (false_alarms.py, feedplan.py)
    idle_s: float = 15.0                     # virtual time only (see FirmwareNode)
    workers: int = 1                         # processes, nodes split by segment (see shards.py)
    sync_s: float = 5.0                      # virtual time only: workers meet this often


@dataclass
class RunSummary:
    scenario: str
    nodes: int
    duration_s: float
    virtual: bool
    wall_s: float = 0.0
    frames: int = 0                   # frames the nodes created (births, heartbeats, events ...), every boot
    detections: int = 0
    windows: int = 0                  # audio windows fed
    audio_s: float = 0.0              # seconds of audio fed in all
    left_in_queues: int = 0           # frames not acked by the commission when the run ended
    jumps: int = 0
    waited_s: float = 0.0
    workers: int = 1

    def text(self) -> str:
        return ("%s: %d nodes, %s of scenario in %s (%s time); %d frames, %d detections, "
                "%d audio windows (%.0f s of audio); %d frames unacked at the end"
                % (self.scenario, self.nodes, hms(self.duration_s), hms(self.wall_s),
                   "virtual" if self.virtual else "real", self.frames, self.detections,
                   self.windows, self.audio_s, self.left_in_queues))


def prepare(scenario: Scenario, real_time: bool) -> tuple[World, dict]:
    """The world and its truth. A real-time run starts now (the commission's clock is the
    wall clock); a virtual run starts at the scenario's own start."""
    start = time.time_ns() // 1000 if real_time else None
    world = scenario.build_world(start)
    return world, build_truth(scenario, world)


class Runner:
    """Runs the world's nodes, or only `node_ids` (one worker's share, see shards.py). `meet`
    is called at every `sync_s` of virtual time (a barrier with the other workers); `on_step`
    gets the seconds of scenario done, for a progress bar drawn elsewhere."""

    def __init__(self, scenario: Scenario, world: World, options: RunOptions,
                 node_ids: set[int] | None = None, synth: Synthesizer | None = None,
                 meet: Callable[[], None] | None = None,
                 on_step: Callable[[float], None] | None = None) -> None:
        self.scenario = scenario
        self.world = world
        self.options = options
        self.synth = synth or Synthesizer(world, scenario.sources, scenario.faults, scenario.seed)
        self.node_ids = node_ids
        self.meet = meet
        self.on_step = on_step
        self.nodes: dict[int, VirtualNode] = {}
        mine = [n for n in world.nodes if node_ids is None or n.id in node_ids]
        self._world_nodes = mine
        self.summary = RunSummary(scenario.name, len(mine), scenario.duration_s, options.virtual)
        self._tasks: list[asyncio.Task] = []

    # ---- the run ----------------------------------------------------------------------

    async def run(self) -> RunSummary:
        started = time.monotonic()
        clock = vclock.RunClock(self.world.start_utc_us)
        self.clock = clock
        o = self.options
        survey_m = self.scenario.layout.position_error_m
        if survey_m is None:
            survey_m = self.world.profile.board.survey_error_m
        for wn in self._world_nodes:
            self.nodes[wn.id] = VirtualNode(wn, o.master_key, o.broker, o.workdir / ("%04x" % wn.id),
                                            clock, self.scenario.heartbeat_s, o.on_log, o.idle_s,
                                            self.world.environment.temperature_c, self.world.seed,
                                            self.scenario.node_power, self.world.air, survey_m)
            self.nodes[wn.id].accelerometer.ground = self.synth.ground
        try:
            for node in self.nodes.values():
                node.start()
            feeders = self._spawn(self._feed(node_id, spans) for node_id, spans in self._feed_plan().items())
            # clock faults are in the world's clocks already (scenario.build_world)
            self._spawn(self._fault(f) for f in self.scenario.faults
                        if isinstance(f, Outage) or (isinstance(f, NodeFault) and f.kind != "silent"))
            end_us = self.world.start_utc_us + int(self.scenario.duration_s * 1e6)
            await self._until(end_us)
            await self._heard(feeders)
            await self._drain()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.gather(*(n.stop(power_cut=False) for n in self.nodes.values()),
                                 return_exceptions=True)
            # Counted once the nodes are stopped: in virtual time the clock may jump to a
            # node's next heartbeat while the others are being stopped.
            self._count()
            loop = asyncio.get_running_loop()
            self.summary.jumps = getattr(loop, "jumps", 0)
            self.summary.waited_s = getattr(loop, "waited_s", 0.0)
            self.summary.wall_s = time.monotonic() - started
        return self.summary

    def _spawn(self, coros) -> list[asyncio.Task]:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(c) for c in coros]
        self._tasks += tasks
        return tasks

    async def _heard(self, feeders: list[asyncio.Task]) -> None:
        """At the scenario's end: every feeder has handed over its last block (none ends
        after the end, feedplan.samples) and every running node's detector has taken all it
        was given, before the drain, so what the nodes hear does not depend on how long the
        drain takes. No virtual time passes here (asyncio.sleep(0) sets no timer)."""
        await asyncio.gather(*feeders)
        for _ in range(1000):          # a few passes do; a node whose sampling task died never would
            if not any(n.running and n.hearing for n in self.nodes.values()):
                return
            await asyncio.sleep(0)
        log.warning("run end: nodes %s did not take all their audio",
                    ", ".join("0x%04x" % n.id for n in self.nodes.values() if n.running and n.hearing))

    async def _until(self, end_us: int) -> None:
        """Sleep to the scenario's end, drawing the progress bar on the way, and meeting the
        other workers (if any) at every sync_s of virtual time."""
        total = self.scenario.duration_s
        bar = Progress(total, "emulate %s" % self.scenario.name,
                       enabled=False if self.on_step else self.options.progress,
                       describe=lambda done: "%s/%s" % (hms(done), hms(total)))
        start_us = self.world.start_utc_us
        seconds = max(1.0, total / 200)
        if self.meet is not None and self.options.virtual:
            seconds = self.options.sync_s
        step_us = int(seconds * 1e6)
        with bar:
            while self.clock.now_us() < end_us:
                # steps on a grid from the start, so every worker stops at the same instants
                step = (self.clock.now_us() - start_us) // step_us + 1
                await self.clock.sleep_until(min(end_us, start_us + step * step_us))
                if self.meet is not None and self.options.virtual:
                    self.meet()       # blocks the loop: virtual time stands still meanwhile
                done = (self.clock.now_us() - start_us) / 1e6
                bar.update(done)
                if self.on_step is not None:
                    self.on_step(done)

    async def _drain(self) -> None:
        """Give the nodes up to drain_s to deliver what is queued and be acked (the aggregator
        acks every 200 ms of its own time). The commission keeps real time, so while a node
        waits for its ack a virtual run's clock goes at the wall clock's pace (loop.pace):
        jumping, it would reach the nodes' next heartbeats (new frames to drain) and the end of
        the drain before a loaded aggregator's acks. Otherwise (nodes in their reconnect
        backoff, queues empty) it jumps as ever."""
        loop = asyncio.get_running_loop()
        paced = isinstance(loop, vclock.VirtualTimeLoop)
        if paced:
            loop.pace = lambda: any(n.awaiting_ack for n in self.nodes.values())
        try:
            deadline = self.clock.now_us() + int(self.options.drain_s * 1e6)
            while self.clock.now_us() < deadline:
                if all(n.queue_depth == 0 for n in self.nodes.values() if n.running):
                    return
                await asyncio.sleep(0.25)
        finally:
            if paced:
                loop.pace = None

    def _count(self) -> None:
        s = self.summary
        for n in self.nodes.values():
            s.frames += n.frames_made          # every boot's: a reboot's earlier frames too
            if n.node is not None:
                s.detections += n.node.detections
                s.left_in_queues += n.queue_depth

    # ---- audio ------------------------------------------------------------------------

    def _feed_plan(self) -> dict[int, list[tuple[float, float, list]]]:
        """Per node, merged (start_s, end_s, false alarms) stretches of audio to feed."""
        for s in self.scenario.sources:
            if isinstance(s, Tamper) and s.node_id in self.nodes:
                start_us = self.world.start_utc_us + int(s.time_s * 1e6)
                self.nodes[s.node_id].set_tamper(s.action, start_us, start_us + int(s.duration_s * 1e6))
        return feedplan.plan(self.scenario, self.world, self.synth, self.nodes.keys(),
                             self.options.false_alarms_per_hour)

    async def _feed(self, node_id: int, spans: list[tuple[float, float, list]]) -> None:
        node = self.nodes[node_id]
        start_us = self.world.start_utc_us
        # whole firmware blocks only: a board's microphone never hands over a partial one
        # (the impulse detector refuses it, and the node's detection task would end)
        chunk = int(MAX_CHUNK_S * SAMPLE_RATE) // AUDIO_BLOCK * AUDIO_BLOCK
        for start_s, end_s, alarms in spans:
            first, last = feedplan.samples(start_s, end_s, self.scenario.duration_s, AUDIO_BLOCK)
            for k in range(first, last, chunk):
                await self.clock.sleep_until(start_us + k * 1_000_000 // SAMPLE_RATE)
                window = self.synth.window(node_id, k, min(chunk, last - k))
                samples = window.samples
                if alarms:
                    samples = feedplan.with_stand_ins(samples, k, alarms,
                                                      self.world.node(node_id).noise_floor_db)
                samples = feedplan.silenced(samples, k, self.scenario.faults, node_id)
                self.summary.windows += 1
                self.summary.audio_s += len(samples) / SAMPLE_RATE
                for i in range(0, len(samples), PUSH_SAMPLES):
                    piece = samples[i:i + PUSH_SAMPLES]
                    end_sample = k + i + len(piece)
                    await self.clock.sleep_until(start_us + end_sample * 1_000_000 // SAMPLE_RATE)
                    node.push(_array(piece), window.node_start_us + i * 1_000_000 // SAMPLE_RATE,
                              window.true_start_us + i * 1_000_000 // SAMPLE_RATE)

    # ---- faults -----------------------------------------------------------------------

    async def _fault(self, fault) -> None:
        start_us = self.world.start_utc_us
        await self.clock.sleep_until(start_us + int(fault.time_s * 1e6))
        if isinstance(fault, NodeFault):
            node = self.nodes.get(fault.node_id)
            if node is None:
                return
            log.info("node 0x%04x: %s", node.id, fault.kind)
            await node.stop(power_cut=True)
            if fault.duration_s is None:
                return
            await self.clock.sleep_until(start_us + int((fault.time_s + fault.duration_s) * 1e6))
            node.start()
        elif isinstance(fault, Outage):
            # A broker outage is emulated as every node losing its link (the broker itself may
            # be shared): the nodes queue, reconnect with backoff and resend, as in the field.
            affected = [n for n in self.nodes.values() if fault.affects(n.id)]
            log.info("%s outage for %.0f s (%d nodes)", fault.kind, fault.duration_s, len(affected))
            for node in affected:
                node.set_link(False)
            await self.clock.sleep_until(start_us + int(fault.end_s * 1e6))
            for node in affected:
                node.set_link(True)


def _array(samples: np.ndarray):
    from array import array
    return array("h", samples.astype(np.int16).tobytes())


def emulate(scenario: Scenario, world: World, options: RunOptions) -> RunSummary:
    """Run a scenario to its end (plus the drain) in a loop of its own, or in
    `options.workers` processes (shards.py)."""
    if options.workers > 1:
        from linewatch.emulator.shards import run_sharded
        return run_sharded(scenario, world, options)
    return vclock.run(lambda: Runner(scenario, world, options).run(), virtual=options.virtual,
                      grace_s=options.grace_s)
