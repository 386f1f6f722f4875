"""Vehicles in the emulated world: wheeled and tracked, their sound heard through the node's
own detector, the ground's vibration on its accelerometer, and the scenario's keys."""
from array import array

import numpy as np
import pytest

from linewatch.emulator import ground as gr
from linewatch.emulator import scenario as sc
from linewatch.emulator import synth
from lwnode.detector import DetectorChain

BASE = """
[scenario]
name = "vehicles"
seed = 5
duration_s = 90
profile = "%s"
[line]
vertices = [[48.0, 37.8], [48.0, 37.9]]
[nodes]
row_offsets_m = [-300]
spacing_m = 1000
end_m = 2000
[environment]
noise_floor_db = 42
noise_floor_spread_db = 0
wind = { speed_mps = 2, from_deg = 270 }
[[event]]
id = "apc"
type = "vehicle"
%s
time_s = 5
path = [{ along_m = 600, offset_m = -270 }, { along_m = 1400, offset_m = -270 }]
speed_mps = 10
"""


def scenario(kind_line='kind = "tracked"', profile="field"):
    return sc.loads(BASE % (profile, kind_line), "vehicles.toml")


def test_kind_and_its_default_level():
    assert scenario().sources[0].kind == "tracked" and scenario().sources[0].level_db == 113.0
    wheeled = scenario("").sources[0]
    assert wheeled.kind == "wheeled" and wheeled.level_db == 105.0
    with pytest.raises(sc.ScenarioError, match=r"event\[0\]\.kind: 'tank' is not one of: wheeled, tracked"):
        scenario('kind = "tank"')


def test_ground_vibration_falls_with_distance_and_is_felt_near_the_road():
    near, far = gr.vibration_mg("tracked", [10.0, 50.0, 200.0]), gr.vibration_mg("wheeled", [10.0])
    assert near[0] == pytest.approx(40.0) and near[0] > near[1] > 4 * near[2] and far[0] < near[0] / 5
    s = scenario()
    world = s.build_world()
    ground = gr.Ground(world, s.sources)
    node = world.nodes[1]                     # 1,000 m along, 30 m from the road
    t_near = 5.0 + 400.0 / 10.0               # the vehicle passes it
    assert ground.vibration_mg(node, t_near) > 2.0 > ground.vibration_mg(node, 2.0) == 0.0
    accel = gr.Accelerometer(node, 5, world.start_utc_us, ground)
    readings = lambda t: np.array([accel.read(world.start_utc_us + int(t * 1e6) + k, None) for k in range(200)])
    assert np.std(readings(t_near)[:, 2]) > 2.0 * np.std(readings(2.0)[:, 2])
    assert abs(np.mean(readings(2.0), axis=0) - gr.AT_REST).max() < 2.0    # at rest, with noise


def test_a_tracked_vehicle_passing_is_heard_by_the_nodes_detector():
    s = scenario()
    world = s.build_world()
    syn = synth.Synthesizer(world, s.sources, s.faults)
    node = world.nodes[1]
    accel = gr.Accelerometer(node, 5, world.start_utc_us, syn.ground)
    chain = DetectorChain(synth.SAMPLE_RATE, 512, 31)
    windows = list(syn.windows(node.id))          # one span, in contiguous chunks
    first = windows[0].first_sample
    x = np.concatenate([w.samples for w in windows])
    found = []
    for i in range(0, len(x) - 511, 512):
        found += chain.feed_audio(array("h", x[i:i + 512].tobytes()), i)
        a = accel.read(world.start_utc_us + (first + i + 512) * 1_000_000 // synth.SAMPLE_RATE, None)
        found += chain.feed_accel(a[0], a[1], a[2], i + 512)
    vehicles = [d for d in found if d.cls == 4]
    assert len(vehicles) == 1, found
    onset_s = (first + vehicles[0].onset_index) / synth.SAMPLE_RATE
    assert 5.0 <= onset_s <= 45.0 and vehicles[0].duration_ms > 15000
