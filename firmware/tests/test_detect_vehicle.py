"""The vehicle detector (class 4): a pass heard with its onset and end, not a drone's tone nor
plain noise, a vehicle that stays reported every minute, ground vibration, and the same
detections under CPython and the MicroPython unix port."""
from array import array

import numpy as np
import pytest

from lwnode.detector import DetectorChain
from lwtools.bench import detector_quality as Q
from lwtools.bench import detector_signals as S

BLOCK = 512


def _run(x, accel=None, chain=None):
    chain = chain or DetectorChain(16000, BLOCK, 31)
    found = []
    for i in range(len(x) // BLOCK):
        found += chain.feed_audio(array("h", x[i * BLOCK:(i + 1) * BLOCK].tobytes()), i * BLOCK)
        if accel is not None:
            a = accel[i]
            found += chain.feed_accel(int(a[0]), int(a[1]), int(a[2]), (i + 1) * BLOCK)
    return found


def _pass(kind="wheeled", closest_m=60.0, seed=3, **kw):
    # a 24 s pass (120 m either side of the closest point at 10 m/s)
    return S.vehicle_stream(kind, closest_m, 1, seed, half_length_m=120.0, gap_s=8.0, **kw)


@pytest.mark.parametrize("kind", S.VEHICLE_KINDS)
def test_a_passing_vehicle_is_reported_once_with_its_onset_and_end(kind):
    x, accel, (truth,) = _pass(kind)
    found = [d for d in _run(x, accel) if d.cls == 4]   # (an engine's harmonics may be a drone too)
    assert len(found) == 1, found
    d = found[0]
    closest = (truth.onset_index + truth.end_index) // 2
    end = d.onset_index + d.duration_ms * 16
    assert truth.onset_index <= d.onset_index < closest - 3 * 16000, (d, truth)
    assert closest + 3 * 16000 < end <= truth.end_index + 16000, (d, truth)
    assert d.snr_db >= 6.0 and 0.5 <= d.confidence <= 1.0
    assert 100 <= d.frequency_hz <= 500 and -90.0 < d.peak_db < -20.0


def test_noise_a_drone_and_a_far_vehicle_are_no_vehicle():
    rng = np.random.default_rng(8)
    noise = S.to_int16(S.noise(rng, 16000 * 40, "pink", rms=float(S.counts_rms(42.0))))
    drone, _ = S.drone_stream(10.0, 3, seed=9, seconds=6.0, gap_s=3.0, noise_kind="pink")
    far, accel, _ = _pass(closest_m=2000.0)
    assert [d for d in _run(noise) if d.cls == 4] == []
    assert [d for d in _run(drone) if d.cls == 4] == []
    assert [d for d in _run(far, accel) if d.cls == 4] == []


def test_a_vehicle_that_stays_is_reported_every_minute():
    # idling 30 m away for 100 s: reported after 60 s, then the rest
    x, _, (truth,) = S.vehicle_stream("wheeled", 30.0, 1, seed=4, speed_mps=0.2, half_length_m=10.0,
                                      gap_s=5.0)
    found = [d for d in _run(x) if d.cls == 4]
    assert len(found) == 2, found
    assert found[0].duration_ms == 60000 and found[1].duration_ms > 20000
    assert found[1].onset_index == found[0].onset_index + 60 * 16000


def test_ground_vibration_raises_the_confidence():
    x, accel, _ = _pass("tracked", closest_m=25.0, seed=5, level_db=88.0)
    still = np.tile(np.array(S.AT_REST_MG, dtype=np.int16), (len(accel), 1))
    shaken = [d for d in _run(x, accel) if d.cls == 4]
    quiet = [d for d in _run(x, still) if d.cls == 4]
    assert len(shaken) == len(quiet) == 1
    assert shaken[0].confidence >= quiet[0].confidence + 0.1, (shaken, quiet)


def test_threshold_and_refractory_are_settable():
    x, accel, _ = _pass()
    chain = DetectorChain(16000, BLOCK, 31)
    chain.set_threshold(4, 40.0)
    assert chain.threshold(4) == 40.0
    assert [d for d in _run(x, accel, chain) if d.cls == 4] == []
    assert DetectorChain().refractory_ms(4) == 5000
    assert DetectorChain().capabilities & 32          # lwproto.const CAP_VEHICLE


def test_same_vehicle_detections_under_cpython_and_micropython(micropython):
    x, accel, _ = _pass("tracked", closest_m=40.0, seed=6)
    cp, _ = Q.run_chain(x, "cpython", block=BLOCK, accel=accel)
    mv, _ = Q.run_chain(x, "micropython", block=BLOCK, accel=accel)
    assert 4 in [f.cls for f in cp]
    assert cp == mv
