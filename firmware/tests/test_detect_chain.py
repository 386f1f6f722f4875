"""The detector chain: settings from downlink, refractory, tamper, bad input, and identical
detections under CPython and the MicroPython unix port."""
import subprocess
import sys
from array import array

import numpy as np
import pytest

from lwnode.detection import Detection
from lwnode.detector import DetectorChain
from lwtools.bench import detector_quality as Q
from lwtools.bench import detector_signals as S


def _run(chain, x, block=256):
    out = []
    for i in range(0, len(x) - block + 1, block):
        out += chain.feed_audio(array("h", x[i:i + block].tobytes()), i)
    return out


def _two_blasts(gap_s=0.3, seed=4):
    rng = np.random.default_rng(seed)
    x = S.noise(rng, 16000 * 2)
    onsets = (16000, 16000 + int(gap_s * 16000))
    for at in onsets:
        ev = S.scale_to_snr(S.explosion(rng), 20.0)
        x[at:at + len(ev)] += ev
    return S.to_int16(x), onsets


def test_detection_is_a_small_slotted_value():
    d = Detection(1, 0.5, 123, -20.0, 80, 60, 15.0)
    assert not hasattr(d, "__dict__")
    assert "cls=1" in repr(d)


def test_refractory_silences_repeats_and_is_settable():
    x, onsets = _two_blasts()
    chain = DetectorChain()
    chain.set_refractory(1, 500)
    assert [d.cls for d in _run(chain, x)] == [1]
    chain = DetectorChain()
    chain.set_refractory(1, 100)
    found = _run(chain, x)
    assert [d.cls for d in found] == [1, 1]
    assert [abs(d.onset_index - o) < 32 for d, o in zip(found, onsets)] == [True, True]
    assert chain.refractory_ms(1) == 100


def test_threshold_is_settable_per_class():
    x, _ = _two_blasts(gap_s=0.6)
    chain = DetectorChain()
    chain.set_threshold(1, 45.0)     # louder than these blasts
    assert _run(chain, x) == []
    assert chain.threshold(1) == 45.0
    chain.set_threshold(5, 900)
    assert chain.threshold(5) == 900


@pytest.mark.parametrize("call", [
    lambda c: c.set_threshold(9, 10.0),
    lambda c: c.set_threshold(1, -3.0),
    lambda c: c.set_threshold(1, "loud"),
    lambda c: c.set_refractory(2, -1),
    lambda c: c.set_refractory("2", 10),
    lambda c: c.feed_audio(array("h", [0] * 100), 0),   # not a multiple of the hop
    lambda c: c.feed_audio(array("h", [0] * 4096), 0),  # longer than the chain was built for
])
def test_bad_settings_and_blocks_say_what_is_wrong(call):
    with pytest.raises(ValueError) as err:
        call(DetectorChain())
    assert str(err.value)


def test_lost_samples_do_not_break_the_chain():
    x, onsets = _two_blasts(gap_s=0.6)
    chain = DetectorChain()
    found = []
    for i in range(0, len(x) - 255, 256):
        if 20000 <= i < 22000:
            continue                     # a gap in the stream
        found += chain.feed_audio(array("h", x[i:i + 256].tobytes()), i)
    assert all(d.onset_index < 20000 or d.onset_index >= 22000 for d in found)
    assert [d.cls for d in found if abs(d.onset_index - onsets[1]) < 32] == [1]


def test_tamper_jolt_and_tilt():
    chain = DetectorChain(accel_rate_hz=50)
    found = []
    for k in range(100):                     # at rest, flat
        found += chain.feed_accel(5, -3, 1000, k * 320)
    assert found == []
    found += chain.feed_accel(700, -3, 1000, 100 * 320)          # a kick
    assert [(d.cls, d.onset_index) for d in found] == [(5, 32000)]
    chain.set_refractory(5, 0)
    found = []
    for k in range(101, 200):                # knocked over: lying on its side
        found += chain.feed_accel(1000 if k > 110 else 5, -3, 0 if k > 110 else 1000, k * 320)
    tilts = [d for d in found if d.duration_ms > 0]
    assert len(tilts) == 1 and tilts[0].cls == 5 and tilts[0].confidence > 0.5
    assert 110 * 320 <= tilts[0].onset_index <= 116 * 320


def test_same_detections_under_cpython_and_micropython(micropython):
    x, _ = S.impulse_stream("small_arms", 10, 4, seed=5, noise_kind="pink")
    y, _ = S.impulse_stream("explosion", 6, 4, seed=6)
    z, _ = S.drone_stream(0, 1, seed=7, seconds=2.0, gap_s=0.5)
    audio = np.concatenate((x, y, z))
    cp, _ = Q.run_chain(audio, "cpython")
    mv, _ = Q.run_chain(audio, "micropython", mode="viper")
    mp, _ = Q.run_chain(audio, "micropython", mode="plain")
    assert {1, 2, 3} <= {f.cls for f in cp}
    assert cp == mv == mp


def test_a_dead_microphone_is_no_drone_and_no_blast():
    from lwnode.detector import DetectorChain
    chain = DetectorChain(16000, 512)
    zeros = array("h", bytes(1024))
    found = []
    for k in range(16000 * 20 // 512):
        found += chain.feed_audio(zeros, k * 512, 512)
    assert found == []
