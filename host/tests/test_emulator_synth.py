import numpy as np
import pytest

from linewatch.emulator import scenario as sc
from linewatch.emulator import synth
from linewatch.emulator.hearing import impulse_arrivals

BASE = """
[scenario]
name = "synth"
seed = 4
duration_s = 30
profile = "ideal"
[line]
vertices = [[48.0, 37.8], [48.05, 37.9]]
[nodes]
row_offsets_m = [-300]
spacing_m = 1000
end_m = 3000
clock_sources = { %s = 1 }
[[event]]
id = "boom"
type = "explosion"
time_s = 5
at = { along_m = 1500, offset_m = 800 }
[[event]]
id = "shots"
type = "small_arms"
time_s = 15
at = { along_m = 1000, offset_m = 200 }
shots = 3
[[event]]
id = "uav"
type = "drone"
time_s = 0
path = [{ along_m = 0, offset_m = 500 }, { along_m = 0, offset_m = -1500 }]
speed_mps = 40
altitude_m = 50
"""


def world_for(clock_source):
    s = sc.loads(BASE % clock_source, "synth.toml")
    world = s.build_world()
    return s, world, synth.Synthesizer(world, s.sources, s.faults)


def onset_sample(samples: np.ndarray, start: int = 0) -> int:
    """First sample where 16-sample energy jumps 20 dB over the window's first 0.5 s."""
    x = samples.astype(float)
    noise = np.mean(x[:8000] ** 2)
    energy = np.convolve(x ** 2, np.ones(16) / 16, mode="valid")   # energy[i]: samples i..i+15
    return int(np.flatnonzero(energy[start:] > 100 * noise)[0]) + start + 15


def test_calibration_0_dbfs_is_120_db_spl():
    assert synth.amplitude_rms(120.0) == pytest.approx(32767 / np.sqrt(2))
    assert 20 * np.log10(synth.amplitude_rms(94.0) * np.sqrt(2) / 32767) == pytest.approx(-26.0)
    noise = synth.noise_block(60.0, 16000, seed=1)
    assert noise.dtype == np.int16 and np.std(noise) == pytest.approx(synth.amplitude_rms(60.0), rel=0.05)


@pytest.mark.parametrize("clock_source", ["gps_pps", "ntp", "none"])
def test_energy_rises_at_the_arrival_stamped_by_the_node_clock(clock_source):
    s, world, sy = world_for(clock_source)
    node = world.nodes[1]
    arrival = next(a for a in sy.arrivals[node.id] if a.source_id == "boom")
    arrival_us = world.start_utc_us + arrival.arrival_s * 1e6
    window = next(w for w in sy.windows(node.id)
                  if w.true_start_us <= arrival_us < w.true_start_us + len(w.samples) * 62.5)
    k = onset_sample(window.samples)
    assert abs(k - window.sample_of_true_us(arrival_us)) <= 3           # right sample, true time
    stamped_us = window.node_start_us + k * 1e6 / synth.SAMPLE_RATE
    expected_us = node.clock.node_time_us(arrival_us)
    tolerance_us = 3 * 62.5 + 5 * node.clock.jitter_us
    assert abs(stamped_us - expected_us) <= tolerance_us                 # ± the node's clock
    if clock_source == "gps_pps":
        assert abs(stamped_us - arrival_us) < 250
    if clock_source == "none":
        assert abs(stamped_us - arrival_us) > 1000                       # free-running offset


def test_each_shot_of_a_burst_is_heard():
    s, world, sy = world_for("gps_pps")
    node = world.nodes[1]
    shots = [a for a in sy.arrivals[node.id] if a.source_id == "shots"]
    assert len(shots) == 3
    first = world.start_utc_us + shots[0].arrival_s * 1e6
    window = next(w for w in sy.windows(node.id)
                  if w.true_start_us <= first < w.true_start_us + len(w.samples) * 62.5)
    found, start = [], 0
    for a in shots:
        k = onset_sample(window.samples, start)
        found.append(k)
        start = k + 800                                                    # skip 50 ms
    expected = [window.sample_of_true_us(world.start_utc_us + a.arrival_s * 1e6) for a in shots]
    assert np.max(np.abs(np.array(found) - expected)) <= 3


def test_windows_cover_arrivals_only_and_are_contiguous_chunks():
    s, world, sy = world_for("gps_pps")
    node = world.nodes[3]                       # 3 km along: hears the drone only from 8 s on
    windows = list(sy.windows(node.id))
    spans = sy.spans(node.id)
    assert spans[0][0] > 1.0                                  # quiet stretches are not rendered
    for a in sy.arrivals[node.id]:
        assert any(lo < a.arrival_s < hi for lo, hi in spans)
    rendered = sum(len(w.samples) for w in windows) / synth.SAMPLE_RATE
    assert rendered == pytest.approx(sum(hi - lo for lo, hi in spans), abs=0.01)
    for a, b in zip(windows, windows[1:]):
        assert b.first_sample >= a.first_sample + len(a.samples)
        assert len(a.samples) <= synth.MAX_CHUNK_S * synth.SAMPLE_RATE
    assert windows[0].block().typecode == "h"
    again = list(synth.Synthesizer(world, s.sources, s.faults).windows(node.id))
    assert all(np.array_equal(x.samples, y.samples) for x, y in zip(windows, again))


def peak_hz(sy, node_id, at_s):
    samples = sy.render(node_id, int(at_s * synth.SAMPLE_RATE), 16000).astype(float)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.fft.rfftfreq(len(samples), 1 / synth.SAMPLE_RATE)[np.argmax(spectrum)]


def test_drone_sounds_at_its_blade_pass_frequency_with_doppler():
    s, world, sy = world_for("gps_pps")
    node = world.nodes[0]                       # at along 0, offset -300: under the drone's path
    c = 331.3 * np.sqrt(1 + 15 / 273.15)
    approaching, receding = peak_hz(sy, node.id, 8.0), peak_hz(sy, node.id, 30.0)
    assert 180.0 < approaching <= 180.0 * c / (c - 40.0) + 2
    assert 180.0 * c / (c + 40.0) - 2 <= receding < 180.0


def test_long_spans_come_as_contiguous_chunks():
    s, world, sy = world_for("gps_pps")
    node = world.nodes[0]                       # hears the drone for most of a minute
    windows = list(sy.windows(node.id))
    assert len(windows) >= 5
    for a, b in zip(windows, windows[1:]):
        assert b.first_sample == a.first_sample + len(a.samples)
        assert len(a.samples) == synth.MAX_CHUNK_S * synth.SAMPLE_RATE


@pytest.mark.parametrize("distance_m", [300.0, 3000.0, 8000.0])
def test_absorption_is_causal_and_an_explosion_ends_without_a_click(distance_m):
    rng = np.random.default_rng(1)
    template = synth.explosion_template(rng, 40.0)
    wave = synth.propagated(template, distance_m, 0.0)
    peak = np.abs(wave).max()
    # nothing leads the wavefront: a zero-phase filter rang before it, which wrapped round
    # the FFT to the end of the wave (a click the detector reported 0.8 s after the blast)
    tail = wave[len(template) - 160:]
    assert np.abs(tail).max() < 1e-3 * peak
    # a causal low-pass smears the front after the onset, never before it: the peak comes
    # within a few milliseconds (far away the front rises more slowly, as in air)
    assert np.argmax(np.abs(wave)) < 0.005 * synth.SAMPLE_RATE
    assert np.abs(template[-16:]).max() < 1e-3 * np.abs(template).max()
