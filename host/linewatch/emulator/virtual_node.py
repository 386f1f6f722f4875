"""A virtual node: the firmware's own node app (lwnode.node.Node) on the emulator's board.

The board (a subclass of lwnode.hal.sim.Board) gets from the world what a real board gets
from its hardware: audio windows, each block stamped by the node's own clock when its
sampling task reads it (exactly at its last sample under the `ideal` profile; late by the
I2S driver's and the loop's delays under `field`, boards.StampTiming), the accelerometer
(moved during tamper actions), the battery, its thermometer (boards.Thermometer: the air,
or a board sensor warmed by its box and the sun), the clock source and the error the board
states for it (nodeclock.NodeClock.reported, with the time of its last sync so the firmware
adds its drift allowance), and TCP connections to the real broker through the node's radio
link (latency and losses as TCP shows them, see radio.py; cut during outages and failures,
so the broker sends the node's will). Everything above the board is the firmware,
unchanged, except two sleeps in virtual time (see `FirmwareNode`).
"""
from __future__ import annotations

import asyncio
import logging
import shutil
from collections import deque
from pathlib import Path
from typing import Any, Callable

from lwnode import bootcount, config as node_config
from lwnode.boot import self_test
from lwnode.hal import sim
from lwnode.node import Node
from lwproto.const import CLOCK_ERROR_MAX_US

from linewatch import keys
from linewatch.emulator import vclock
from linewatch.emulator.air import Air
from linewatch.emulator.answers import Debts, open_counted
from linewatch.emulator.boardview import WorldBoard
from linewatch.emulator.ground import Accelerometer
from linewatch.emulator.radio import LinkWriter, Radio, open_link
from linewatch.emulator.synth import SAMPLE_RATE
from linewatch.emulator.world import Node as WorldNode

log = logging.getLogger("linewatch.emulator.node")

AUDIO_BLOCK = 512


def node_config_dict(node: WorldNode, master_key: bytes, broker: tuple[str, int], storage: str,
                     heartbeat_s: float, power: dict | None = None,
                     position_error_m: float = 5.0) -> dict[str, Any]:
    """The config.json `linewatch provision` would write for this node (sim board)."""
    return {
        "node": node.id, "segment": node.segment, "board": "sim",
        "key": keys.derive(master_key, node.id).hex(),
        "position": {"lat": node.reported_lat, "lon": node.reported_lon, "alt_m": 0,
                     "error_m": max(1, int(round(position_error_m)))},
        "broker": {"host": broker[0], "port": broker[1], "keepalive_s": 60},
        "heartbeat_s": max(1, int(round(heartbeat_s))),
        "audio": {"rate_hz": SAMPLE_RATE, "block": AUDIO_BLOCK},
        "queue": {"records": 256},
        "storage": storage,
        "power": dict(power or {}),
    }


class _Writer:
    """A StreamWriter that tells a virtual-time loop when the node writes (see vclock), and
    what it asked the broker (answers.py)."""

    def __init__(self, writer: asyncio.StreamWriter, debts: Debts) -> None:
        self._writer = writer
        self._debts = debts

    def write(self, data: bytes) -> None:
        vclock.note_io()
        if not self._writer.transport.is_closing():
            self._debts.sent(data)
        self._writer.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


