"""The background a node hears (background.py) and the false alarms between windows (feedplan.py)."""
from dataclasses import replace

import numpy as np
import pytest

from linewatch.emulator import background as bg
from linewatch.emulator import false_alarms as fa
from linewatch.emulator import feedplan
from linewatch.emulator import profiles as pr
from linewatch.emulator.observe import bench_world


def field_world(wind_mps=0.0, **changes):
    profile = replace(pr.FIELD, background=replace(pr.FIELD.background, **changes))
    return bench_world([(48.0, 37.8), (48.01, 37.8)], profile, seed=3, wind=(wind_mps, 270.0),
                       noise_floor_db=42.0)


def level_db(x):
    return 20 * np.log10(np.std(x) / float(bg.amplitude_rms(0.0)))


def test_steady_noise_renders_the_same_whatever_the_window():
    w = field_world(wind_mps=5.0)
    back = bg.Background(w)
    node = w.nodes[0]
    long = back.steady(node, 12_345, 5 * bg.RATE)
    part = back.steady(node, 12_345 + 2 * bg.RATE + 77, bg.RATE)
    assert np.allclose(long[2 * bg.RATE + 77:3 * bg.RATE + 77], part)


def test_steady_noise_is_pink_at_the_floor_and_wind_adds_low_rumble():
    calm = field_world(0.0)
    x = bg.Background(calm).steady(calm.nodes[0], 0, 20 * bg.RATE)
    assert level_db(x) == pytest.approx(42.0, abs=0.5)
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / bg.RATE)
    low, high = spec[(f > 100) & (f < 200)].mean(), spec[(f > 1000) & (f < 2000)].mean()
    assert 10 * np.log10(low / high) == pytest.approx(10.0, abs=1.5)       # 1/f: 10 dB a decade
    windy = field_world(10.0)
    y = bg.Background(windy).steady(windy.nodes[0], 0, 20 * bg.RATE)
    assert level_db(y) > level_db(x) + 6


def test_ideal_has_no_background_but_the_white_floor():
    w = bench_world([(48.0, 37.8)], "ideal", seed=3)
    back = bg.Background(w)
    assert not back.field and back.transients(w.nodes[0].id, 0, 86_400) == []
    assert not back.raining(1, 100.0)


def test_transients_are_drawn_per_node_and_hour_at_the_profile_rates():
    w = field_world(vehicle_per_h=10.0, thunder_per_h=0.0, door_per_h=0.0, animal_per_h=0.0,
                    work_per_h=0.0)
    back = bg.Background(w)
    a, b = w.nodes[0].id, w.nodes[1].id
    day = back.transients(a, 0.0, 86_400.0)
    assert 160 < len(day) < 330 and {t.kind for t in day} == {"vehicle"}
    # the same transients whatever stretch is asked for, and not the other node's
    assert [t for t in day if t.start_s < 7200] == [t for t in back.transients(a, 0.0, 7200.0)
                                                   if t.start_s < 7200]
    assert back.transients(b, 0.0, 86_400.0) != day
    spans = back.spans(a, 3600.0)
    assert all(0.0 <= s < e <= 3600.0 for s, e in spans)


@pytest.mark.parametrize("kind", sorted(bg.KINDS))
def test_each_transient_is_at_its_level(kind):
    rng = np.random.default_rng(1)
    tr = bg.Transient(0x101, kind, bg._variant(kind, rng), 0.0, bg.KINDS[kind].length_s[0], 60.0, 5)
    x = bg.waveform(tr)
    loud = x[np.abs(x) >= 0.1 * np.abs(x).max()]
    assert 20 * np.log10(np.sqrt(np.mean(loud ** 2)) / float(bg.amplitude_rms(0.0))) == pytest.approx(60.0, abs=0.5)


def test_rain_comes_in_episodes_about_its_share_of_the_time():
    w = field_world(rain_share=0.2)
    back = bg.Background(w)
    wet = np.mean([back.raining(1, t) for t in np.arange(0, 30 * 86_400, 600.0)])
    assert 0.1 < wet < 0.3


@pytest.mark.parametrize("cls", ["unknown", "explosion", "small_arms", "drone"])
def test_a_stand_in_is_reported_as_its_class_by_the_firmware(cls):
    w = field_world(4.0)
    back = bg.Background(w)
    first = 1_000 * bg.RATE
    x = back.steady(w.nodes[0], first, 4 * bg.RATE)
    x = feedplan.with_stand_ins(x, first, [(first / bg.RATE + 1.0, cls)], 42.0)
    found = fa.detect(x, first)
    assert [fa.CLASSES[d.cls] for d in found] == [cls]


def test_false_alarms_between_windows_follow_the_rates():
    w = field_world()
    back = bg.Background(w)
    ids = [n.id for n in w.nodes]
    alarms = feedplan.false_alarms(w, back, 36_000, 9, ids, {"explosion": 2.0})
    assert 20 < len(alarms) < 60 and {c for _, _, c in alarms} == {"explosion"}
    assert alarms == sorted(alarms)
    ideal = bench_world([(48.0, 37.8)], "ideal", seed=3)
    assert feedplan.false_alarms(ideal, bg.Background(ideal), 36_000, 9, [ideal.nodes[0].id]) == []


def test_the_measured_rates_are_by_model_wind_and_rain():
    assert fa.steady_rates("white") == {c: 0.0 for c in fa.CLASSES}
    for wind in fa.WIND_MPS:
        for rain in (False, True):
            assert set(fa.steady_rates("field", wind + 0.4, rain)) == set(fa.CLASSES)
    total = fa.per_node_hour(pr.FIELD, 4.0)
    assert set(total) >= set(fa.CLASSES)


def test_benchmarks_get_the_measured_background_reports():
    from linewatch.emulator.observe import background_reports
    w = field_world(4.0)
    reports = background_reports(w, 36_000, np.random.default_rng(1))
    expected = sum(fa.per_node_hour(w.profile, 4.0).values()) * 10 * len(w.nodes)
    assert expected > 0 and abs(len(reports) - expected) < 5 * np.sqrt(expected)
    ideal = bench_world([(48.0, 37.8)], "ideal", seed=3)
    assert background_reports(ideal, 36_000, np.random.default_rng(1)) == []
