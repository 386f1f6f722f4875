"""The direct tier: days and storms in minutes. The same world, synthesizer and scenario as the
full chain (runner.py), the firmware's own node object for detection and frames, and the
commission's own service code in-process, without a broker, sockets or asyncio per node.

    world + synthesizer -> audio blocks -> lwnode.node.Node's detector chain and _report()
    heartbeats / birth  -> lwnode.node.Node.heartbeat() / birth()  (its frame code, its key)
    frames, in the order made       -> linewatch.commission.service.Aggregator.ingest_round
                                      (verify, replay rule, evidence chain, health, fusion)

One discrete-event loop over a heap of (time, node, what): no task, no timer, no socket per
node. What it leaves out, on purpose (the full tier keeps them, and CI keeps running it):
MQTT and the broker, the node's radio link (latency, losses), its asyncio tasks and sampling
ring (no overruns), its durable flash queue, acks, resend requests and deaths (every frame
arrives once, at once), link and broker outages (they only delay frames), commands. Failures,
reboots and tamper actions are played. The commission's clock is the run's: a frame is received when it
was made. `host/tests/test_e2e.py::test_direct_tier_agrees_with_the_full_chain` holds both
tiers to the same sources heard and located on the demo scenario.
"""
from __future__ import annotations

import heapq
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lwnode import config as node_config
from lwnode.hal import sim
from lwnode.node import Node
from lwproto import topic as topics
from lwproto.const import BIRTH as BIRTH_FRAME
from lwproto.const import EVENT as EVENT_FRAME
from lwproto.const import CLOCK_ERROR_MAX_US

from linewatch.emulator.boardview import WorldBoard
from linewatch.emulator import feedplan
from linewatch.emulator.dsp_numpy import numpy_loops, prefetch
from linewatch.emulator.runner import _array
from linewatch.emulator.scenario import Scenario
from linewatch.emulator.synth import MAX_CHUNK_S, SAMPLE_RATE, Synthesizer
from linewatch.emulator.sources import NodeFault, Tamper
from linewatch.emulator.ground import Accelerometer
from linewatch.emulator.virtual_node import AUDIO_BLOCK, node_config_dict
from linewatch.emulator.world import Node as WorldNode
from linewatch.emulator.world import World

log = logging.getLogger("linewatch.emulator.direct")

# What an event of the run is; at one instant, a node's power changes before what it hears.
UP, DOWN, BIRTH, HEARTBEAT, AUDIO = 0, 1, 2, 3, 4
ROUND_FRAMES = 2000        # frames handed to the commission per round at most
ROUND_S = 1.0              # ... and at least once per second of scenario
# Audio is fed a second at a time per node (CHUNK), so a node's frames are made up to a second
# ahead of the others'. The commission gets them in the order they were made, as the full
# chain's does (fusion's event clock and its silence test read arrival order): a round hands
# over only the frames made before every node's next event (nothing made later can come
# before them), sorted by when they were made.
CHUNK = SAMPLE_RATE // AUDIO_BLOCK * AUDIO_BLOCK


class SteppedClock:
    """World time of the run, set by the event loop (what vclock.RunClock gives the board)."""

    virtual = True

    def __init__(self, start_utc_us: int) -> None:
        self.start_utc_us = start_utc_us
        self.now = start_utc_us

    def now_us(self) -> int:
        return self.now

    def elapsed_s(self) -> float:
        return (self.now - self.start_utc_us) / 1e6


