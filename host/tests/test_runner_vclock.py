"""Virtual time with real sockets, the virtual board's sample stamps, and the feed plan."""
from __future__ import annotations

import asyncio
import time
from array import array
from pathlib import Path

import numpy as np
import pytest

from linewatch.emulator import scenario as sc, vclock
from linewatch.emulator.feedplan import merge as _merge
from linewatch.emulator.feedplan import with_stand_ins
from linewatch.emulator.virtual_node import AUDIO_BLOCK, VirtualBoard, cancel_all, node_config_dict
from lwnode import config as node_config


def test_virtual_time_jumps_over_sleeps_and_timeouts():
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(3600)
        after_sleep = loop.time()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), 10)
        return after_sleep, loop.time(), loop.jumps

    after_sleep, end, jumps = vclock.run(main, virtual=True)
    assert after_sleep == pytest.approx(3600)
    assert end == pytest.approx(3610)
    assert jumps >= 2


def test_socket_round_trip_completes_without_moving_virtual_time():
    async def main():
        loop = asyncio.get_running_loop()

        async def echo(reader, writer):
            writer.write(await reader.read(5))
            await writer.drain()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # a timer far ahead must not fire before the answer arrives
        far = loop.create_task(asyncio.sleep(30))
        before = loop.time()
        writer.write(b"hello")
        vclock.note_io()
        answer = await reader.read(5)
        took = loop.time() - before
        far.cancel()
        writer.close()
        server.close()
        return answer, took

    answer, took = vclock.run(main, virtual=True)
    assert answer == b"hello"
    assert took == 0.0


def test_an_answer_the_broker_owes_arrives_at_the_same_virtual_instant_however_late():
    """A PINGREQ and a QoS 1 PUBLISH are owed answers (answers.py): the loop waits for them
    in real time rather than jumping to a timer, here behind a broker 50x slower than the
    loop's grace; a QoS 0 PUBLISH is owed nothing."""
    from linewatch.emulator.answers import open_counted

    async def main():
        loop = asyncio.get_running_loop()

        async def slow_broker(reader, writer):
            while header := await reader.read(2):
                await asyncio.to_thread(time.sleep, 0.15)       # real time, while the loop waits
                if header[0] >> 4 == 12:
                    writer.write(bytes([0xD0, 0]))                 # PINGRESP
                elif header[0] == 0x32:
                    writer.write(bytes([0x40, 2, 0, 1]))           # PUBACK
                await writer.drain()

        server = await asyncio.start_server(slow_broker, "127.0.0.1", 0)
        reader, writer, debts = await open_counted("127.0.0.1", server.sockets[0].getsockname()[1])
        far = loop.create_task(asyncio.sleep(30))
        took = []
        for packet, answer in ((bytes([0xC0, 0]), 2), (bytes([0x32, 0]), 4)):
            before = loop.time()
            writer.write(packet)
            debts.sent(packet)
            assert loop.owed == 1
            await reader.readexactly(answer)
            took.append(loop.time() - before)
        writer.write(bytes([0x30, 0]))                              # QoS 0: nothing owed
        debts.sent(bytes([0x30, 0]))
        owed_after = loop.owed
        far.cancel()
        writer.close()
        server.close()
        return took, owed_after

    took, owed_after = vclock.run(main, virtual=True, grace_s=0.003)
    assert took == [0.0, 0.0]
    assert owed_after == 0


def test_a_write_after_the_broker_closed_the_connection_is_owed_nothing():
    """A broker killed (kill -9) sends the node's socket an EOF, but the socket is only half
    closed, so the node may still write (what it had queued) before it notices. No answer can
    come on that connection: counting one made the loop wait ANSWER_WAIT_S (10 s) of real time,
    and the fault suite's broker restart took 10 s longer in about one run of three."""
    from linewatch.emulator.answers import open_counted
    from linewatch.emulator.virtual_node import _Writer

    async def main():
        loop = asyncio.get_running_loop()

        async def dying_broker(reader, writer):
            await reader.read(2)
            writer.close()

        server = await asyncio.start_server(dying_broker, "127.0.0.1", 0)
        reader, writer, debts = await open_counted("127.0.0.1", server.sockets[0].getsockname()[1])
        node = _Writer(writer, debts)
        node.write(bytes([0xC0, 0]))                                # PINGREQ: owed an answer
        assert await reader.read(2) == b""                          # EOF instead: the broker is gone
        half_closed = not writer.transport.is_closing()
        node.write(bytes([0x32, 0]))                                # a QoS 1 PUBLISH after the EOF
        owed = loop.owed
        writer.close()
        server.close()
        return half_closed, owed

    half_closed, owed = vclock.run(main, virtual=True)
    assert half_closed
    assert owed == 0


