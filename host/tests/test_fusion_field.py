"""Fusion where the air, the clocks and the nodes are not what the commission is told.

Reports are made from a true air (temperature, wind) that differs from what the engine is
configured with, with onset-picking noise, and with clocks that lie: a node with no time
source (its own idea of UTC, seconds off, saturated error), a node claiming GPS that is
50 ms off, a clock that steps or drifts. Each case states what must hold.
"""
import math
from dataclasses import replace

import numpy as np
import pytest

from linewatch.fusion import FusionConfig, FusionEngine, Report, speed_of_sound
from linewatch.fusion import merges
from linewatch.fusion.airmemory import FLOOR_SD, AirMemory
from linewatch.fusion.sound import wind_vector
from linewatch.fusion.tdoa import TdoaFix
from linewatch.geo import ContactLine, LocalFrame, haversine_m

LINE = ContactLine([(48.0, 37.0), (48.0, 37.5)])          # drawn west -> east: "L" is north
FRAME = LocalFrame(48.0, 37.0)
T0 = 1_800_000_000_000_000
SATURATED_US = 65_535          # the wire's clock error: "65.5 ms or worse"


def two_rows(count=16):
    nodes = {0x100 + i: (2000.0 + 1000.0 * i, 500.0) for i in range(count)}
    nodes.update({0x200 + i: (2500.0 + 1000.0 * i, -500.0) for i in range(count)})
    return nodes


class Field:
    """A line of nodes in a true air, reporting what they hear through their own clocks."""

    def __init__(self, nodes=None, temperature_c=15.0, wind=(0.0, 0.0), config=None, seed=1,
                 pick_us=300.0):
        self.nodes = nodes or two_rows()
        self.c = speed_of_sound(temperature_c)
        self.wind = wind_vector(*wind)
        self.engine = FusionEngine(LINE, config or FusionConfig())
        self.rng = np.random.default_rng(seed)
        self.pick_us = pick_us
        self.clocks = {}            # node -> (source, offset_us or callable(t_us), stated error)
        self.latest = {}
        self.evidence = 0

    def clock(self, node, source="gps_pps", offset_us=0.0, error_us=2):
        self.clocks[node] = (source, offset_us, error_us)

    def arrival_us(self, node, xy, t_us):
        dx, dy = np.subtract(self.nodes[node], xy)
        d = math.hypot(dx, dy)
        along = (self.wind[0] * dx + self.wind[1] * dy) / max(d, 1e-9)
        return t_us + d / (self.c + along) * 1e6

    def blast(self, xy, t_us, reach_m=10_000.0, event_class="explosion"):
        out = []
        for node, where in self.nodes.items():
            if math.dist(where, xy) > reach_m:
                continue
            true_us = self.arrival_us(node, xy, t_us) + self.rng.normal(0.0, self.pick_us)
            source, offset, error = self.clocks.get(node, ("gps_pps", 0.0, 2))
            onset = true_us + (offset(true_us) if callable(offset) else offset)
            self.evidence += 1
            lat, lon = FRAME.to_latlon(*where)
            out.append(Report(node, lat, lon, 0.0, event_class, int(onset), int(error), 0.9, 120.0, 200, 0,
                              25.0, self.evidence, int(true_us) + 700_000, clock_source=source))
        return out

    def feed(self, reports):
        for r in sorted(reports, key=lambda r: r.received_at_us):
            for incident in self.engine.add(r, r.received_at_us):
                self.latest[incident.id] = incident
        return self

    def close(self, after_us):
        for incident in self.engine.tick(after_us + 600_000_000):
            self.latest[incident.id] = incident
        return self

    def incidents(self):
        return [i for i in self.latest.values() if i.nodes]


def error_m(incident, xy):
    return haversine_m(incident.lat, incident.lon, *FRAME.to_latlon(*xy))


def inside_ellipse(incident, xy, margin_m=0.0):
    """The true place lies inside the incident's 95% ellipse grown by the margin."""
    e = incident.ellipse_95
    dx, dy = np.subtract(xy, FRAME.to_xy(incident.lat, incident.lon))
    a = math.radians(e.angle_deg)
    along = dx * math.cos(a) + dy * math.sin(a)
    across = -dx * math.sin(a) + dy * math.cos(a)
    return (along / (e.major_m + margin_m)) ** 2 + (across / (e.minor_m + margin_m)) ** 2 <= 1.0


BLASTS = [((4300.0, 300.0), 0), ((8800.0, -1200.0), 40), ((11500.0, 900.0), 80), ((6100.0, -200.0), 120),
          ((14200.0, 2500.0), 160)]


