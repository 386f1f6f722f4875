"""One straight row of nodes cannot tell a source from its mirror image across the row: fusion
says so (fix "mirror": two places, side undecided) instead of publishing one of them as a fix."""
import math

import numpy as np
import pytest

from linewatch.commission import wording
from linewatch.emulator import gates
from linewatch.fusion import FusionConfig, FusionEngine, Report, speed_of_sound, tdoa
from linewatch.geo import ContactLine, LocalFrame, haversine_m

C = speed_of_sound(15.0)
LINE = ContactLine([(48.0, 37.0), (48.0, 37.3)])          # drawn west -> east: "L" is north (+y)
FRAME = LocalFrame(48.0, 37.0)
# One straight row 300 m south of the line (side R), 1 km apart, as `linewatch emulate` lays it.
ROW = {0x100 + i: (1000.0 * i, -300.0) for i in range(12)}
OFF_ROW = {0x200: (4500.0, -1300.0), 0x201: (6500.0, -1300.0)}   # two nodes 1 km behind the row
T0 = 1_800_000_000_000_000


def reports(xy, nodes, survey_m=0.0, seed=1, first=1):
    """One blast at local xy heard by these nodes (registered positions off by survey_m)."""
    rng = np.random.default_rng(seed)
    out = []
    for k, (node, where) in enumerate(sorted(nodes.items())):
        onset = T0 + math.dist(where, xy) / C * 1e6
        lat, lon = FRAME.to_latlon(*(np.array(where) + rng.normal(0.0, survey_m, 2)))
        out.append(Report(node, lat, lon, 100.0, "explosion", int(onset), 1000, 0.9, 120.0, 200, 0, 20.0,
                          first + k, int(onset) + 500_000))
    return out


def fuse(items, engine=None):
    engine = engine or FusionEngine(LINE, FusionConfig())
    latest = {}
    for r in sorted(items, key=lambda r: (r.received_at_us, r.node_id)):
        for incident in engine.add(r, r.received_at_us):
            latest[incident.id] = incident
    return engine, [i for i in latest.values() if i.reports]


def nearest_place_m(incident, xy):
    return min(haversine_m(*p, *FRAME.to_latlon(*xy)) for p in incident.places())


def test_a_straight_row_gives_the_reflection_as_the_mirror_even_when_the_survey_tells_them_apart():
    """Survey errors of a few metres make one image fit 'better' by chance: the fix still has
    its mirror image, reflected across the row."""
    row = np.array(list(ROW.values()))
    src = np.array([4300.0, 1000.0])
    rng = np.random.default_rng(4)
    t = np.hypot(*(row - src).T) / C + rng.normal(0.0, 0.0005, len(row))
    surveyed = row + rng.normal(0.0, 3.0, row.shape)
    fix = tdoa.locate(surveyed, t, np.full(len(t), 0.001), C)
    assert fix.mirror is not None
    places = sorted([(fix.x, fix.y), (fix.mirror.x, fix.mirror.y)], key=lambda p: p[1])
    assert math.dist(places[0], (4300.0, -1600.0)) < 30.0 and math.dist(places[1], (4300.0, 1000.0)) < 30.0


def test_a_row_with_a_bend_tells_the_images_apart():
    bent = np.array([(0.0, 0.0), (1000.0, 0.0), (2000.0, 0.0), (3000.0, 0.0), (4000.0, 200.0), (5000.0, 400.0)])
    src = np.array([2300.0, 1500.0])
    t = np.hypot(*(bent - src).T) / C
    fix = tdoa.locate(bent, t, np.full(len(t), 0.001), C)
    assert fix.mirror is None and math.dist((fix.x, fix.y), src) < 1.0


def test_a_blast_beyond_the_line_heard_by_one_row_is_two_places_and_no_side():
    """The seed-5 case of `linewatch emulate`: a blast 1.3 km beyond the line (L), its mirror
    1.9 km on the row's side (R). Before, one of them was published as a fix with a 54 m
    ellipse and a side: a confident wrong place half the time."""
    src = (5200.0, 1300.0)
    _, [incident] = fuse(reports(src, ROW, survey_m=3.0))
    assert incident.fix == "mirror"
    assert incident.side is None and incident.side_probability is None
    assert nearest_place_m(incident, src) < 30.0
    images = sorted(FRAME.to_xy(*p)[1] for p in incident.places())
    assert images[0] == pytest.approx(-1900.0, abs=30.0) and images[1] == pytest.approx(1300.0, abs=30.0)
    published = incident.to_json()
    assert published["mirror"]["side"] in ("L", "R") and published["mirror"]["ellipse_95"]["major_m"] > 0
    assert not gates.is_fix(published)          # the scorer's word: it claims no single place
    words = wording.fix_words(published)
    assert words.startswith("one of two places at ") and " or " in words and words.count(",") == 2


def test_both_images_on_one_side_of_the_line_keep_that_side():
    """A blast 150 m from the line on the row's side: its mirror (450 m) is on that side too."""
    src = (5200.0, -150.0)
    _, [incident] = fuse(reports(src, ROW))
    assert incident.fix == "mirror"
    assert incident.side == "R" and incident.side_probability > 0.99
    assert nearest_place_m(incident, src) < 5.0


