"""Blasts heard by only their 4 nearest nodes, among other blasts and lone reports: any three
arrivals fit some source exactly, so the engine must find the real 4-node sources, not
phantoms made of arrivals of different sounds."""
import math
import random

import numpy as np
import pytest

from linewatch.fusion import FusionConfig, FusionEngine, Report
from linewatch.fusion.sound import speed_of_sound
from linewatch.geo import ContactLine, LocalFrame

FRAME = LocalFrame(48.0, 37.0)
C = speed_of_sound(8.0)
NODES = {0x100 + i: (1000.0 * i, 500.0) for i in range(40)}
NODES.update({0x200 + i: (1000.0 * i + 500.0, -500.0) for i in range(40)})
LINE = ContactLine([FRAME.to_latlon(-1000.0, 0.0), FRAME.to_latlon(41000.0, 0.0)])
T0 = 1_800_000_000_000_000


def _report(node, event_class, onset_us, received_us):
    lat, lon = FRAME.to_latlon(*NODES[node])
    return Report(node, lat, lon, 0.0, event_class, onset_us, 1000, 0.8, -10.0, 100, 0, 20.0, None, received_us)


def _workload(rng, blasts, lone_per_s, seconds):
    """(delivery time us, report): each blast heard by its 4 nearest nodes, delivered 150 ms
    after the onset; lone reports of any class from random nodes."""
    out = []
    ids = sorted(NODES)
    xy = np.array([NODES[n] for n in ids])
    for emitted_s, (x, y) in blasts:
        distance = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
        for k in np.argsort(distance)[:4]:
            onset = T0 + int((emitted_s + distance[k] / C + rng.gauss(0.0, 3e-4)) * 1e6)
            out.append((onset + 150_000, _report(ids[k], "explosion", onset, onset + 150_000)))
    for k in range(int(lone_per_s * seconds)):
        delivered = T0 + int(k / lone_per_s * 1e6)
        onset = delivered - int(rng.uniform(0.15, 0.2) * 1e6)
        cls = rng.choice(("explosion", "small_arms", "vehicle", "drone"))
        out.append((delivered, _report(rng.choice(ids), cls, onset, delivered)))
    return sorted(out, key=lambda item: item[0])


@pytest.mark.parametrize("lone_per_s", [
    0.0,
    13.0,       # the incident_latency bench's density of lone reports
])
@pytest.mark.parametrize("deferred", [False, True])
def test_three_blasts_half_a_second_apart_among_lone_reports_are_each_located(lone_per_s, deferred):
    """deferred: as the service runs fusion, the wide searches settled after each report."""
    rng = random.Random(5)
    blasts = [(1.0, (8300.0, 120.0)), (1.5, (19700.0, -260.0)), (2.0, (31200.0, 310.0))]
    engine = FusionEngine(LINE, FusionConfig(temperature_c=8.0))
    engine.defer_wide = deferred
    latest = {}
    parked = 0
    for delivered, report in _workload(rng, blasts, lone_per_s, 6.0):
        for incident in engine.add(report, delivered):
            latest[incident.id] = incident
        parked = max(parked, engine.parked())
        for incident in engine.settle(delivered, limit=engine.parked()):
            latest[incident.id] = incident
    assert (parked > 0) == deferred
    fixes = [i for i in latest.values() if i.fix == "tdoa" and i.nodes]
    for emitted_s, source in blasts:
        errors = [math.hypot(*np.subtract(FRAME.to_xy(i.lat, i.lon), source)) for i in fixes
                  if abs(i.time_utc_us - T0 - emitted_s * 1e6) < 50_000]
        assert errors and min(errors) < 5.0, "blast at %s not located: %s" % (source, errors)


def test_seeds_whose_arrivals_fit_one_source_are_tried_before_phantom_seeds():
    """The pre-fit (cluster._ranked_seeds) puts a seed whose arrivals fit one source ahead of
    a cell listed before it where other arrivals merely agree within the coarse window."""
    from linewatch.fusion import cluster
    config = FusionConfig(temperature_c=8.0)
    c = speed_of_sound(8.0)
    source = (1200.0, 700.0)
    nodes = [(0.0, 0.0), (2000.0, 0.0), (0.0, 2000.0), (2000.0, 2000.0), (4000.0, 1000.0)]
    late = [0.0003, -0.0002, 0.0, 0.0001, -0.0003]  # picking noise
    loose = [0.08, -0.06, 0.11, -0.09, 0.03]        # lone reports 3 s later, not one sound
    arrivals = []
    for k, (x, y) in enumerate(nodes):
        report = Report(0x100 + k, 0.0, 0.0, 0.0, "explosion", 0, 1000, 0.9, 0.0, 100, 0, 20.0, None, 0)
        travel = math.hypot(x - source[0], y - source[1]) / c
        for t in (1.0 + travel + late[k], 4.0 + travel + loose[k]):
            arrivals.append(cluster.Arrival(report, x, y, t, cluster.timing_sigma_s(report, config)))
    real = (source[0] + 30.0, source[1] - 20.0, 1.0, 0.4)
    phantom = (source[0] - 40.0, source[1] + 25.0, 4.0, 0.4)
    seeds, plausible = cluster._ranked_seeds(arrivals, [phantom, real], c, config)
    assert seeds == [real, phantom] and plausible == 1
    three = [a for a in arrivals if a.report.node_id < 0x103]
    seeds, plausible = cluster._ranked_seeds(three, [phantom, real], c, config)
    assert seeds == [phantom, real] and plausible == 0      # three arrivals prove nothing



def test_deferred_wide_searches_are_bounded(monkeypatch):
    """A service that never has a moment without frames waiting parks at most MAX_PARKED."""
    from linewatch.fusion import association
    monkeypatch.setattr(association, "MAX_PARKED", 5)
    rng = random.Random(9)
    engine = FusionEngine(LINE, FusionConfig(temperature_c=8.0))
    engine.defer_wide = True
    for delivered, report in _workload(rng, [], 13.0, 6.0):
        engine.add(report, delivered)
    assert engine.parked() == 5 and engine.wide_skipped > 0
