# The node application: five asyncio tasks around one durable queue.
#
#   sampling   board.mic_read into a small ring of preallocated blocks
#   detection  the detector chain over each block (and one accelerometer sample per block)
#   reporting  every frame (birth, heartbeat, event) is encoded and appended to the durable
#              queue first; nothing is published that is not in flash
#   uplink     connect (will = death), birth, publish the queue in order at QoS 1, apply acks
#              and commands from the downlink, reconnect with jittered backoff
#   health     a heartbeat every heartbeat_s (longer on a low battery), then the power
#              decisions: radio power save, and deep sleep (after a sleep notice) on a low
#              battery or in a quiet window of the config
#
# Board-free: the board, its clock, storage and network come in through `board` (hal/).
import asyncio
import gc
from array import array

from lwproto import const as c
from lwproto import frame, topic
from lwproto.errors import ProtocolError
from lwproto.version import RELEASE

from . import command, mqtt
from .clock import Clock, SampleTimeline, ticks_diff

# module constants as _NAME = const(n): inlined, so no global and no interned name in RAM
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_RING = const(4)                 # audio blocks between sampling and detection
_QUIET_EVERY_S = const(1)        # gc.collect() and heap measurement once per second of audio
_LOG_EVERY_MS = const(10000)     # one log line per cause at most this often
# log_once causes: numbers, not words (a word each would be interned in RAM for good)
_OVERRUN = const(1)
_BLOCK = const(2)
_ENQUEUE = const(3)
_UPLINK = const(4)
_REFUSED = const(5)
_COMMAND = const(6)
# self._power slots (one list: a name each would be interned in RAM for good)
_RADIO_US = const(0)             # radio active since boot: connecting, publishing (heartbeat radio_ms)
_SLEPT_S = const(1)              # the deep sleep this boot woke from (lwnode.boot.self_test sets it)
_INTERVAL = const(2)             # heartbeat interval in force, s (follows the battery)
_MODE = const(3)                 # 0 normal, 1 saving (battery under power.save_below_mv)
_OOM = const(4)                  # uplink sessions in a row that ended in MemoryError
_DEGRADED = const(5)             # 2 once the node cannot publish: heartbeat `power` bit 1 (SPEC 3.2)
_UPDATE = const(6)               # a download's state (lwnode.update: node._power[6])
_TRIAL = const(7)                # a build on trial (lwnode.boot, lwnode.update: node._power[7])
_FAULT_AFTER = const(3)          # that many sessions out of memory in a row: the node is degraded
_CAP_UPDATE = const(64)          # lwproto.const CAP_UPDATE
_TRIAL_S = const(600)            # a build on trial has this long to get its birth acked
_STALL_S = const(120)            # a download with no new chunk for this long is given up
_SAVE_HYSTERESIS_MV = const(50)  # leave the saving mode 50 mV over where it began


# Every function and every name costs the node heap for good (a function object and raw-code
# record each, an interned name each: firmware/README.md "Memory"), so small steps are inlined
# where they have one caller, and a few methods reuse names the node interns anyway (birth,
# command).
#
# (boot, seq) pairs are compared as tuples: (boot, seq) > (last_boot, last_seq) is
# lwproto.replay.newer, whose import costs ~3 KB of heap for one line.


