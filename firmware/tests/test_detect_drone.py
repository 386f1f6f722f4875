"""The drone detector (class 3) asks for what a drone gives: harmonics that stand over the
bins beside them, not broadband sound over its floor."""
import numpy as np

from lwtools.bench import detector_quality as Q
from lwtools.bench import detector_signals as S

RATE = S.RATE


def _pink(seconds, seed):
    return S.noise(np.random.default_rng(seed), int(seconds * RATE), "pink")


def _lowpassed(rng, n, cutoff_hz):
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(1.0 + (np.fft.rfftfreq(n, 1.0 / RATE) / cutoff_hz) ** 4)
    x = np.fft.irfft(spec, n)
    return x / np.std(x)


def _drones(x):
    found, _ = Q.run_chain(S.to_int16(x), "cpython")
    return [f for f in found if f.cls == 3]


def test_rumble_is_no_drone():
    # thunder or a gust on the microphone: noise under ~120 Hz, 20-30 dB over the floor for
    # 6 s, rising and falling. It lifts the drone's bins over their floors (the detector
    # reported it as a drone when it compared each bin with its floor only), and the bins
    # beside them as much.
    rng = np.random.default_rng(4)
    x = _pink(40.0, 3)
    for start, db in ((5.0, 20.0), (15.0, 25.0), (25.0, 30.0)):
        n = int(6.0 * RATE)
        env = np.sin(np.pi * np.arange(n) / n) ** 0.5
        x[int(start * RATE):int(start * RATE) + n] += S.scale_to_snr(_lowpassed(rng, n, 120.0), db) * env
    assert _drones(x) == []


def test_a_drone_is_heard_in_rumble_as_in_quiet():
    # the same drone tone 8 dB over the noise, alone and under a rumble 15 dB over the noise
    # (its bins stand over the rumble-lifted bins beside them)
    rng = np.random.default_rng(6)
    x = _pink(30.0, 7)
    tone = S.scale_to_snr(S.drone(np.random.default_rng(8), 6.0)[0], 8.0)
    n = len(tone)
    x[int(4 * RATE):int(4 * RATE) + n] += tone
    x[int(18 * RATE):int(18 * RATE) + n] += tone + S.scale_to_snr(_lowpassed(rng, n, 150.0), 15.0)
    onsets = sorted({round(f.onset_index / RATE) for f in _drones(x)})
    assert onsets[0] in (4, 5) and any(17 <= t <= 20 for t in onsets), onsets
