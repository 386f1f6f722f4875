"""Where a node's stretches of audio meet (feedplan.py): the emulator feeds only the stretches
where something is to be heard and hands them to the node's detectors one after the other,
with no gap in the sample index (as both tiers do). Whatever a detector heard in one stretch
must be reported there, at the time it happened, not carried into the next one."""
from dataclasses import replace

import numpy as np

from linewatch.emulator import feedplan
from linewatch.emulator import profiles as pr
from linewatch.emulator.dsp_numpy import numpy_loops, prefetch
from linewatch.emulator.observe import bench_world
from linewatch.emulator.synth import SAMPLE_RATE, Synthesizer
from lwnode.detector import DetectorChain

BLOCK = 512
VEHICLE = 4


class _Scenario:
    """What feedplan.plan reads of a scenario."""
    def __init__(self, duration_s, seed):
        self.duration_s, self.seed, self.sources, self.faults = duration_s, seed, [], []


def heard(plan_spans, synth, node_id, duration_s):
    """Feed the node's stretches as the tiers do (index without gaps); per vehicle detection:
    (the stretch it was reported in, the true time of its onset, the stretch its onset is in)."""
    chain = DetectorChain(rate_hz=SAMPLE_RATE, block=BLOCK, accel_rate_hz=SAMPLE_RATE // BLOCK)
    index, seams, out = 0, [], []
    with numpy_loops():
        for n, (start_s, end_s, _alarms) in enumerate(plan_spans):
            first, last = feedplan.samples(start_s, end_s, duration_s, BLOCK)
            if first >= last:
                continue
            seams.append((index, first, n))
            samples = synth.window(node_id, first, last - first).samples
            prefetch(chain, samples, index, BLOCK)
            for i in range(0, last - first, BLOCK):
                for det in chain.feed_audio(samples[i:i + BLOCK], index, BLOCK):
                    if det.cls == VEHICLE:
                        at, true_first, where = max(s for s in seams if s[0] <= det.onset_index)
                        out.append((n, (true_first + det.onset_index - at) / SAMPLE_RATE, where))
                index += BLOCK
    return out


def test_a_vehicle_heard_in_one_stretch_is_reported_in_it_not_minutes_later():
    # a node beside a farm track: a car or tractor passing now and then, nothing else; the
    # stretch around each pass ends 1 s after it, the vehicle detector ends an event after 2 s
    # of quiet: it was still open when the stretch ended, and the next stretch minutes later
    # closed it, reported late with its onset dated by the later stretch's clock
    profile = replace(pr.FIELD, background=replace(
        pr.FIELD.background, vehicle_per_h=6.0, thunder_per_h=0.0, door_per_h=0.0,
        animal_per_h=0.0, work_per_h=0.0))
    world = bench_world([(48.0, 37.8)], profile, seed=5, noise_floor_db=42.0)
    node = world.nodes[0].id
    duration_s = 3600.0
    synth = Synthesizer(world, [], [], 5)
    spans = feedplan.plan(_Scenario(duration_s, 5), world, synth, [node], rates={})[node]
    passes = [t for t in synth.background.transients(node, 0.0, duration_s) if t.kind == "vehicle"]
    assert len(passes) >= 3 and len(spans) >= 3
    found = heard(spans, synth, node, duration_s)
    assert found, "no vehicle reported at all"
    for reported_in, onset_s, onset_in in found:
        assert reported_in == onset_in, "reported %d stretches after its onset" % (reported_in - onset_in)
        assert any(p.start_s - 1.0 <= onset_s <= p.end_s for p in passes), onset_s