class _Board(WorldBoard, sim.Board):
    """The sim board with the world's node clock, battery and air (boardview.WorldBoard, as
    the full tier's board), and no audio queue or network: the run hands audio to the
    detector itself and takes frames from the queue."""

    def __init__(self, cfg, world_node: WorldNode, clock: SteppedClock, storage: str, temperature_c: float,
                 air=None) -> None:
        source = world_node.clock.source_code
        error = min(CLOCK_ERROR_MAX_US, int(world_node.clock.error_estimate_us))
        super().__init__(cfg, storage=storage, clock_quality=(source, error))
        self.world_node, self.run_clock, self.temperature = world_node, clock, temperature_c
        self._init_world(world_node, air)
        self.stamp: int | None = None
        self.tamper: tuple[str, int, int] | None = None

    def time_us(self) -> int:
        if self.stamp is not None:
            return self.stamp
        return self.world_node.clock.node_time_us(self.run_clock.now)

    def ticks_us(self) -> int:
        return self.run_clock.now

    def _true_now_us(self) -> int:
        return self.run_clock.now

    def _elapsed_s(self) -> float:
        return self.run_clock.elapsed_s()

    def battery_mv(self) -> int:
        return self.world_node.battery.millivolts_at(self.run_clock.elapsed_s())

    def position(self):
        return None

    def log(self, message: str) -> None:
        pass


class _Outbox:
    """The node's queue, as Node sees it: frames go straight to the run's outbox, each with
    the run's time it was made."""

    depth = 0                   # never full: nothing coalesced or dropped (firmware/store.py)
    coalesced_heartbeats = 0
    dropped_events = 0
    dropped_other = 0

    def __init__(self, node: WorldNode, sink: list, clock: SteppedClock) -> None:
        self.node, self.sink, self.clock = node, sink, clock

    def append(self, boot: int, seq: int, ftype: int, data: bytes) -> None:
        self.sink.append((self.clock.now, ftype, topics.uplink(self.node.segment, self.node.id, ftype), data))


@dataclass
class DirectSummary:
    scenario: str
    nodes: int
    duration_s: float
    wall_s: float = 0.0
    frames: int = 0
    detections: int = 0
    audio_s: float = 0.0
    commission_s: float = 0.0       # wall seconds inside the commission's code
    commission_cpu_s: float = 0.0   # and CPU seconds there
    audio_cpu_s: float = 0.0        # CPU seconds rendering audio and feeding the detectors

    def text(self) -> str:
        return ("%s (direct tier): %d nodes, %.0f s of scenario in %.1f s wall (%.0fx); %d frames "
                "(%.0f/s), %d detections, %.0f s of audio; commission %.1f s"
                % (self.scenario, self.nodes, self.duration_s, self.wall_s,
                   self.duration_s / max(self.wall_s, 1e-9), self.frames, self.frames / max(self.wall_s, 1e-9),
                   self.detections, self.audio_s, self.commission_s))