def test_nodes_with_no_time_source_form_no_incident_and_do_not_move_a_fix():
    world = Field()
    for node, offset in ((0x103, 2.4e6), (0x205, -17.0e6), (0x108, 31.0e6)):
        world.clock(node, "none", offset, SATURATED_US)
    for xy, t in BLASTS:
        world.feed(world.blast(xy, T0 + t * 1_000_000))
    world.close(T0 + 200_000_000)
    found = world.incidents()
    assert len(found) == len(BLASTS)
    for xy, t in BLASTS:
        [fix] = [i for i in found if abs(i.time_utc_us - T0 - t * 1e6) < 50_000]
        assert fix.fix == "tdoa" and error_m(fix, xy) < 5.0
        assert not {0x103, 0x205, 0x108} & set(fix.nodes)


@pytest.mark.parametrize("estimated", [True, False])
def test_an_air_nobody_told_fusion_is_estimated_from_a_blast_many_nodes_hear(estimated):
    """25 C and 6 m/s from 250 deg, the commission told 15 C and calm: with the air as nuisance
    unknowns the fix comes back near the truth and its ellipse holds it; taken as known, the
    same arrivals put it tens of metres off with an ellipse that does not."""
    config = FusionConfig() if estimated else FusionConfig(sound_speed_sd_mps=0.0, wind_sd_mps=0.0)
    world = Field(temperature_c=25.0, wind=(6.0, 250.0), config=config, pick_us=500.0)
    xy = (8300.0, 1800.0)
    world.feed(world.blast(xy, T0)).close(T0)
    [fix] = world.incidents()
    if estimated:
        assert len(fix.nodes) >= 16 and error_m(fix, xy) < 8.0 and inside_ellipse(fix, xy)
    else:
        assert error_m(fix, xy) > 15.0 or not inside_ellipse(fix, xy)


def test_a_node_whose_clock_keeps_disagreeing_is_flagged_and_never_costs_good_arrivals():
    """A node claiming GPS whose clock is 80 ms late: its nearest neighbours' arrivals are never
    thrown out for it, it forms no incident of its own, and after a few blasts fusion flags it
    with the offset it estimates and weighs its reports less."""
    bad = 0x106
    world = Field()
    world.clock(bad, "gps_pps", 80_000.0, 2)
    blasts = BLASTS + [((6800.0, 900.0), 200), ((5200.0, -900.0), 240)]
    for xy, t in blasts:
        world.feed(world.blast(xy, T0 + t * 1_000_000))
    world.close(T0 + 300_000_000)
    found = world.incidents()
    assert all(len(i.nodes) >= 3 for i in found)
    assert len(found) == len(blasts)
    for xy, t in blasts:
        [fix] = [i for i in found if abs(i.time_utc_us - T0 - t * 1e6) < 50_000]
        assert error_m(fix, xy) < 10.0
        nearest = sorted((n for n in world.nodes if n != bad), key=lambda n: math.dist(world.nodes[n], xy))[:4]
        assert set(nearest) <= set(fix.nodes), (xy, fix.nodes, fix.rejected_nodes)
    judged = world.engine.node_timing()[bad]
    assert judged["flagged"] and abs(judged["offset_us"] - 80_000) < 10_000
    assert not any(j["flagged"] for node, j in world.engine.node_timing().items() if node != bad)


# -- the air carried across fixes (fusion/airmemory.py) ---------------------------------------

BIG = (8300.0, 1800.0)              # heard by every node within 10 km
SMALL = [(7300.0, 100.0), (9800.0, -100.0), (6400.0, 50.0)]   # heard by the nodes within 1.3 km


def small_blasts(world, reach_m=1300.0):
    out = []
    for k, xy in enumerate(SMALL):
        reports = world.blast(xy, T0 + (60 + 40 * k) * 1_000_000, reach_m=reach_m)
        assert 4 <= len(reports) <= 5
        out.append((xy, reports))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_small_fixes_after_a_big_one_use_the_air_it_measured(seed):
    """25 C and 6 m/s from 250 deg, told 15 C and calm. Alone, each 4-5 node blast keeps the told
    air (too few arrivals to estimate it) and lands off; after the big blast, in the air it
    measured, every one lands nearer and inside its ellipse."""
    carried = Field(temperature_c=25.0, wind=(6.0, 250.0), seed=seed, pick_us=300.0)
    carried.feed(carried.blast(BIG, T0))
    alone_errors, carried_errors = [], []
    for xy, reports in small_blasts(carried):
        alone = Field(temperature_c=25.0, wind=(6.0, 250.0), seed=seed).feed(reports).close(T0)
        [fix] = alone.incidents()
        alone_errors.append(error_m(fix, xy))
        carried.feed(reports)
    carried.close(T0 + 200_000_000)
    for xy, _ in small_blasts(Field(seed=seed)):
        [fix] = [i for i in carried.incidents() if error_m(i, xy) < 500.0 and len(i.nodes) < 8]
        carried_errors.append(error_m(fix, xy))
        assert inside_ellipse(fix, xy, margin_m=2.0)
    assert sum(carried_errors) < 0.6 * sum(alone_errors), (carried_errors, alone_errors)