def test_mqtt_packets_are_split_from_a_stream_cut_anywhere():
    from linewatch.emulator.answers import Packets
    stream = (bytes([0x10, 3]) + b"abc" + bytes([0x32, 0x81, 0x01]) + bytes(129) + bytes([0xC0, 0])
              + bytes([0x40, 2, 0, 7]))
    expected = [(1, 0), (3, 2), (12, 0), (4, 0)]
    for cut in range(len(stream) + 1):
        for step in (1, 2, 7, len(stream)):
            packets = Packets()
            got = packets.feed(stream[:cut])
            for i in range(cut, len(stream), step):
                got += packets.feed(stream[i:i + step])
            assert got == expected, (cut, step)


def test_run_clock_reads_utc_from_the_loop():
    start = 1_795_586_400_000_000

    async def main():
        clock = vclock.RunClock(start)
        await clock.sleep_until(start + 90_000_000)
        return clock.now_us(), clock.virtual

    now, virtual = vclock.run(main, virtual=True)
    assert now == start + 90_000_000 and virtual


def test_board_stamps_each_block_with_the_node_clock_of_its_end(tmp_path: Path):
    scenario = sc.load("demo").with_profile("ideal")     # blocks stamped exactly
    world = scenario.build_world()
    wn = world.nodes[0]

    async def main():
        clock = vclock.RunClock(world.start_utc_us)
        raw = node_config_dict(wn, b"m" * 32, ("127.0.0.1", 1), str(tmp_path), 10)
        board = VirtualBoard(node_config.parse(raw), wn, clock, str(tmp_path), ("127.0.0.1", 1),
                             on_reset=lambda: None)
        board.push(array("h", range(2 * AUDIO_BLOCK)), 5_000_000)
        buf = array("h", bytes(2 * AUDIO_BLOCK))
        stamps = []
        for _ in range(2):
            n = await board.mic_read(buf)
            stamps.append((n, board.time_us()))
        live = board.time_us()
        return stamps, live, clock.now_us()

    stamps, live, now = vclock.run(main, virtual=True)
    assert stamps == [(AUDIO_BLOCK, 5_000_000 + 32_000), (AUDIO_BLOCK, 5_000_000 + 64_000)]
    # after the stamp is taken the board's clock is the node's own clock again
    assert live == wn.clock.node_time_us(now)


def test_a_field_board_stamps_blocks_late_by_its_driver_and_loop(tmp_path: Path):
    world = sc.load("demo").with_profile("field").build_world()
    wn = next(n for n in world.nodes if n.clock.source == "ntp")
    start = world.start_utc_us + 3_600_000_000          # after the node's first NTP sync
    blocks = 2000                                       # 64 s of audio

    async def main():
        clock = vclock.RunClock(world.start_utc_us)
        raw = node_config_dict(wn, b"m" * 32, ("127.0.0.1", 1), str(tmp_path), 10)
        board = VirtualBoard(node_config.parse(raw), wn, clock, str(tmp_path), ("127.0.0.1", 1),
                             on_reset=lambda: None)
        board.push(array("h", bytes(2 * blocks * AUDIO_BLOCK)), 0, start)
        await clock.sleep_until(start)
        buf = array("h", bytes(2 * AUDIO_BLOCK))
        late = []
        for k in range(blocks):
            await board.mic_read(buf)
            true_end = start + (k + 1) * 32_000
            late.append(board.time_us() - wn.clock.node_time_us(true_end))
        return late, board.clock(), board.clock_synced_us()

    late, (source, error), synced = vclock.run(main, virtual=True)
    late = sorted(late)
    # never early, never later than the driver's 96 ms buffer; mostly a fraction of a ms,
    # a few blocks behind a stall of the loop
    assert late[0] >= 0 and late[-1] <= 96_000
    assert late[len(late) // 2] < 1_000 and late[int(0.9 * len(late))] < 40_000
    assert sum(x > 2_000 for x in late) >= 5
    # the board states its NTP error and when it synced; the firmware adds drift since
    assert source == 1 and 1_000 < error < 500_000
    assert synced is not None


def test_cancel_all_ends_tasks_that_shrug_off_one_cancel():
    async def stubborn():
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            pass                       # what a swallowed cancel looks like
        await asyncio.sleep(100)

    async def main():
        task = asyncio.get_running_loop().create_task(stubborn())
        await asyncio.sleep(0)
        await cancel_all([task])
        return task.done()

    assert vclock.run(main, virtual=True)


def test_feed_spans_merge_and_keep_false_alarm_times():
    merged = _merge([(5.0, 7.0, []), (0.0, 2.0, [(1.0, "drone")]), (1.5, 3.0, [(2.5, "unknown")]),
                     (10.0, 11.0, [])])
    assert merged == [(0.0, 3.0, [(1.0, "drone"), (2.5, "unknown")]), (5.0, 7.0, []), (10.0, 11.0, [])]


def test_knock_is_added_where_the_false_alarm_is():
    quiet = np.zeros(16000, dtype=np.int16)
    out = with_stand_ins(quiet, 16000, [(1.5, "small_arms")], 42.0)
    loud = np.flatnonzero(np.abs(out) > 20)
    assert loud.size and 8000 <= loud[0] < 8010 and loud[-1] < 8000 + 160
