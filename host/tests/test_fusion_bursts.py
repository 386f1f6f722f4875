"""Bursts: several shots from one place within seconds are one incident, not one per shot."""
import math

import pytest

from linewatch.fusion import FusionConfig, FusionEngine, Report, speed_of_sound
from linewatch.geo import ContactLine, LocalFrame

C = speed_of_sound(15.0)
LINE = ContactLine([(48.0, 37.0), (48.0, 37.3)])
FRAME = LocalFrame(48.0, 37.0)
NODES = {0x100 + i: (2000.0 + 1000.0 * i, 500.0) for i in range(8)}
NODES.update({0x200 + i: (2500.0 + 1000.0 * i, -500.0) for i in range(8)})
T0 = 1_800_000_000_000_000


class Desk:
    def __init__(self, deferred=False, config=None):
        """deferred: as the service runs fusion (defer_wide), with no idle moment before the
        last report: the deferred searches are settled only then."""
        self.engine = FusionEngine(LINE, config or FusionConfig())
        self.engine.defer_wide = deferred
        self.evidence = 0
        self.latest = {}

    def shots(self, xy, t_us, count, interval_s, nodes, event_class="small_arms"):
        """One report per node per shot, as the nodes would deliver them (by arrival time)."""
        out = []
        for k in range(count):
            for node in nodes:
                self.evidence += 1
                lat, lon = FRAME.to_latlon(*NODES[node])
                onset = int(t_us + k * interval_s * 1e6 + math.dist(NODES[node], xy) / C * 1e6)
                cls = event_class(k) if callable(event_class) else event_class
                out.append(Report(node, lat, lon, 100.0, cls, onset, 1000, 0.9, 110.0, 20, 0, 20.0,
                                  self.evidence, onset + 300_000))
        return out

    def deliver(self, reports):
        for r in sorted(reports, key=lambda r: r.received_at_us):
            for inc in self.engine.add(r, r.received_at_us):
                self.latest[inc.id] = inc
        for inc in self.engine.settle(max(r.received_at_us for r in reports), limit=self.engine.parked()):
            self.latest[inc.id] = inc
        for inc in self.engine.tick(max(r.received_at_us for r in reports) + 120_000_000):
            self.latest[inc.id] = inc

    def live(self):
        """Incidents that still hold reports (a withdrawn one is published empty)."""
        return [i for i in self.latest.values() if i.reports]


@pytest.mark.parametrize("deferred", [False, True])
def test_a_five_shot_burst_is_one_incident_with_every_shot(deferred):
    desk = Desk(deferred)
    reports = desk.shots((4000.0, 200.0), T0, 5, 0.2, [0x101, 0x102, 0x103, 0x201, 0x202])
    desk.deliver(reports)
    [burst] = desk.live()
    assert burst.fix == "tdoa" and burst.shots == 5
    assert burst.to_json()["shots"] == 5
    assert sorted(burst.reports) == sorted(r.evidence_id for r in reports)
    assert math.dist(FRAME.to_xy(burst.lat, burst.lon), (4000.0, 200.0)) < 1.0
    assert burst.time_utc_us == pytest_approx_us(T0)
    # a report belongs to one incident only
    held = [e for i in desk.latest.values() for e in i.reports]
    assert len(held) == len(set(held))


@pytest.mark.parametrize("deferred", [False, True])
def test_unknown_shots_join_a_small_arms_burst_and_it_stays_small_arms(deferred):
    desk = Desk(deferred)
    reports = desk.shots((4000.0, 200.0), T0, 4, 0.3, [0x101, 0x102, 0x103, 0x201, 0x202],
                         event_class=lambda k: "unknown" if k % 2 else "small_arms")
    desk.deliver(reports)
    [burst] = desk.live()
    assert burst.event_class == "small_arms" and burst.shots == 4
    assert len(burst.reports) == len(reports)


def test_two_bursts_two_kilometres_apart_at_once_are_two_incidents():
    desk = Desk()
    west = desk.shots((3000.0, 200.0), T0, 5, 0.2, [0x100, 0x101, 0x102, 0x200, 0x201])
    east = desk.shots((5000.0, 200.0), T0, 5, 0.2, [0x103, 0x104, 0x105, 0x203, 0x204])
    desk.deliver(west + east)
    found = sorted(desk.live(), key=lambda i: FRAME.to_xy(i.lat, i.lon)[0])
    assert len(found) == 2 and [i.shots for i in found] == [5, 5]
    for incident, xy, reports in zip(found, ((3000.0, 200.0), (5000.0, 200.0)), (west, east)):
        assert math.dist(FRAME.to_xy(incident.lat, incident.lon), xy) < 1.0
        assert sorted(incident.reports) == sorted(r.evidence_id for r in reports)


