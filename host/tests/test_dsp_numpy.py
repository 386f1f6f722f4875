"""The direct tier's numpy twins give the same integers as the firmware's plain loops (dsp_py),
on random and edge inputs, and the detector chain reports the same with either."""
from array import array

import numpy as np
import pytest

from lwnode import dsp, dsp_py
from lwnode.detector import DetectorChain

from linewatch.emulator import dsp_numpy as fast

RNG = np.random.default_rng(15)
EDGES = np.array([-32768, -32767, -16385, -16384, -129, -128, -1, 0, 1, 127, 128, 16383, 16384, 32766, 32767])


def h(values) -> array:
    return array("h", np.asarray(values, np.int16).tobytes())


def i32(n: int) -> array:
    return array("i", bytearray(4 * n))


def inputs(n: int):
    yield RNG.integers(-32768, 32768, n)                    # full scale
    yield RNG.integers(-40, 40, n)                          # a quiet field
    yield RNG.choice(EDGES, n)                              # the extremes, in any order
    yield np.full(n, -32768)
    yield np.full(n, 32767)
    yield np.resize([32767, -32768], n)                     # the largest differences


@pytest.mark.parametrize("hop,hops,start", [(16, 32, 0), (16, 8, 48), (1, 40, 3), (8192, 2, 0)])
def test_hop_levels(hop, hops, start):
    for x in inputs(start + hop * hops + 5):
        for prev in (0, 123, -32768, 32767):
            got = [i32(hops) for _ in range(3)]
            want = [i32(hops) for _ in range(3)]
            assert fast.hop_levels(h(x), start, hops, hop, prev, *got) == \
                dsp_py.hop_levels(h(x), start, hops, hop, prev, *want)
            assert got == want


def test_hop_levels_overflowing_an_int32_output_raises_as_the_plain_loop():
    x = np.full(70000, -32768)
    with pytest.raises(OverflowError):
        dsp_py.hop_levels(h(x), 0, 1, 70000, 0, i32(1), i32(1), i32(1))
    with pytest.raises(OverflowError):
        fast.hop_levels(h(x), 0, 1, 70000, 0, i32(1), i32(1), i32(1))


@pytest.mark.parametrize("factor,count,start,pos", [(4, 128, 0, 0), (4, 40, 8, 100), (3, 50, 1, 7), (1, 20, 0, 0)])
def test_decimate(factor, count, start, pos):
    for x in inputs(start + factor * count + 3):
        got, want = h(np.zeros(pos + count + 2)), h(np.zeros(pos + count + 2))
        fast.decimate(h(x), start, count, factor, got, pos)
        dsp_py.decimate(h(x), start, count, factor, want, pos)
        assert got == want                      # floor division of negative sums included


def test_decimate_reads_a_memoryview():
    x = RNG.integers(-32768, 32768, 512)
    got, want = h(np.zeros(128)), h(np.zeros(128))
    fast.decimate(memoryview(h(x)), 0, 128, 4, got, 0)
    dsp_py.decimate(memoryview(h(x)), 0, 128, 4, want, 0)
    assert got == want


@pytest.mark.parametrize("shift", [0, 1, 15, 17, 30])
def test_apply_window(shift):
    n = 160
    for x in inputs(n):
        for win in (dsp.hann_q15(n), h(RNG.integers(-32768, 32768, n)), h(np.full(n, 1))):
            got, want = h(x), h(x)
            errors = []
            for loop, buf in ((fast.apply_window, got), (dsp_py.apply_window, want)):
                try:
                    loop(buf, n, win, shift)
                    errors.append(None)
                except OverflowError:
                    errors.append(OverflowError)
            assert errors[0] == errors[1]       # a result past int16 fails in both, the same way
            assert got == want


