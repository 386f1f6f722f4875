"""Wind: sound goes at c + w.u along each ray; with the wind known the fix is exact again."""
import math

import numpy as np
import pytest

from linewatch.fusion import FusionConfig, FusionEngine, Report, crlb, tdoa
from linewatch.fusion.sound import speed_of_sound, travel_time_s, wind_vector
from linewatch.geo import ContactLine, LocalFrame, haversine_m

C = speed_of_sound(8.0)
WIND = wind_vector(3.0, 270.0)          # 3 m/s from the west: blowing east
NODES = np.array([[0, 0], [1000, 0], [2000, 0], [0, 1000], [1000, 1000], [2000, 1000]], float)


def windy_arrivals(source, wind, t0=2.0, nodes=NODES):
    return t0 + travel_time_s(nodes[:, 0] - source[0], nodes[:, 1] - source[1], C, wind)


def test_wind_from_the_west_blows_east_and_calm_is_zero():
    assert WIND == pytest.approx((3.0, 0.0), abs=1e-12)
    assert wind_vector(5.0, 0.0) == pytest.approx((0.0, -5.0), abs=1e-12)    # northerly blows south
    assert wind_vector(0.0, 123.0) == (0.0, 0.0)
    with pytest.raises(ValueError):
        wind_vector(-1.0, 0.0)
    with pytest.raises(ValueError):
        FusionConfig(wind_speed_mps=float("nan"))


@pytest.mark.parametrize("source", [(700.0, 400.0), (1500.0, 2500.0), (-3000.0, -2000.0)])
def test_exact_windy_arrivals_give_the_source_within_centimetres_when_the_wind_is_known(source):
    t = windy_arrivals(source, WIND)
    fix = tdoa.locate(NODES, t, np.full(6, 1e-3), C, wind=WIND)
    assert math.dist((fix.x, fix.y), source) < 0.02
    assert fix.t0_s == pytest.approx(2.0, abs=1e-6) and fix.rejected == ()
    assert tdoa.predicted_arrival_s(fix, NODES[:, 0], NODES[:, 1], C) == pytest.approx(t, abs=1e-7)
    ignored = tdoa.locate(NODES, t, np.full(6, 1e-3), C)
    assert math.dist((ignored.x, ignored.y), source) > 1.0        # the error the wind model removes


def test_calm_wind_gives_exactly_the_old_fix():
    t = windy_arrivals((700.0, 400.0), WIND)                        # any data will do
    a = tdoa.locate(NODES, t, np.full(6, 1e-3), C)
    b = tdoa.locate(NODES, t, np.full(6, 1e-3), C, wind=(0.0, 0.0))
    assert (a.x, a.y, a.t0_s, a.cov_xy) == (b.x, b.y, b.t0_s, b.cov_xy)


def test_windy_covariance_matches_the_cramer_rao_bound_with_that_wind():
    source = (1500.0, 2500.0)
    fix = tdoa.locate(NODES, windy_arrivals(source, (8.0, -6.0)), np.full(6, 1e-3), C, wind=(8.0, -6.0))
    bound = crlb.position_bound(NODES, source, 1e-3, C, (8.0, -6.0))
    assert np.allclose(fix.covariance, bound, rtol=1e-3, atol=1e-9)
    assert not np.allclose(bound, crlb.position_bound(NODES, source, 1e-3, C), rtol=1e-3)


LINE = ContactLine([(48.0, 37.0), (48.0, 37.3)])
FRAME = LocalFrame(48.0, 37.0)
ENGINE_NODES = {0x100 + i: (2000.0 + 1000.0 * i, 500.0) for i in range(8)}
ENGINE_NODES.update({0x200 + i: (2500.0 + 1000.0 * i, -500.0) for i in range(8)})
T0 = 1_800_000_000_000_000


def _blast_reports(xy, t_us, speed, from_deg):
    reports = []
    for k, (node, pos) in enumerate(sorted(ENGINE_NODES.items())):
        lat, lon = FRAME.to_latlon(*pos)
        dx, dy = pos[0] - xy[0], pos[1] - xy[1]
        onset = int(round(t_us + float(travel_time_s(dx, dy, C, wind_vector(speed, from_deg))) * 1e6))
        reports.append(Report(node, lat, lon, 100.0, "explosion", onset, 1000, 0.9, 120.0, 200, 0, 20.0,
                              k + 1, onset + 500_000))
    return sorted(reports, key=lambda r: (r.onset_utc_us, r.node_id))


@pytest.mark.parametrize("configured", [True, False])
def test_the_engine_fixes_a_windy_blast_within_a_metre_when_the_wind_is_configured(configured):
    engine = FusionEngine(LINE, FusionConfig(temperature_c=8.0))
    if configured:
        engine.set_wind(6.0, 300.0)
    source = (6300.0, 2000.0)
    latest = {}
    for r in _blast_reports(source, T0, 6.0, 300.0):
        for incident in engine.add(r, r.received_at_us):
            latest[incident.id] = incident
    [incident] = [i for i in latest.values() if i.reports]
    error = haversine_m(incident.lat, incident.lon, *FRAME.to_latlon(*source))
    if configured:
        assert incident.fix == "tdoa" and len(incident.nodes) == 16 and error < 0.05
    else:
        assert error > 5.0