class Node:
    def __init__(self, config, board, boot, queue=None, detector=None):
        self.config = config
        self.board = board
        self.boot = boot
        block = config.audio["block"]
        self._blocks = [array("h", bytearray(2 * block)) for _ in range(_RING)]
        self.key = config.key
        self.seq = 0
        self.clock = Clock(board)
        rate = config.audio["rate_hz"]
        self.rate = rate
        self.timeline = SampleTimeline(rate)
        self.storage = board.storage_dir()
        base = self.storage.rstrip("/")
        if queue is None:
            from .store import FrameQueue
            queue = FrameQueue("%s/queue" % base, config.queue["records"])
        self.queue = queue
        if detector is None:
            from .detector import DetectorChain
            detector = DetectorChain(rate, block)
        self.detector = detector
        for cls, value in config.thresholds.items():
            detector.set_threshold(cls, value)
        for cls, ms in config.refractory_ms.items():
            detector.set_refractory(cls, ms)
        self._counts = [0] * _RING
        self._starts = [0] * _RING
        self._stamps = [0] * _RING
        self._head = 0            # blocks read by sampling
        self._tail = 0            # blocks taken by detection
        self._filled = asyncio.Event()
        self._wake = asyncio.Event()
        self.feed_ended = False
        self.samples = 0
        # counters reported in heartbeats
        self.detections = 0
        self.connections = 0
        self.refused_commands = 0
        self.overruns = 0
        self.store_errors = 0
        self.heap_peak = 0
        # uplink state
        self._client = None
        # what was published on this connection is marked in the queue's index (pending(n,
        # True)), not kept here: a set of (boot, seq) grew with every unacked frame
        self._unsent = True       # the queue may hold frames not handed out: look at it again
        self._birth = None        # (seq, frame) of the birth queued for the next connection
        self._last_ack = (0, 0)   # RAM only: see README, "Acks"
        self._command_path = "%s/%s" % (base, "command")
        self._last_command = (0, 0)
        try:
            with open(self._command_path) as f:
                boot, seq = f.read().split()
            self._last_command = (int(boot), int(seq))
        except (OSError, ValueError):
            pass
        self._logged = {}
        self._last_ticks = board.ticks_us()
        self._uptime_us = 0
        # _RADIO_US .. _DEGRADED, then _UPDATE (a download: lwnode.update's state) and _TRIAL
        # (a build on trial: boot sets 0, then the seq of its first birth)
        self._power = [0, 0, config.heartbeat_s, 0, 0, 0, None, None]

    async def run(self):
        """Run every task; returns only when the audio feed ends and the config says to stop
        there (the unix port's benchmarks), never on a board."""
        tasks = [asyncio.create_task(self._sampling()),
                 asyncio.create_task(self._uplink()),
                 asyncio.create_task(self._health())]
        try:
            await self._detection()
            self.log("audio feed ended after %d samples (%d s); heap peak %d bytes"
                     % (self.samples, self.samples // self.rate, self.heap_peak))
            if not self.config.feed.get("exit_at_end"):
                await tasks[1]
        finally:
            # also when run() itself is cancelled: a restarted node must not meet its old
            # uplink task still holding the broker session
            for task in tasks:
                task.cancel()

    # ---- sampling and detection -------------------------------------------------------

    async def _sampling(self):
        index = 0
        while True:
            if self._head - self._tail >= _RING:
                self._tail += 1           # detection fell behind: the oldest block is lost
                self.overruns += 1
                self.log_once(_OVERRUN, "sampling: detection fell behind, %d blocks lost"
                              % self.overruns)
            slot = self._head % _RING
            n = await self.board.mic_read(self._blocks[slot])
            if not n:
                self.feed_ended = True
                self._filled.set()
                return
            self._starts[slot] = index
            self._counts[slot] = n
            self._stamps[slot] = self.clock.now_us()
            index += n
            self._head += 1
            self._filled.set()

    async def _detection(self):
        quiet_at = self.rate * _QUIET_EVERY_S
        while True:
            while self._tail == self._head:
                if self.feed_ended:
                    return
                self._filled.clear()
                await self._filled.wait()
            slot = self._tail % _RING
            start = self._starts[slot]
            n = self._counts[slot]
            self.timeline.mark(start + n, self._stamps[slot])
            try:
                found = self.detector.feed_audio(self._blocks[slot], start, n)
            except ValueError as exc:
                # a short read from the microphone: drop the block, never the task (the
                # detectors treat the jump in sample index as lost samples)
                found = ()
                self.overruns += 1
                self.log_once(_BLOCK, "detection: block skipped: %s" % exc)
            self._tail += 1
            self.samples = start + n
            for det in found:
                self._report(det)
            accel = self.board.accel_read()
            if accel is not None:
                for det in self.detector.feed_accel(accel[0], accel[1], accel[2], start + n):
                    self._report(det)
            if self.samples >= quiet_at:
                quiet_at = self.samples + self.rate * _QUIET_EVERY_S
                self.measure_heap()

    def measure_heap(self):
        """Live heap at a quiet point (after a collection), and its peak so far."""
        if not hasattr(gc, "mem_alloc"):
            # CPython (the emulator): no figure to take, and a full collection of a large
            # heap there costs milliseconds per call
            return 0
        gc.collect()
        used = gc.mem_alloc()
        if used > self.heap_peak:
            self.heap_peak = used
        return used

    # ---- reporting: everything goes through the durable queue -------------------------

    def _enqueue(self, ftype, values, seq=0):
        if not seq:
            self.seq += 1
            seq = self.seq
        now = self.clock.now_us()
        source, error_us = self.clock.quality()
        try:
            data = frame.encode(self.key, ftype, self.config.node, self.boot, seq, now, source,
                                error_us, values)
            self.queue.append(self.boot, seq, ftype, data)
            self._unsent = True
        except Exception as exc:   # a full flash or a bad value must not stop the node
            self.store_errors += 1
            self.log_once(_ENQUEUE, "queue: %s seq %d not stored: %r"
                          % (c.TYPE_NAMES[ftype], seq, exc))
            return None
        self._wake.set()
        return data

    def _report(self, det):
        self.detections += 1
        now = self.clock.now_us()
        offset = self.timeline.utc_of(det.onset_index) - now
        offset = max(-2147483648, min(2147483647, offset))
        self._enqueue(c.EVENT, (det.cls, det.confidence, offset, det.peak_db, det.duration_ms,
                                det.frequency_hz, det.snr_db))
        self.log("event %s seq %d conf %.2f onset %d us ago snr %.1f dB"
                 % (c.CLASS_NAMES[det.cls], self.seq, det.confidence, -offset, det.snr_db))

    def birth(self):
        """The birth frame's values."""
        version = [int(p) for p in RELEASE.split(".")[:3]] + [0, 0, 0]
        pos = self.board.position()
        if pos is None:
            p = self.config.position
            pos = (p["lat"], p["lon"], p["alt_m"], p["error_m"])
        caps = self.board.capabilities | self.detector.capabilities | c.CAP_RESEND | _CAP_UPDATE
        return (version[0], version[1], version[2], c.BOARD_NAMES.index(self.board.name),
                self.config.segment,
                pos[0], pos[1], pos[2], pos[3], self.board.sensors, caps, self.rate)

    def uptime_s(self):
        self._tick()
        return self._uptime_us // 1000000

    def _tick(self):
        # Board ticks wrap (after ~9 minutes on an ESP32), so elapsed time is summed in steps
        # far shorter than that: every sleep_ms poll and every heartbeat takes one.
        now = self.board.ticks_us()
        step = ticks_diff(now, self._last_ticks)
        self._last_ticks = now
        if step > 0:
            self._uptime_us += step
        return step

    # ---- health -----------------------------------------------------------------------

    async def _health(self):
        p = self._power
        while True:
            await self.sleep_ms(p[_INTERVAL] * 1000)
            # The power decisions, then the heartbeat that tells them: on a low battery or in a
            # quiet window (config power) the node sleeps after it; else the heartbeat interval
            # and the radio's power save follow the battery.
            save_mv, sleep_mv, sleep_s, save_s, quiet = self.config.power
            mv = self.board.battery_mv()          # 0: no battery reading, no decision on it
            sleeps = self.board.capabilities & c.CAP_DEEP_SLEEP   # as the birth frame says
            mode = 1 if mv and mv < save_mv + (_SAVE_HYSTERESIS_MV if p[_MODE] else 0) else 0
            if mode != p[_MODE]:
                p[_MODE] = mode
                self.board.radio_power(mode)
                self.log("power: battery %d mV, %s mode" % (mv, ("normal", "saving")[mode]))
            interval = save_s if mode else self.config.heartbeat_s
            asleep = (sleep_s, 1) if sleeps and mv and mv < sleep_mv else None
            if sleeps and quiet and not asleep and self.clock.quality()[0]:   # needs UTC
                day = self.clock.now_us() // 1000000 % 86400
                for start, end in quiet:
                    if (day - start) % 86400 < (end - start) % 86400:
                        asleep = ((end - day) % 86400, 0)
                    else:   # the next heartbeat (and this check) falls on the window's start
                        interval = min(interval, (start - day) % 86400 or 1)
            p[_INTERVAL] = interval
            self.heartbeat()
            if self._power[_TRIAL] is not None and self.uptime_s() > _TRIAL_S:
                self.log("update: trial birth not acked; rebooting")   # boot drops the trial
                self.board.reset()
            u = self._power[_UPDATE]
            if u and 0 <= u[4] < u[2] and self.uptime_s() - u[6] > _STALL_S:
                u[4] = -1                                  # a download stalled: given up
                self._refuse("update %d: no chunk for %d s" % (u[0], _STALL_S))
                self._listen()
            if asleep:
                await self.sleep(asleep[0], asleep[1])
                return

    def heartbeat(self):
        board = self.board
        q = self.queue   # `dropped` (SPEC 3.2): every frame the full queue removed, coalesced heartbeats too
        dropped = q.coalesced_heartbeats + q.dropped_events + q.dropped_other
        self._enqueue(c.HEARTBEAT, (board.battery_mv(), board.temperature_c(), self.uptime_s(),
                                    board.rssi(), q.depth, board.free_memory(),
                                    self.detections, dropped,
                                    max(0, self.connections - 1), self.refused_commands,
                                    self._power[_RADIO_US] // 1000, self._power[_SLEPT_S],
                                    self._power[_INTERVAL], self._power[_MODE] | self._power[_DEGRADED]))
        self.log("heartbeat seq %d queue %d detections %d dropped %d refused %d heap peak %d"
                 % (self.seq, self.queue.depth, self.detections, dropped,
                    self.refused_commands, self.heap_peak))

    # ---- power ------------------------------------------------------------------------

    def sleep(self, delay_s, reason):
        """The sleep notice (reason 0 quiet window, 1 low battery), then deep sleep
        (lwnode.sleep, loaded for it: a coroutine)."""
        return self.run_module("sleep", "sleep", delay_s, reason)

    async def sleep_ms(self, ms):
        """Sleep by the board's clock (virtual on the unix port's fast feed and in the
        emulator), waking often enough to follow a clock that runs faster than real time."""
        waited_us = 0
        self._tick()
        while waited_us < ms * 1000:
            left_ms = ms - waited_us // 1000
            await asyncio.sleep(min(left_ms, 250) / 1000)
            waited_us += max(0, self._tick())

    # ---- uplink -----------------------------------------------------------------------

    async def _uplink(self):
        delays = mqtt.backoff_delays()
        while True:
            try:
                t = self.board.ticks_us()
                up = await self.board.network_up()
                self._power[_RADIO_US] += ticks_diff(self.board.ticks_us(), t)
                if up:
                    await self._session()
                    delays = mqtt.backoff_delays()   # it was up: start the backoff afresh
            except Exception as exc:   # every failure of a session ends in a reconnect
                self.log_once(_UPLINK, "uplink failed: %s" % (str(exc) or repr(exc)))
                if isinstance(exc, MemoryError):
                    self._out_of_memory()
            finally:
                self._client = None
            wait_s = next(delays)
            if not self._power[_DEGRADED]:
                await asyncio.sleep(wait_s)
            led = self.board.led
            while self._power[_DEGRADED] and wait_s > 0:   # two short blinks every 2 s
                for on in (1, 0, 1, 0):
                    led(on)
                    await asyncio.sleep(0.15)
                await asyncio.sleep(1.4)
                wait_s -= 2

    def _out_of_memory(self):
        """A node that cannot publish says so: a heartbeat flag (the next one that gets out),
        the LED's blink between tries on a board, exit 4 on the unix port (board.degraded)."""
        p = self._power
        p[_OOM] += 1
        if p[_OOM] == _FAULT_AFTER:
            p[_DEGRADED] = 2
            self.log("uplink: DEGRADED: %d sessions in a row ran out of memory; frames stay queued"
                     % _FAULT_AFTER)
            self.board.degraded()

    async def _session(self):
        # The will names the birth of this connection, so the birth is made and queued before
        # connecting, and kept (same seq, same frame) across failed attempts: no seq is ever
        # skipped, even when the node reboots during an outage (a hole would stall the acks).
        cfg = self.config
        broker = cfg.broker
        if self._birth is None:
            self.seq += 1
            self._birth = (self.seq, self._enqueue(c.BIRTH, self.birth(), self.seq))
        birth_seq, birth = self._birth
        source, error_us = self.clock.quality()
        death = frame.encode(self.key, c.DEATH, cfg.node, self.boot, birth_seq,
                             self.clock.now_us(), source, error_us, (c.DEATH_LOST,))
        ssl = None
        if broker.get("ca") is not None:
            from . import tls      # a plain node never loads it
            ssl = tls.context(broker["ca"])
        client = mqtt.MQTTClient(
            "lw-%04x" % cfg.node, broker["host"], broker["port"], broker["keepalive_s"],
            clean_session=False, user=broker["user"], password=broker["password"],
            will=(topic.uplink(cfg.segment, cfg.node, c.DEATH), death, 1, False),
            on_message=self.on_downlink, open_connection=self.board.open_connection, ssl=ssl)
        t = self.board.ticks_us()
        await client.connect()
        self._power[_RADIO_US] += ticks_diff(self.board.ticks_us(), t)
        self._birth = None
        if self._power[_TRIAL] == 0:
            self._power[_TRIAL] = birth_seq
        self.connections += 1
        self._client = client
        self.queue.mark(-1, 0, 0, 0)   # every frame once per connection
        self._unsent = True
        try:
            await client.subscribe(topic.downlink(cfg.segment, cfg.node) + "/" + "#", 1)   # and down/update: "/" and "#" are interned already, "/#" would be one more
            self.log("uplink: connected to %s:%d, birth seq %d, queue %d"
                     % (broker["host"], broker["port"], birth_seq, self.queue.depth))
            if birth is not None:
                await self._publish(c.BIRTH, birth)
                self.queue.mark(self.boot, birth_seq, birth_seq, 1)
            while client.connected:
                # The oldest frames not yet sent on this connection. Flash is read only when
                # something may be unsent: a new frame, a new connection, a resend, or a batch
                # that left frames behind it (not after every ack or idle second).
                published = False
                if self._unsent:
                    batch = self.queue.pending(4, True)
                    self._unsent = len(batch) == 4
                    for _, _, ftype, data in batch:
                        await self._publish(ftype, data)
                        published = True
                    batch = None
                if published:
                    self.measure_heap()
                else:
                    await self._idle()
            self.log("uplink: connection lost (%s)" % client.error)
        finally:
            if client.connected:
                await client.disconnect()

    async def _publish(self, ftype, data):
        t = self.board.ticks_us()             # the radio is active until the PUBACK
        await self._client.publish(topic.uplink(self.config.segment, self.config.node, ftype),
                                   data, 1)
        self._power[_RADIO_US] += ticks_diff(self.board.ticks_us(), t)
        self._power[_OOM] = 0

    async def _idle(self):
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), 1)
        except asyncio.TimeoutError:
            pass

    # ---- downlink: acks and commands ---------------------------------------------------

    def on_downlink(self, name, data):
        if name[-6:] == "update":      # SPEC.md section 10 (down/update)
            if self.detector.impulse is not None:      # listening: no download running
                # Only a manifest under this node's key starts one, checked here before the
                # detectors make room (pause) for lwnode.update's code and the chunks. A chunk
                # meanwhile (the rest of a download given up, redelivered) is ignored.
                auth = frame.auth      # (no names of its own in this module's table)
                if data[:1] != b"\x11" or len(data) != 83 or not auth.tags_equal(
                        data[-32:], auth.hmac_sha256(self.key, b"linewatch/update/v1" + data[:-32])):
                    if data[:1] == b"\x11":
                        return self._refuse("manifest: bad length or tag")
                    return None
                self.detector.pause()
                gc.collect()
            from . import update       # loaded while a download runs
            if not update.message(self, data):
                u = self._power[_UPDATE]
                if u is None or u[4] < 0:   # no download runs (a completed one reboots)
                    self._listen()
            return None
        try:
            f = frame.decode(data, self.key)
        except ProtocolError as exc:
            return self._refuse("downlink on %s: %s" % (name, exc))
        if f.node != self.config.node:
            return self._refuse("downlink for node 0x%04x on my topic" % f.node)
        if f.ftype == c.ACK:
            # A replayed ack is harmless (it can only name frames already acked), so its
            # counter lives in RAM and costs no flash write per ack; see README.
            if (f.boot, f.seq) > self._last_ack:
                self._last_ack = (f.boot, f.seq)
                boot, upto = f.field("boot"), f.field("seq")
                if self.queue.ack(boot, upto):
                    self._wake.set()
                if self._power[_TRIAL] and boot == self.boot and upto >= self._power[_TRIAL]:
                    # kept: lwnode.update commits it and reboots (the detectors make its room)
                    self.detector.pause()
                    gc.collect()
                    self.run_module("update", "stop", 1)
            return None
        if f.ftype == c.COMMAND:
            return self.command(f)
        return self._refuse("downlink: %s frame is not for a node" % f.type_name())

    def _listen(self):
        """Hear again after a download that did not complete: by a reboot into the build the
        node runs (nothing queued is lost). The download leaves the heap in pieces too small
        for the detectors' arrays (firmware/README.md "Updates over the air")."""
        self.log("update: given up; rebooting")
        self.board.reset()

    def _refuse(self, reason):
        self.refused_commands += 1
        self.log_once(_REFUSED, "refused %s (%d refused so far)" % (reason, self.refused_commands))

    def command(self, f):
        """Apply a verified command frame once (lwnode.command, resident: loaded on demand into
        the heap a running node has fragmented, it could fail with MemoryError and the command
        was lost)."""
        return command.run(self, f)

    def run_module(self, name, function, *args):
        """lwnode.<name>.<function>(self, *args) with the module loaded for the call and
        unloaded afterwards: rare work (commands, sleep) does not keep its code in RAM."""
        from . import unload
        module = __import__("lwnode." + name, None, None, (name,))
        try:
            return getattr(module, function)(self, *args)
        finally:
            unload(name)

    # ---- logs -------------------------------------------------------------------------

    def log(self, message):
        self.board.log(message)

    def log_once(self, key, message):
        """One line per cause per _LOG_EVERY_MS, so a broken link cannot flood the console."""
        now = self.board.ticks_us()
        last = self._logged.get(key)
        if last is None or not 0 <= ticks_diff(now, last) < _LOG_EVERY_MS * 1000:
            self._logged[key] = now
            self.board.log(message)