def test_goertzel_on_the_drone_detectors_bank():
    from lwnode.drone import DroneDetector
    det = DroneDetector(16000)
    n, bins = det.window_len, len(det._ks)
    for x in inputs(n):
        for scale in (1, 4):                 # as the detector feeds it (1/4) and at full scale
            w = h(np.asarray(x) // scale)
            got, want = array("q", bytes(16 * bins)), array("q", bytes(16 * bins))
            fast.goertzel(w, n, det._coef, bins, got)
            dsp_py.goertzel(w, n, det._coef, bins, want)
            assert got == want


def test_goertzel_edge_coefficients_and_int32_overflow():
    n = 160
    coef = h([256, 0, -256, 0, 255, 127, -1, 127, 0, 0, 0, 1])       # 2cos = +-2 and the roundings
    for x in inputs(n):
        got, want = array("q", bytes(8 * 12)), array("q", bytes(8 * 12))
        fast.goertzel(h(x), n, coef, 6, got)
        dsp_py.goertzel(h(x), n, coef, 6, want)
        assert got == want
    x = np.full(400, 32767)                  # at 2cos = 2 the states leave int32: both refuse
    for loop in (fast.goertzel, dsp_py.goertzel):
        with pytest.raises(OverflowError):
            loop(h(x), 400, h([256, 0]), 1, i32(2))


def test_goertzel_outside_the_fast_paths_bounds_is_the_plain_loop():
    n = 64
    coef = h([300, 5, 1000, -3])             # unstable resonators: the states grow past int64
    x = RNG.integers(-32768, 32768, n)
    got, want = array("q", bytes(32)), array("q", bytes(32))
    for loop, out in ((fast.goertzel, got), (dsp_py.goertzel, want)):
        try:
            loop(h(x), n, coef, 2, out)
        except OverflowError:
            pass
    assert got == want


def chain_run(audio: np.ndarray, prefetch: bool, misguide: int = 0):
    """Detections and the drone detector's state after each second; with `misguide`, each
    second's prefetch is given audio shifted by that many samples (a wrong guess)."""
    chain = DetectorChain(16000, 512)
    found, states = [], []
    for first in range(0, len(audio), 16000):
        second = audio[first:first + 16000]
        if prefetch:
            fast.prefetch(chain, audio[first + misguide:first + misguide + 16000], first, 512)
        for k in range(0, len(second) - 511, 512):
            for d in chain.feed_audio(h(second[k:k + 512]), first + k, 512):
                found.append((d.cls, d.onset_index, d.confidence, d.peak_db, d.snr_db))
        states.append(bytes(chain.drone._floor) + bytes(chain.drone._state))
    return found, states


def test_the_detector_chain_reports_the_same_with_either_loops():
    rate, seconds = 16000, 5
    t = np.arange(rate * seconds) / rate
    audio = RNG.normal(0.0, 60.0, len(t))
    audio += 900.0 * np.sin(2 * np.pi * 150.0 * t) * (t > 1.5)          # a drone from 1.5 s
    audio += 600.0 * np.sin(2 * np.pi * 300.0 * t) * (t > 1.5)
    for at in (0.7, 2.2, 3.9):                                           # blasts
        k = int(at * rate)
        audio[k:k + 800] += 20000.0 * np.exp(-np.arange(800) / 150.0) * RNG.normal(0, 1, 800)
    audio = np.clip(audio, -32768, 32767).astype(np.int16)
    plain = chain_run(audio, False)
    assert plain[0], "the scenario makes detections"
    with fast.numpy_loops():
        assert dsp.goertzel is fast.goertzel
        ahead = chain_run(audio, True)
        alone = chain_run(audio, False)       # no prefetch: every window computed on its own
        wrong = chain_run(audio, True, misguide=16)
        hits = (len(fast._ahead.states), len(fast._ahead.hops), len(fast._ahead.means))
    assert dsp.goertzel is dsp_py.goertzel      # restored
    assert ahead == plain and alone == plain and wrong == plain
    assert all(hits)


def test_silence_repeats_blocks_with_different_histories():
    """Identical blocks (digital silence, a clipped stretch) with a different sample before
    each: the results looked up by a block's samples still depend on what came before."""
    audio = np.zeros(16000 * 2, np.int16)
    audio[5000:5003] = (30000, -32768, 32767)
    audio[16000 + 511] = -7                     # the last sample of a block differs
    plain = chain_run(audio, False)
    with fast.numpy_loops():
        assert chain_run(audio, True) == plain