def fix_with_air(c_mps, wind, air_sd, prior):
    return TdoaFix(0.0, 0.0, 0.0, ((1.0, 0.0), (0.0, 1.0)), 5.0, 5, (0, 1, 2, 3, 4, 5, 6, 7), (),
                   wind=wind, c_mps=c_mps, air_sd=air_sd, prior=prior)


def test_a_lesson_moves_the_prior_nearby_and_fades_with_distance_and_time():
    told = FusionConfig().air
    memory = AirMemory()
    memory.learn("A-1", 48.0, 37.2, T0, fix_with_air(346.0, (4.0, -2.0), (0.5, 0.4, 0.4), told), 340.0)
    near = memory.prior(told, 340.0, 48.0, 37.21, T0 + 60_000_000)
    assert 344.5 < 340.0 + near.c_offset_mps < 346.0 and 3.0 < near.wind[0] < 4.0
    assert FLOOR_SD[0] <= near.c_sd_mps < told.c_sd_mps and FLOOR_SD[1] <= near.wind_sd_mps < told.wind_sd_mps
    far = memory.prior(told, 340.0, 48.0, 37.7, T0)                      # ~37 km away
    old = memory.prior(told, 340.0, 48.0, 37.2, T0 + 4 * 3600 * 1_000_000)
    for prior in (far, old):
        assert abs(prior.c_offset_mps) < 0.3 and abs(prior.wind[0]) < 0.3
    assert memory.prior(told, 340.0, 48.0, 37.21, T0, exclude={"A-1"}) == told


def test_a_refit_replaces_its_lesson_and_a_fix_without_air_teaches_nothing():
    told = FusionConfig().air
    memory = AirMemory()
    memory.learn("A-1", 48.0, 37.2, T0, fix_with_air(346.0, (0.0, 0.0), (0.5, 0.4, 0.4), told), 340.0)
    memory.learn("A-1", 48.0, 37.2, T0, fix_with_air(341.0, (0.0, 0.0), (0.5, 0.4, 0.4), told), 340.0)
    assert len(memory) == 1
    assert 340.5 < 340.0 + memory.prior(told, 340.0, 48.0, 37.2, T0).c_offset_mps < 341.5
    memory.learn("A-1", 48.0, 37.2, T0, fix_with_air(0.0, (0.0, 0.0), (0.0, 0.0, 0.0), told), 340.0)
    assert len(memory) == 0
    known = replace(told, c_sd_mps=0.0, wind_sd_mps=0.0)
    assert memory.prior(known, 340.0, 48.0, 37.2, T0) == known


# -- two fixes of one sound chosen as one (fusion/merges.py) -------------------------------------

def one_row(count=20):
    return {0x100 + i: (2000.0 + 700.0 * i, 500.0 + (37 * i) % 60) for i in range(count)}


@pytest.mark.parametrize("seed", [7, 8])
def test_a_blast_split_into_a_near_fix_and_a_far_phantom_is_one_incident(seed, monkeypatch):
    """One row, 6 m/s of wind nobody told: the blast's near nodes fit it ~60 m off, and 4-5 far
    arrivals on one side fit a place 6.2 km away along their asymptote (two incidents without
    the joint refit, and with the default reach of 5 km). Fitted together, both sets are one
    source: one incident, the far one gone."""
    monkeypatch.setattr(merges, "REACH_M", 7_000.0)
    world = Field(nodes=one_row(), temperature_c=25.0, wind=(6.0, 250.0), seed=seed, pick_us=800.0)
    xy = (8000.0 + 300 * seed, -2500.0)
    world.feed(world.blast(xy, T0, reach_m=9000.0)).close(T0)
    [fix] = world.incidents()
    assert error_m(fix, xy) < 100.0 and len(fix.nodes) >= 14


def test_two_blasts_heard_by_different_nodes_stay_two():
    """Two blasts 2 km and 1 s apart, each heard only by its own nearest nodes: no node in
    common and arrivals that agree pairwise, but one place does not fit both sets."""
    world = Field(seed=3)
    blasts = [((6300.0, 0.0), T0), ((8300.0, 100.0), T0 + 1_000_000)]
    world.feed([r for xy, t in blasts for r in world.blast(xy, t, reach_m=1000.0)])
    world.close(T0)
    found = sorted(world.incidents(), key=lambda i: i.time_utc_us)
    assert [i.fix for i in found] == ["tdoa", "tdoa"]
    for incident, (xy, _) in zip(found, blasts):
        assert error_m(incident, xy) < 10.0
