"""TDOA fix, its bound and its error ellipse on exact geometry."""
import math

import numpy as np
import pytest

from linewatch.fusion import crlb, tdoa
from linewatch.fusion.ellipse import error_ellipse
from linewatch.fusion.hyperbola import hyperbola

C = 343.0
NODES = np.array([[0, 0], [1000, 0], [2000, 0], [0, 1000], [1000, 1000], [2000, 1000]], float)


def arrivals(source, t0=2.0, nodes=NODES):
    return t0 + np.hypot(*(nodes - np.asarray(source, float)).T) / C


@pytest.mark.parametrize("source", [(700.0, 400.0), (1500.0, 2500.0), (-3000.0, -2000.0)])
def test_exact_arrivals_give_the_source_within_centimetres(source):
    fix = tdoa.locate(NODES, arrivals(source), np.full(6, 1e-3), C)
    assert math.dist((fix.x, fix.y), source) < 0.02
    assert fix.t0_s == pytest.approx(2.0, abs=1e-6)
    assert fix.rejected == ()


def test_an_outlier_arrival_is_rejected_and_the_fix_stays_exact():
    t = arrivals((700.0, 400.0))
    t[4] += 0.25                              # an echo picked instead of the direct blast
    fix = tdoa.locate(NODES, t, np.full(6, 1e-3), C)
    assert fix.rejected == (4,)
    assert math.dist((fix.x, fix.y), (700.0, 400.0)) < 0.02


def test_three_arrivals_are_fitted_exactly_and_nothing_is_rejected():
    fix = tdoa.locate(NODES[[0, 2, 4]], arrivals((900.0, 300.0), nodes=NODES[[0, 2, 4]]), np.full(3, 1e-3), C)
    assert fix.dof == 0 and math.dist((fix.x, fix.y), (900.0, 300.0)) < 0.02


def test_fewer_than_three_arrivals_give_no_fix():
    assert tdoa.locate(NODES[:2], [0.0, 0.1], [1e-3, 1e-3], C) is None


def test_a_straight_row_reports_the_mirror_solution():
    row = np.array([[i * 1000.0, 0.0] for i in range(6)])
    fix = tdoa.locate(row, arrivals((2500.0, -3000.0), nodes=row), np.full(6, 1e-3), C)
    assert fix.mirror is not None
    assert {round(fix.y), round(fix.mirror.y)} == {-3000, 3000}


def test_the_mirror_added_later_is_the_one_locate_gives():
    """A search fits without the mirror and asks for it only for the fix it keeps."""
    row = np.array([[i * 1000.0, 0.0] for i in range(6)])
    t, sigma = arrivals((2500.0, -3000.0), nodes=row), np.full(6, 1e-3)
    plain = tdoa.locate(row, t, sigma, C, mirror=False)
    assert plain.mirror is None
    later = tdoa.with_mirror(plain, row, t, sigma, C)
    whole = tdoa.locate(row, t, sigma, C)
    assert later.mirror is not None
    assert math.hypot(later.mirror.x - whole.mirror.x, later.mirror.y - whole.mirror.y) < 1e-3
    assert (later.x, later.y, later.used) == (whole.x, whole.y, whole.used)


def test_fix_covariance_matches_the_cramer_rao_bound_at_the_source():
    source = (700.0, 400.0)
    fix = tdoa.locate(NODES, arrivals(source), np.full(6, 1e-3), C)
    bound = crlb.position_bound(NODES, source, 1e-3, C)
    assert np.allclose(fix.covariance, bound, rtol=1e-3, atol=1e-9)


def test_the_bound_grows_with_timing_error_and_distance():
    near = crlb.rms_error_bound(NODES, (1000.0, 500.0), 1e-3, C)
    assert crlb.rms_error_bound(NODES, (1000.0, 500.0), 1e-2, C) == pytest.approx(10 * near)
    assert crlb.rms_error_bound(NODES, (1000.0, 6000.0), 1e-3, C) > 10 * near


def test_error_ellipse_axes_and_angle():
    ellipse = error_ellipse(np.array([[100.0, 0.0], [0.0, 25.0]]))
    assert ellipse.major_m == pytest.approx(math.sqrt(5.991464547 * 100.0))
    assert ellipse.minor_m == pytest.approx(math.sqrt(5.991464547 * 25.0))
    assert ellipse.angle_deg == pytest.approx(0.0, abs=1e-9) or ellipse.angle_deg == pytest.approx(180.0)
    rotated = error_ellipse(np.array([[25.0, 0.0], [0.0, 100.0]]))
    assert rotated.angle_deg == pytest.approx(90.0)


def test_two_arrivals_give_the_hyperbola_vertex_between_the_nodes():
    a, b = (0.0, 0.0), (1000.0, 0.0)
    source = (800.0, 1500.0)
    ta, tb = (math.dist(a, source) / C, math.dist(b, source) / C)
    hyp = hyperbola(a, b, ta, tb, C)
    assert 500.0 < hyp.x < 1000.0 and hyp.y == pytest.approx(0.0)
    # every sampled point on the branch has the measured range difference
    for p in hyp.branch:
        assert math.dist(p, a) - math.dist(p, b) == pytest.approx(hyp.range_difference_m, abs=1e-6)


def test_three_arrivals_are_solved_in_closed_form_even_from_a_far_start():
    nodes = np.array([(0.0, 0.0), (1000.0, 0.0), (500.0, 1000.0)])
    source, t0 = np.array([300.0, 2500.0]), 1.5
    t = t0 + np.hypot(*(nodes - source).T) / C
    exact = tdoa.exact_three(nodes, t * C)
    assert any(math.hypot(x - 300.0, y - 2500.0) < 1e-6 and abs(s / C - t0) < 1e-9 for x, y, s in exact)
    # A start 9 km off along the asymptotes still ends at the source.
    fix = tdoa.locate(nodes, t, [0.001] * 3, C, start=(-6000.0, 9000.0, t0 - 30.0))
    assert math.hypot(fix.x - 300.0, fix.y - 2500.0) < 0.01