class DirectRun:
    def __init__(self, scenario: Scenario, world: World, master_key: bytes, aggregator: Any,
                 workdir: Path, false_alarms_per_hour: dict | None = None, numpy_dsp: bool = True) -> None:
        self.scenario, self.world, self.aggregator = scenario, world, aggregator
        self.numpy_dsp = numpy_dsp
        self.clock = SteppedClock(world.start_utc_us)
        self.synth = Synthesizer(world, scenario.sources, scenario.faults, scenario.seed)
        self.outbox: list[tuple[int, int, str, bytes]] = []   # (made at, type, topic, frame)
        self.commission_now = world.start_utc_us                # the commission's clock: the run's
        self.summary = DirectSummary(scenario.name, len(world.nodes), scenario.duration_s)
        self.rates = false_alarms_per_hour         # None: measured (feedplan.py)
        self.nodes: dict[int, Node] = {}
        self.index: dict[int, int] = {}
        self.down: set[int] = set()
        self.off = self._off_spans()
        self.master_key, self.workdir = master_key, workdir
        if aggregator.fusion is not None:
            aggregator.fusion.clock = lambda: self.commission_now
        self.accelerometers = {wn.id: Accelerometer(wn, scenario.seed, world.start_utc_us, self.synth.ground)
                               for wn in world.nodes}
        for wn in world.nodes:
            self._power_on(wn, 1)
        for t in scenario.sources:
            if isinstance(t, Tamper) and t.node_id in self.nodes:
                start = world.start_utc_us + int(t.time_s * 1e6)
                self.nodes[t.node_id].board.tamper = (t.action, start, start + int(t.duration_s * 1e6))

    def _power_on(self, wn: WorldNode, boot: int) -> Node:
        """A node boots: the firmware's Node on a fresh board (its boot number from the run)."""
        folder = self.workdir / ("%04x" % wn.id)
        folder.mkdir(parents=True, exist_ok=True)
        config = node_config.parse(node_config_dict(wn, self.master_key, ("127.0.0.1", 1), str(folder),
                                                    self.scenario.heartbeat_s))
        board = _Board(config, wn, self.clock, str(folder), self.world.environment.temperature_c,
                       self.world.air)
        board.accelerometer = self.accelerometers[wn.id]
        old = self.nodes.get(wn.id)
        if old is not None:
            board.tamper = old.board.tamper
        node = self.nodes[wn.id] = Node(config, board, boot, queue=_Outbox(wn, self.outbox, self.clock))
        self.index[wn.id] = 0
        return node

    # -- the plan --

    def _events(self) -> list[tuple[int, int, int, Any]]:
        start, end = self.world.start_utc_us, self.world.start_utc_us + int(self.scenario.duration_s * 1e6)
        beat = int(self.scenario.heartbeat_s * 1e6)
        heap = []
        for i, wn in enumerate(self.world.nodes):
            offset = (i * 7919) % 1000 * 1000           # nodes do not boot in the same millisecond
            heap.append((start + offset, wn.id, BIRTH, None))
            heap.append((start + offset + beat, wn.id, HEARTBEAT, None))
        for node_id, spans in self._feed_plan().items():
            for start_s, end_s, alarms in spans:
                first, last = feedplan.samples(start_s, end_s, self.scenario.duration_s, AUDIO_BLOCK)
                if first < last:
                    heap.append((start + first * 1_000_000 // SAMPLE_RATE, node_id, AUDIO,
                                 [first, last, alarms, None, None, first]))
        for node_id, spans in self.off.items():
            for down, up in spans:
                heap.append((down, node_id, DOWN, None))
                if up is not None:
                    heap.append((up, node_id, UP, None))
        heapq.heapify(heap)
        self._end, self._beat = end, beat
        return heap

    def _off_spans(self) -> dict[int, list[tuple[int, int | None]]]:
        """Per node, the (down, up or None) run times it is powered off: failures and reboots
        (link outages only delay frames, which this tier does not model)."""
        start, off = self.world.start_utc_us, {}
        for f in self.scenario.faults:
            if isinstance(f, NodeFault) and f.kind != "silent" and any(n.id == f.node_id for n in self.world.nodes):
                up = None if f.duration_s is None else start + int((f.time_s + f.duration_s) * 1e6)
                off.setdefault(f.node_id, []).append((start + int(f.time_s * 1e6), up))
        return {node_id: sorted(spans, key=lambda s: s[0]) for node_id, spans in off.items()}

    def _off_at(self, node_id: int, t_us: int) -> tuple[int, int | None] | None:
        """The span during which the node is off at t_us, if any."""
        for down, up in self.off.get(node_id, ()):
            if down <= t_us and (up is None or t_us < up):
                return down, up
        return None

    def _feed_plan(self) -> dict[int, list]:
        """As the full tier's runner plans it."""
        return feedplan.plan(self.scenario, self.world, self.synth, None, self.rates)

    # -- the run --

    def run(self) -> DirectSummary:
        """The run, with the detectors' DSP loops as numpy twins (dsp_numpy: the same integers)
        unless numpy_dsp is False (the firmware's plain-Python loops, for comparison)."""
        if not self.numpy_dsp:
            return self._run()
        with numpy_loops():
            return self._run()

    def _run(self) -> DirectSummary:
        started = time.monotonic()
        heap = self._events()
        self._full_at = ROUND_FRAMES
        next_round = self.world.start_utc_us + int(ROUND_S * 1e6)
        while heap and heap[0][0] <= self._end:
            at, node_id, what, span = heapq.heappop(heap)
            if at >= next_round:
                self._deliver(at)
                next_round = at + int(ROUND_S * 1e6)
            self.clock.now = at
            node = self.nodes[node_id]
            if what == DOWN:
                self.down.add(node_id)
            elif what == UP:
                self.down.discard(node_id)
                node = self._power_on(self.world.node(node_id), node.boot + 1)
                node._enqueue(BIRTH_FRAME, node.birth())
                heapq.heappush(heap, (at + self._beat, node_id, HEARTBEAT, node.boot))
            elif what == AUDIO:             # a node powered off hears nothing (_listen)
                cpu = time.process_time()
                later = self._listen(node_id, node, span)
                self.summary.audio_cpu_s += time.process_time() - cpu
                if later is not None:        # the rest of a long stretch, in time order with the others
                    heapq.heappush(heap, (later[0], node_id, AUDIO, later[1]))
            elif node_id in self.down:      # powered off: says nothing
                if what == HEARTBEAT and span == node.boot:
                    heapq.heappush(heap, (at + self._beat, node_id, HEARTBEAT, node.boot))
            elif what == HEARTBEAT:
                if span in (None, node.boot):      # a rebooted node keeps its new boot's rhythm
                    node.heartbeat()
                    heapq.heappush(heap, (at + self._beat, node_id, HEARTBEAT, node.boot))
            elif what == BIRTH:
                node._enqueue(BIRTH_FRAME, node.birth())
            if len(self.outbox) >= self._full_at:
                self._deliver(heap[0][0] if heap else self._end)
        self.clock.now = self._end
        self._deliver(self._end, final=True)
        s = self.summary
        s.detections = sum(n.detections for n in self.nodes.values())
        s.wall_s = time.monotonic() - started
        return s

    def _listen(self, node_id: int, node: Node, span: list) -> tuple[int, list] | None:
        """A second (CHUNK) of a stretch of audio through the node's own detector, a firmware
        block at a time, each block stamped by the node's clock at its end (as the full tier's
        board does). Audio is synthesized in the full tier's windows (MAX_CHUNK_S, from the
        stretch's first sample), so both tiers feed identical samples. A node hears a block
        only if it is powered at the block's end (the full tier's feeder hands it over then):
        a power cut ends the second there, and the stretch goes on with the first block after
        the node is back. Returns (run time, rest of the stretch), or None."""
        k, last, alarms, window, samples, first = span   # k: the next sample; first: the stretch's
        start_us = self.world.start_utc_us
        size = int(MAX_CHUNK_S * SAMPLE_RATE) // AUDIO_BLOCK * AUDIO_BLOCK
        off = self._off_at(node_id, start_us + (k + AUDIO_BLOCK) * 1_000_000 // SAMPLE_RATE)
        if off is not None:
            return self._after(off, k, last, alarms, window, samples, first)
        if window is None or k >= window.first_sample + len(samples):
            base = first + (k - first) // size * size
            window = self.synth.window(node_id, base, min(size, last - base))
            samples = window.samples
            if alarms:
                samples = feedplan.with_stand_ins(samples, base, alarms, self.world.node(node_id).noise_floor_db)
            samples = feedplan.silenced(samples, base, self.scenario.faults, node_id)
            self.summary.audio_s += len(samples) / SAMPLE_RATE
        base = window.first_sample
        board = node.board
        stop = min(k + CHUNK, base + len(samples))
        if self.numpy_dsp:
            prefetch(node.detector, samples[k - base:stop - base].astype(np.int16), self.index[node_id], AUDIO_BLOCK)
        for at in range(k, stop, AUDIO_BLOCK):
            i = at - base
            piece = samples[i:i + AUDIO_BLOCK]
            n = len(piece)
            end_us = start_us + (at + n) * 1_000_000 // SAMPLE_RATE
            off = self._off_at(node_id, end_us)
            if off is not None:
                return self._after(off, at, last, alarms, window, samples, first)
            index = self.index[node_id]
            self.clock.now = end_us
            board.stamp = board.block_stamp(window.node_start_us + (i + n) * 1_000_000 // SAMPLE_RATE,
                                            window.true_start_us + (i + n) * 1_000_000 // SAMPLE_RATE)
            node.timeline.mark(index + n, board.stamp)
            found = node.detector.feed_audio(_array(piece), index, n)
            board.stamp = None
            self.index[node_id] = index + n
            for det in found:
                node._report(det)
            accel = board.accel_read()          # as the node's detection task: once per block
            for det in node.detector.feed_accel(accel[0], accel[1], accel[2], index + n):
                node._report(det)
        if stop >= last:
            return None
        return start_us + stop * 1_000_000 // SAMPLE_RATE, [stop, last, alarms, window, samples, first]

    def _after(self, off: tuple[int, int | None], k: int, last: int, alarms: list, window, samples,
               first: int) -> tuple[int, list] | None:
        """The rest of a stretch after a power cut: from the first block that ends once the
        node is on again (at that run time, after its UP event), or None."""
        up = off[1]
        if up is None:
            return None
        start_us = self.world.start_utc_us
        end_sample = -(-(up - start_us) * SAMPLE_RATE // 1_000_000)   # the first one stamped at or after up
        blocks = max(0, -(-(end_sample - AUDIO_BLOCK - k) // AUDIO_BLOCK))
        resume = k + blocks * AUDIO_BLOCK
        if resume >= last:
            return None
        return max(up, start_us + resume * 1_000_000 // SAMPLE_RATE), [resume, last, alarms, window, samples, first]

    def _deliver(self, horizon_us: int, final: bool = False) -> None:
        """Hand the commission the frames made before horizon_us (all of them when final), in
        the order they were made, as its service takes frames that trickle in: a round (check,
        commit, health, fusion) up to each event frame, then fusion's deferred searches and its
        timers. The commission's clock is the run's: when the frame was made (the radio's
        latency is left out)."""
        t, cpu = time.monotonic(), time.process_time()
        if final:
            ready, self.outbox[:] = self.outbox[:], []
        else:
            ready = [m for m in self.outbox if m[0] < horizon_us]
            self.outbox[:] = [m for m in self.outbox if m[0] >= horizon_us]
        self._full_at = len(self.outbox) + ROUND_FRAMES
        ready.sort(key=lambda m: m[0])          # stable: one node's frames keep their order
        self.summary.frames += len(ready)
        batch_max = self.aggregator.config.store.batch_max
        messages: list[tuple[str, bytes, int]] = []
        for made, ftype, topic, data in ready:
            messages.append((topic, data, made))
            if ftype == EVENT_FRAME or len(messages) >= batch_max:
                self._round(messages, made)
                messages = []
        self._round(messages, max(self.commission_now, horizon_us))
        self.summary.commission_s += time.monotonic() - t
        self.summary.commission_cpu_s += time.process_time() - cpu

    def _round(self, messages: list[tuple[str, bytes, int]], now_us: int) -> None:
        agg = self.aggregator
        self.commission_now = now_us = max(self.commission_now, now_us)
        if messages:
            agg.ingest_round(messages)
        if agg.fusion is not None:
            while agg.fusion.parked():
                agg._record_incidents(agg.fusion.settle(now_us))
            agg._record_incidents(agg.fusion.tick(now_us))


def in_process_commission(config_path: Path, master_key: bytes) -> Any:
    """The commission's service objects on the run's config, without a broker: what the
    direct tier hands frames to (acks are made and dropped: nothing listens for them)."""
    from linewatch.commission import config as cfg
    from linewatch.commission.alerts import Alerter
    from linewatch.commission.service import Aggregator
    from linewatch.commission.store import open_store
    config = cfg.load(config_path)
    store = open_store(config.store.target, config.store.synchronous)
    agg = Aggregator(config, master_key, store)
    agg._setup()
    agg.alerter = Alerter(config.alerts, lambda topic, data: None)
    return agg


def emulate_direct(scenario: Scenario, world: World, commission_folder: Path, master_key: bytes,
                   config_path: Path, workdir: Path, numpy_dsp: bool = True) -> DirectSummary:
    agg = in_process_commission(config_path, master_key)
    try:
        return DirectRun(scenario, world, master_key, agg, workdir, numpy_dsp=numpy_dsp).run()
    finally:
        agg.alerter.close()
        agg.store.close()


__all__ = ["DirectRun", "DirectSummary", "emulate_direct", "in_process_commission", "np"]