def test_shots_seconds_apart_beyond_the_burst_gap_stay_separate():
    desk = Desk()
    first = desk.shots((4000.0, 200.0), T0, 1, 0.0, [0x101, 0x102, 0x103, 0x201, 0x202])
    later = desk.shots((4000.0, 200.0), T0 + 6_000_000, 1, 0.0, [0x101, 0x102, 0x103, 0x201, 0x202])
    desk.deliver(first + later)
    assert sorted(i.shots for i in desk.live()) == [1, 1]


def test_a_lone_report_far_from_any_burst_joins_nothing():
    desk = Desk()
    burst = desk.shots((4000.0, 200.0), T0, 3, 0.2, [0x101, 0x102, 0x103, 0x201, 0x202])
    lone = desk.shots((9000.0, 200.0), T0 + 20_000_000, 1, 0.0, [0x107])
    desk.deliver(burst + lone)
    kinds = sorted((i.fix, i.shots, 0x107 in i.nodes) for i in desk.live())
    assert kinds == [("tdoa", 3, False)]      # the lone report is held, not an incident


def pytest_approx_us(t_us, tol_us=2_000):
    import pytest
    return pytest.approx(t_us, abs=tol_us)


def test_shots_0_1_s_apart_are_one_incident_even_before_any_is_located():
    """A burst's later shots at a node never pair with other nodes' shots: only the first
    shot of each node's train is an arrival (shots 0.1 s apart made several incidents)."""
    desk = Desk()
    nodes = [0x101, 0x102, 0x103, 0x201, 0x202]
    reports = desk.shots((4000.0, 200.0), T0, 12, 0.1, nodes)
    desk.deliver(reports)
    [burst] = desk.live()
    assert burst.fix == "tdoa" and burst.shots == 12
    assert sorted(burst.reports) == sorted(r.evidence_id for r in reports)
    assert math.dist(FRAME.to_xy(burst.lat, burst.lon), (4000.0, 200.0)) < 1.0


def test_a_blast_named_unknown_by_far_nodes_is_one_explosion():
    """Nodes that hear a blast faintly name it "unknown": their arrivals join the named
    ones (one class family), and the incident takes the named class."""
    desk = Desk()
    near = desk.shots((4000.0, 200.0), T0, 1, 0.0, [0x101, 0x102, 0x103, 0x201, 0x202], "explosion")
    far = desk.shots((4000.0, 200.0), T0, 1, 0.0, [0x105, 0x106, 0x107, 0x205, 0x206], "unknown")
    desk.deliver(near + far)
    [blast] = desk.live()
    assert blast.event_class == "explosion" and blast.fix == "tdoa"
    assert len(blast.nodes) == 10
    assert math.dist(FRAME.to_xy(blast.lat, blast.lon), (4000.0, 200.0)) < 1.0


def test_a_blast_and_a_shot_named_so_never_share_a_source():
    """Named classes that differ are two sounds: an explosion's arrival never completes a
    shot's fix, though an unknown one may join either (pairs published, to see the shot's).
    The blast is heard by three nodes of one straight row: a fix with two places ("mirror")."""
    desk = Desk(config=FusionConfig(publish_pairs=True))
    blast = desk.shots((4000.0, 200.0), T0, 1, 0.0, [0x101, 0x102, 0x103], "explosion")
    shot = desk.shots((4000.0, 200.0), T0, 1, 0.0, [0x201, 0x202], "small_arms")
    desk.deliver(blast + shot)
    assert sorted((i.event_class, i.fix) for i in desk.live()) == [("explosion", "mirror"),
                                                                  ("small_arms", "hyperbola")]


def test_a_published_pair_left_with_one_node_is_withdrawn_not_a_detection():
    """A hyperbola of two sounds' arrivals is published; when the second sound's fix takes
    one of them, the other is a lone report again: held, and the hyperbola withdrawn (it
    stood as a false 'detection' incident). Pairs are published here (FusionConfig.publish_pairs)."""
    desk = Desk(config=FusionConfig(publish_pairs=True))
    lone = desk.shots((1900.0, 600.0), T0, 1, 0.0, [0x100], "explosion")
    blast = desk.shots((4000.0, 200.0), T0 - 1_000_000, 1, 0.0, [0x101, 0x102, 0x103, 0x201, 0x202], "explosion")
    first = min(blast, key=lambda r: r.onset_utc_us)
    seen = {}
    for r in sorted(lone + [first], key=lambda r: r.received_at_us):
        for inc in desk.engine.add(r, r.received_at_us):
            seen[inc.id] = inc
    assert [i.fix for i in seen.values()] == ["hyperbola"]
    desk.latest = dict(seen)
    desk.deliver([r for r in blast if r is not first])
    live = desk.live()
    assert [(i.fix, len(i.nodes)) for i in live] == [("tdoa", 5)]
    [pair_id] = seen
    assert desk.latest[pair_id].reports == () and not desk.latest[pair_id].provisional
