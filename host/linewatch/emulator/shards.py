"""A run split over worker processes: the line's segments in contiguous shares, one asyncio
loop (and one virtual clock) per process, meeting at a barrier every `sync_s` of virtual time.

    summary = run_sharded(scenario, world, options)      # options.workers > 1

Why processes: a virtual run's cost is per frame (firmware, asyncio, sockets) in one CPython
thread; N processes use N cores. Why by segment, contiguous: nodes of different workers only
meet at the commission, and a source is heard by nodes near it, so a contiguous share keeps
nearly every source's hearers in one worker (only the shares' borders are split).

Why a barrier: each worker's clock jumps on its own, so without one a worker could run
minutes of scenario ahead of another, and the commission (which works in wall-clock time)
would get one source's reports from two workers far apart in its time. With the barrier the
workers are never more than `sync_s` of scenario apart (at the border of two shares, reports
of one source may reach the commission up to that much virtual time apart — a fraction of a
second of wall time). Virtual time stands still in a worker while it waits there.

The workers are forked (the world, scenario and synthesizer are shared copy-on-write, and
callables in the options need no pickling). Linux/macOS only, like the emulator's broker.
"""
from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
import traceback
from linewatch.emulator import vclock
from linewatch.emulator.progress import Progress, hms
from linewatch.emulator.scenario import Scenario
from linewatch.emulator.synth import Synthesizer
from linewatch.emulator.world import World

BARRIER_TIMEOUT_S = 600.0     # a worker that never arrives (it died) breaks the run
_SUMMED = ("frames", "detections", "windows", "audio_s", "left_in_queues", "jumps", "waited_s")


def shares(world: World, workers: int) -> list[set[int]]:
    """Node ids per worker: whole segments in line order, about the same number of nodes each."""
    by_segment: dict[int, list[int]] = {}
    for node in world.nodes:
        by_segment.setdefault(node.segment, []).append(node.id)
    workers = max(1, min(workers, len(by_segment)))
    out: list[set[int]] = [set() for _ in range(workers)]
    target = len(world.nodes) / workers
    before = 0
    for number in sorted(by_segment):
        ids = by_segment[number]
        out[min(workers - 1, int((before + len(ids) / 2) / target))].update(ids)
        before += len(ids)
    return [s for s in out if s]


def run_sharded(scenario: Scenario, world: World, options) -> "RunSummary":
    from linewatch.emulator.runner import RunSummary
    started = time.monotonic()
    parts = shares(world, options.workers)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(parts), timeout=BARRIER_TIMEOUT_S)
    done = ctx.Array("d", len(parts))
    results = ctx.Queue()
    synth = Synthesizer(world, scenario.sources, scenario.faults, scenario.seed)
    procs = [ctx.Process(target=_worker, name="emulator worker %d" % i,
                         args=(i, scenario, world, options, part, synth, barrier, done, results))
             for i, part in enumerate(parts)]
    for p in procs:
        p.start()
    summaries, errors = [], []
    total = scenario.duration_s
    bar = Progress(total, "emulate %s (%d workers)" % (scenario.name, len(parts)),
                   enabled=options.progress, describe=lambda d: "%s/%s" % (hms(d), hms(total)))
    try:
        with bar:
            while len(summaries) + len(errors) < len(procs):
                bar.update(min(done))
                try:
                    index, summary, error = results.get(timeout=0.5)
                except queue.Empty:
                    if any(p.exitcode not in (None, 0) for p in procs):
                        dead = [p.name for p in procs if p.exitcode not in (None, 0)]
                        errors.append("%s died" % ", ".join(dead))
                        barrier.abort()
                        break
                    continue
                if error:
                    errors.append("worker %d: %s" % (index, error))
                    barrier.abort()
                else:
                    summaries.append(summary)
    except BaseException:                 # interrupted (SIGINT/SIGTERM): stop the workers now
        for p in procs:
            p.kill()
        raise
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
    if errors:
        raise RuntimeError("emulator workers failed: " + "; ".join(errors))
    merged = RunSummary(scenario.name, len(world.nodes), scenario.duration_s, options.virtual,
                        workers=len(parts))
    for summary in summaries:
        for name in _SUMMED:
            setattr(merged, name, getattr(merged, name) + getattr(summary, name))
    merged.wall_s = time.monotonic() - started
    return merged


def _worker(index, scenario, world, options, part, synth, barrier, done, results) -> None:
    from linewatch.emulator.runner import Runner

    def meet() -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            raise RuntimeError("another worker stopped; ending this one")

    def on_step(seconds: float) -> None:
        done[index] = seconds

    try:
        summary = vclock.run(lambda: Runner(scenario, world, options, node_ids=part, synth=synth,
                                            meet=meet, on_step=on_step).run(),
                             virtual=options.virtual, grace_s=options.grace_s)
        results.put((index, summary, None))
    except BaseException as exc:      # report, never hang the parent
        results.put((index, None, "%r\n%s" % (exc, traceback.format_exc(limit=5))))