class VirtualBoard(WorldBoard, sim.Board):
    def __init__(self, cfg, world_node: WorldNode, clock: vclock.RunClock, storage: str,
                 broker: tuple[str, int], on_reset: Callable[[], None],
                 on_log: Callable[[int, str], None] | None = None,
                 radio: Radio | None = None, on_sleep: Callable[[int], None] | None = None,
                 air: Air | None = None) -> None:
        source = world_node.clock.source_code
        error = min(CLOCK_ERROR_MAX_US, int(world_node.clock.error_estimate_us))
        super().__init__(cfg, storage=storage, clock_quality=(source, error))
        self._init_world(world_node, air)
        self.run_clock = clock
        self.broker = broker
        self._on_reset = on_reset
        self._on_sleep = on_sleep
        self._on_log = on_log
        self._chunks: asyncio.Queue = asyncio.Queue()
        self._current: tuple[Any, int, int | None] | None = None
        self._offset = 0
        self._stamp: int | None = None
        self._writers: list = []                 # StreamWriter or LinkWriter, one per connection
        self.radio = radio                        # None or ideal: the socket itself
        self.tamper: tuple[str, int, int] | None = None     # (action, true start us, true end us)
        self.lines: deque = deque(maxlen=50)                  # console tail, not every line

    # ---- fed by the runner ------------------------------------------------------------

    def push(self, samples, node_start_us: int, true_start_us: int | None = None) -> None:
        """Audio (array('h')) whose first sample the node's clock dates at node_start_us (and
        is heard at true_start_us: a clock whose error changes within a window, e.g. with
        each PPS edge, stamps each block by its own time)."""
        self._chunks.put_nowait((samples, node_start_us, true_start_us))

    def cut_link(self) -> None:
        """Drop every connection at once, as a radio or broker outage does (no DISCONNECT:
        the broker publishes the node's will)."""
        for writer in self._writers:
            if isinstance(writer, LinkWriter):
                writer.cut()              # what was in the air is lost with the link
            writer.transport.abort()
        self._writers.clear()

    # ---- board interface --------------------------------------------------------------

    async def mic_read(self, buf):
        if self._current is None:
            self._current = await self._chunks.get()
            self._offset = 0
        samples, start_us, true_start_us = self._current
        n = min(len(buf), len(samples) - self._offset)
        buf[:n] = samples[self._offset:self._offset + n]
        self._offset += n
        # The next clock reading is the node's stamp of this block (node.py reads it right
        # after mic_read returns): the node time of the sample after the block's last one,
        # plus how late the board's sampling task reads it (boards.StampTiming).
        elapsed_us = self._offset * 1_000_000 // SAMPLE_RATE
        self._stamp = self.block_stamp(start_us + elapsed_us,
                                       None if true_start_us is None else true_start_us + elapsed_us)
        if self._offset >= len(samples):
            self._current = None
        return n

    def time_us(self) -> int:
        if self._stamp is not None:
            stamp, self._stamp = self._stamp, None
            return stamp
        return self.world_node.clock.node_time_us(self.run_clock.now_us())

    def ticks_us(self) -> int:
        return self.run_clock.now_us()

    def _true_now_us(self) -> int:
        return self.run_clock.now_us()

    def _elapsed_s(self) -> float:
        return self.run_clock.elapsed_s()

    def battery_mv(self) -> int:
        return self.world_node.battery.millivolts_at(self.run_clock.elapsed_s())

    def position(self):
        return None

    async def open_connection(self, host, port):
        if not self.link_up:
            raise OSError("radio link down")
        self._writers = [w for w in self._writers if not w.transport.is_closing()]
        radio = self.radio
        if radio is None or radio.ideal:
            reader, writer, debts = await open_counted(host, port)
            self._writers.append(writer)
            return reader, _Writer(writer, debts)
        link_reader, link_writer = await open_link(radio, host, port)
        if not self.link_up:                      # went down during the handshake
            link_writer.break_link()
            raise OSError("radio link down")
        self._writers.append(link_writer)
        return link_reader, link_writer

    def reset(self) -> None:
        self.resets += 1
        self._on_reset()

    def deep_sleep(self, ms: int) -> None:
        """The node powers down for ms (its RTC wakes it as a new boot): the runner's node
        stops it and starts it again then. Returns at once; the node's tasks end meanwhile."""
        self.sleeps.append(ms)
        if self._on_sleep is not None:
            self._on_sleep(ms)

    def log(self, message: str) -> None:
        self.lines.append(message)
        if self._on_log is not None:
            self._on_log(self.world_node.id, message)


