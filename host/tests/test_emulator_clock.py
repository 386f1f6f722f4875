import asyncio
import io
import time

import pytest

from linewatch.emulator.clock import RealClock, VirtualClock
from linewatch.emulator.progress import Progress, hms


async def test_virtual_time_runs_sleepers_in_time_order_without_waiting():
    clock = VirtualClock(start_us=1_000_000)
    seen = []

    async def node(name, period_us, count):
        t = clock.now_us()
        for _ in range(count):
            t += period_us
            await clock.sleep_until(t)
            seen.append((clock.now_us(), name))

    started = time.monotonic()
    await asyncio.gather(node("a", 10_000_000, 360), node("b", 7_000_000, 500))  # an hour
    assert time.monotonic() - started < 5
    assert [t for t, _ in seen] == sorted(t for t, _ in seen)
    assert clock.now_us() == 1_000_000 + 3_600_000_000
    assert seen[0] == (8_000_000, "b") and seen[1] == (11_000_000, "a")


async def test_virtual_time_waits_for_barriers_before_each_jump():
    clock = VirtualClock(start_us=0)
    flushed = []

    async def barrier():
        flushed.append(clock.now_us())

    clock.add_barrier(barrier)
    await clock.sleep_until(5)
    await clock.sleep(1.0)
    assert flushed == [0, 5] and clock.now_us() == 1_000_005
    await clock.sleep_until(3)                  # the past: returns at once
    assert clock.now_us() == 1_000_005


async def test_a_cancelled_sleeper_does_not_block_time():
    clock = VirtualClock(start_us=0)
    task = asyncio.create_task(clock.sleep_until(100))
    await asyncio.sleep(0)
    task.cancel()
    await clock.sleep_until(200)
    assert clock.now_us() == 200


async def test_real_clock_sleeps_in_wall_time_and_speeds_up():
    clock = RealClock(start_us=0, speed=10.0)
    started = time.monotonic()
    await clock.sleep_until(500_000)            # 0.5 s of run time = 0.05 s of wall time
    assert 0.04 <= time.monotonic() - started < 1.0
    assert clock.now_us() >= 500_000
    with pytest.raises(ValueError):
        RealClock(speed=0)


def test_progress_is_a_bar_on_a_tty_and_plain_lines_elsewhere(monkeypatch):
    from linewatch.emulator import progress
    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    log = io.StringIO()                        # not a terminal: lines, every 10 % but >= 5 s apart
    with Progress(3600, "emulate x", stream=log, describe=hms) as bar:
        for k in range(1, 37):                 # 100 s of scenario per second of wall time
            now[0] += 1.0
            bar.update(k * 100)
    lines = log.getvalue().splitlines()
    assert lines[0] == "emulate x: 13% (0:08:20), 0:00:05 so far, about 0:00:30 left"
    assert lines[-1] == "emulate x: 100% (1:00:00), 0:00:36 so far, about 0:00:00 left"
    assert len(lines) == 8 and "\r" not in log.getvalue()
    quiet = io.StringIO()
    with Progress(10, "run", stream=quiet, enabled=False) as bar:
        bar.update(5, force=True)
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    with Progress(3600, "24h", stream=shown, enabled=True, describe=hms) as bar:
        bar.update(1800, force=True)
    out = shown.getvalue()
    assert "\r24h [" in out and " 50% 0:30:00" in out and out.endswith("100% 1:00:00 elapsed 0:00:00 eta 0:00:00\n")