def test_images_close_together_are_one_fix_whose_ellipse_holds_both():
    """A blast 60 m off the row: its mirror is 120 m away, one place for an operator; the
    ellipse grows to hold both."""
    src = (5200.0, -240.0)
    _, [incident] = fuse(reports(src, ROW))
    assert incident.fix == "tdoa" and incident.mirror is None
    published = incident.to_json()
    for y in (-240.0, -360.0):
        assert gates.inside_ellipse(published, *FRAME.to_latlon(5200.0, y), margin_m=0.0)
    assert incident.side == "R" and incident.side_probability > 0.99


def test_nodes_off_the_row_decide_which_image():
    """A mirror incident refitted with two nodes 1 km behind the row: one place, the right one
    (one such node is not enough: the wind across the row, a nuisance unknown of the fit, can
    absorb its misfit at the wrong image)."""
    src = (5200.0, 1300.0)
    engine, [incident] = fuse(reports(src, ROW))
    assert incident.fix == "mirror"
    _, [incident] = fuse(reports(src, OFF_ROW, first=100), engine)
    assert incident.fix == "tdoa" and incident.mirror is None
    assert haversine_m(incident.lat, incident.lon, *FRAME.to_latlon(*src)) < 5.0
    assert incident.side == "L" and incident.side_probability > 0.99


def test_emulate_lays_one_row_by_default_and_two_with_rows_2():
    import argparse
    from linewatch.commands.emulate import load_scenario
    for rows in (1, 2):
        args = argparse.Namespace(scenario=None, seed=5, hours=0.1, line_km=5.0, rows=rows, profile=None)
        layout = load_scenario(args).layout
        assert len(layout.row_offsets_m) == rows


def at_node(node, xy, onset_us, seq=500, event_class="explosion"):
    lat, lon = FRAME.to_latlon(*xy)
    return Report(node, lat, lon, 100.0, event_class, int(onset_us), 1000, 0.9, 120.0, 200, 0, 20.0,
                  seq, int(onset_us) + 500_000)


def test_a_mirror_incident_takes_only_what_its_first_place_predicts():
    """Its second place is a guess the row cannot rule out, not a place to gather reports at:
    gating on either place let one blast's incident take another blast's reports where its
    second place predicted them (test_cluster_failover: 'incident mixes blasts {3, 5}')."""
    src = (5200.0, 1300.0)
    row = {n: ROW[n] for n in (0x104, 0x105, 0x106)}
    engine, [incident] = fuse(reports(src, row))
    assert incident.fix == "mirror"
    first = FRAME.to_xy(incident.lat, incident.lon)
    second = FRAME.to_xy(incident.mirror.lat, incident.mirror.lon)
    state = engine._ledger.by_id[incident.id]
    node_xy = (4500.0, -1300.0)
    for place, predicted in ((first, True), (second, False)):
        onset = incident.time_utc_us + math.dist(place, node_xy) / C * 1e6
        report = at_node(0x300, node_xy, onset)
        assert (engine._fixes.fitting_fix(report, [state]) is state) is predicted, place


def test_silent_nodes_off_the_row_refute_one_image():
    """Nodes of a second row that listen but stay silent when the wrong image would have been
    heard there refute it: one place, the side decided, before their own reports arrive."""
    src = (5200.0, 1300.0)
    second_row = {0x300: (4500.0, -1700.0), 0x301: (5500.0, -1700.0), 0x302: (6000.0, -1700.0)}
    engine = FusionEngine(LINE, FusionConfig())
    for k, (node, xy) in enumerate(sorted(second_row.items())):      # listening: heard earlier
        onset = T0 - int(200e6) + k * int(30e6)
        engine.add(at_node(node, xy, onset, seq=1, event_class="unknown"), onset + 500_000)
    row = {n: ROW[n] for n in (0x104, 0x105, 0x106)}
    _, [incident] = fuse(reports(src, row), engine)
    assert incident.fix == "tdoa" and incident.mirror is None
    assert haversine_m(incident.lat, incident.lon, *FRAME.to_latlon(*src)) < 5.0
    assert incident.side == "L"
    # ... and their own reports, later, join it
    _, [incident] = fuse(reports(src, second_row, first=100), engine)
    assert incident.fix == "tdoa" and len(incident.nodes) == 6


def test_a_report_heard_before_a_blasts_sound_could_arrive_is_not_kept_as_its_echo():
    """A lone report no source takes is kept as rejected by the fix it may be an echo of; an
    echo comes after the direct sound, so a report from before the fix's sound could reach its
    node is another sound (test_cluster_failover: a blast's report, 13 s early, was kept by
    two other blasts' incidents: 'incident mixes blasts {0, 5}'). It stays a detection."""
    src = (3000.0, 800.0)
    nodes = {n: ROW[n] for n in range(0x100, 0x105)} | {0x200: OFF_ROW[0x200]}
    engine, [blast] = fuse(reports(src, nodes))
    assert blast.fix == "tdoa" and len(blast.nodes) == 6
    far = ROW[0x10b]
    arrives_us = T0 + math.dist(far, src) / C * 1e6            # 23.7 s after the blast
    early = at_node(0x10b, far, arrives_us - 11e6)
    changed = engine.add(early, early.received_at_us)
    held = engine.incident(blast.id)
    assert early.node_id not in held.rejected_nodes and len(held.reports) == 6
    # ... while one after the sound's arrival (an echo) is kept by it as rejected
    echo = at_node(0x10a, ROW[0x10a], T0 + math.dist(ROW[0x10a], src) / C * 1e6 + 1.5e6, seq=501)
    engine.add(echo, echo.received_at_us)
    assert 0x10a in engine.incident(blast.id).rejected_nodes