async def cancel_all(tasks) -> None:
    """Cancel until done: on CPython 3.11, `wait_for` swallows a cancel that meets its inner
    future finishing (a PUBACK, or the link dropping) in the same loop pass."""
    pending = [t for t in tasks if not t.done()]
    while pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.05)
        pending = [t for t in pending if not t.done()]
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.debug("%s ended with %r", task.get_name(), task.exception())


class FirmwareNode(Node):
    """The firmware's Node, with two polls changed in virtual time only (nothing else is):
    `sleep_ms` polls every 250 ms to follow a board clock running ahead of asyncio's; here
    asyncio's clock *is* the board's, so one sleep is exact. `_idle` re-checks the link every
    second; here every `idle_s`, so a dropped link may be noticed up to idle_s later (virtual).
    Both polls would otherwise be most of the loop's work on a day of 1,200 nodes."""

    virtual = False
    idle_s = 1.0

    async def run(self):
        # Node.run as in the firmware, except that a cancelled run (a power cut here) waits
        # until its tasks are gone: the firmware only cancels them (a board's power-off ends
        # everything), and a reborn node must not meet its ghost on the broker. On 3.11 a
        # wait_for can swallow one cancel, so cancel_all repeats until they are done.
        tasks = [asyncio.create_task(self._sampling()), asyncio.create_task(self._uplink()),
                 asyncio.create_task(self._health())]
        try:
            await self._detection()
            if not self.config.feed.get("exit_at_end"):
                await tasks[1]
        finally:
            await cancel_all(tasks)

    async def sleep_ms(self, ms):
        if not self.virtual:
            return await super().sleep_ms(ms)
        self._tick()
        await asyncio.sleep(ms / 1000)
        self._tick()

    async def _idle(self):
        if not self.virtual:
            return await super()._idle()
        # asyncio.timeout, not wait_for: on 3.11 wait_for wraps the wait in a new Task,
        # and this runs once per frame sent
        self._wake.clear()
        try:
            async with asyncio.timeout(self.idle_s):
                await self._wake.wait()
        except TimeoutError:
            pass


