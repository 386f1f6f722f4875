"""Detector quality with fixed thresholds and seeds (the full table: docs/detectors.md, made by
`python -m lwtools.bench.detector_quality`). SNR = event power over its duration vs noise."""
import numpy as np
import pytest

from lwtools.bench import detector_quality as Q


@pytest.mark.parametrize("kind,noise", [("explosion", "white"), ("small_arms", "white"),
                                        ("explosion", "pink"), ("small_arms", "pink")])
def test_impulses_at_10_db(kind, noise):
    score = Q.impulse_score(kind, 10.0, events=20, seed=31, noise=noise, interpreter="cpython")
    assert score.detected / score.events >= 0.95, score
    assert score.right_class / score.events >= 0.9, score
    assert max(score.onset_err_ms) < 2.0, score
    assert np.median(score.onset_err_ms) < 0.5, score
    assert score.false == 0, score


def test_impulses_fade_out_at_3_db_small_arms():
    # the detector is not a noise generator: a crack at 3 dB is mostly missed, not invented
    score = Q.impulse_score("small_arms", 3.0, events=10, seed=32, interpreter="cpython")
    assert score.detected <= 5 and score.false == 0, score


def test_drones_at_0_db():
    score = Q.drone_score(0.0, passes=5, seed=33, interpreter="cpython")
    assert score.detected == score.events, score
    assert max(score.freq_err_hz) <= 10, score
    assert max(score.onset_err_ms) <= 500, score
    assert score.false == 0, score


@pytest.mark.parametrize("noise,max_per_hour", [("white", 6.0), ("pink", 60.0)])
def test_false_alarms_in_ten_minutes_of_noise(micropython, noise, max_per_hour):
    found, hours = Q.false_alarms(10.0, seed=41, noise=noise)
    assert len(found) / hours <= max_per_hour, found