class VirtualNode:
    """One node's life in a run: boots (boot counter in its flash folder), runs, fails, reboots."""

    def __init__(self, world_node: WorldNode, master_key: bytes, broker: tuple[str, int],
                 folder: Path, clock: vclock.RunClock, heartbeat_s: float,
                 on_log: Callable[[int, str], None] | None = None, idle_s: float = 15.0,
                 temperature_c: float = 15.0, seed: int = 0, power: dict | None = None,
                 air: Air | None = None, position_error_m: float = 5.0) -> None:
        self.world_node = world_node
        self.radio = Radio(world_node.radio, seed, world_node.id)
        self.temperature_c = temperature_c
        self.air = air
        self.folder = folder
        self.clock = clock
        self.broker = broker
        self.on_log = on_log
        self.idle_s = idle_s
        folder.mkdir(parents=True, exist_ok=True)
        self.config = node_config.parse(node_config_dict(world_node, master_key, broker, str(folder),
                                                         heartbeat_s, power, position_error_m))
        self.board: VirtualBoard | None = None
        self.node: FirmwareNode | None = None
        self.task: asyncio.Task | None = None
        self.boots = 0
        self.sleeps = 0
        # what the node made, over every boot (a reboot starts seq afresh under a new boot):
        # boot -> highest seq; and the frames it removed itself from a full queue (coalesced
        # heartbeats, dropped events, anything else), counted by its queue per boot
        self.made: dict[int, int] = {}
        self.dropped = 0
        self._settled: FirmwareNode | None = None
        self.tamper: tuple[str, int, int] | None = None
        # its accelerometer (the runner gives it the world's ground vibration)
        self.accelerometer = Accelerometer(world_node, seed, clock.start_utc_us)
        self._asleep: asyncio.Task | None = None          # the deep sleep in progress

    @property
    def id(self) -> int:
        return self.world_node.id

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self) -> None:
        """Power on: bump the boot counter, self-test, start the firmware's tasks."""
        boot, note = bootcount.bump(str(self.folder / "bootcount"))
        self.board = VirtualBoard(self.config, self.world_node, self.clock, str(self.folder),
                                  self.broker, self._reset, self.on_log, self.radio, self._sleep,
                                  self.air)
        self.board.tamper = self.tamper
        self.board.accelerometer = self.accelerometer
        self.board.temperature = self.temperature_c     # what its thermometer reads without air
        node = FirmwareNode(self.config, self.board, boot)
        node.virtual = self.clock.virtual
        node.idle_s = self.idle_s
        ok, line = self_test(node)
        self.board.log(line)
        if not ok:
            raise RuntimeError(line)
        self.node = node
        self.boots += 1
        self.task = asyncio.get_running_loop().create_task(node.run(), name="node 0x%04x" % self.id)

    async def stop(self, power_cut: bool = True) -> None:
        """Power off. A power cut drops the TCP link without DISCONNECT (the broker then
        publishes the node's will); otherwise the firmware disconnects cleanly. A node asleep
        stays off (its wake is cancelled)."""
        asleep, self._asleep = self._asleep, None
        if asleep is not None and asleep is not asyncio.current_task():
            asleep.cancel()
        if self.board is not None and power_cut:
            self.board.cut_link()
        if self.task is not None:
            await cancel_all([self.task])
        self.task = None
        self._settle()
        if self.node is not None and self.node.queue is not None:
            close = getattr(self.node.queue, "close", None)
            if close:
                close()

    def _settle(self) -> None:
        """Count the stopped boot's frames once (stop may be called again on a stopped node)."""
        node = self.node
        if node is None or node is self._settled:
            return
        self._settled = node
        self.made[node.boot] = max(self.made.get(node.boot, 0), node.seq)
        q = node.queue
        if q is not None:
            self.dropped += q.coalesced_heartbeats + q.dropped_events + q.dropped_other

    @property
    def frames_made(self) -> int:
        """Every frame of every boot, the running one included."""
        made = dict(self.made)
        if self.node is not None and self.node is not self._settled:
            made[self.node.boot] = max(made.get(self.node.boot, 0), self.node.seq)
        return sum(made.values())

    def _reset(self) -> None:
        asyncio.get_running_loop().create_task(self._reboot())

    def _sleep(self, ms: int) -> None:
        self._asleep = asyncio.get_running_loop().create_task(self._sleep_cycle(ms))

    async def _sleep_cycle(self, ms: int) -> None:
        me = self._asleep
        await self.stop(power_cut=False)          # the firmware disconnected cleanly already
        self._asleep = me
        self.sleeps += 1
        log.info("node 0x%04x: deep sleep %.0f s", self.id, ms / 1000)
        await self.clock.sleep_until(self.clock.now_us() + ms * 1000)
        if self._asleep is me:
            self._asleep = None
            self.start()

    async def _reboot(self) -> None:
        await self.stop(power_cut=True)
        self.start()

    def set_tamper(self, action: str, start_us: int, end_us: int) -> None:
        self.tamper = (action, start_us, end_us)
        if self.board is not None:
            self.board.tamper = self.tamper

    def push(self, samples, node_start_us: int, true_start_us: int | None = None) -> None:
        if self.board is not None and self.running:
            self.board.push(samples, node_start_us, true_start_us)

    def set_link(self, up: bool) -> None:
        if self.board is not None:
            self.board.link_up = up
            if not up:
                self.board.cut_link()

    @property
    def hearing(self) -> bool:
        """Audio handed to the board that the node's detector has not taken yet."""
        board, node = self.board, self.node
        if board is None or node is None:
            return False
        return not board._chunks.empty() or board._current is not None or node._tail != node._head

    @property
    def awaiting_ack(self) -> bool:
        """Connected with frames in its queue: it is publishing them (the broker's answers
        are counted apart, answers.py) or waiting for the commission's ack."""
        node = self.node
        if not self.running or node is None or node._client is None:
            return False
        return bool(node._client.connected and node.queue.depth)

    @property
    def queue_depth(self) -> int:
        return self.node.queue.depth if self.node is not None else 0

    def remove_flash(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
