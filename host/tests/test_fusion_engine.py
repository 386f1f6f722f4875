"""The fusion engine end to end on synthetic, exact geometry (no noise unless stated)."""
import math
from dataclasses import replace

import pytest

from linewatch.fusion import FusionConfig, FusionEngine, Report, speed_of_sound
from linewatch.geo import ContactLine, LocalFrame, haversine_m

C = speed_of_sound(15.0)
LINE = ContactLine([(48.0, 37.0), (48.0, 37.3)])          # drawn west -> east: "L" is north
FRAME = LocalFrame(48.0, 37.0)
# Two staggered rows at 1 km spacing, 500 m either side of the line.
NODES = {0x100 + i: (2000.0 + 1000.0 * i, 500.0) for i in range(12)}
NODES.update({0x200 + i: (2500.0 + 1000.0 * i, -500.0) for i in range(12)})
T0 = 1_800_000_000_000_000
JSON_KEYS = {"id", "class", "status", "provisional", "fix", "time_utc_us", "lat", "lon", "ellipse_95",
             "side", "side_probability", "distance_from_line_m", "nodes", "reports", "rejected_nodes",
             "formed_at_us", "updated_at_us", "version", "launch_id", "impact_id", "track", "heading_deg",
             "shots", "mirror"}


class World:
    def __init__(self, clock_error_us=1000, config=None):
        self.engine = FusionEngine(LINE, config or FusionConfig())
        self.clock_error_us = clock_error_us
        self.evidence = 0
        self.latest = {}

    def report(self, node, onset_us, event_class="explosion", frequency_hz=0, snr_db=20.0):
        self.evidence += 1
        lat, lon = FRAME.to_latlon(*NODES[node])
        return Report(node, lat, lon, 100.0, event_class, int(onset_us), self.clock_error_us, 0.9, 120.0,
                      200, frequency_hz, snr_db, self.evidence, int(onset_us) + 500_000)

    def blast(self, xy, t_us, nodes=None, delay=None):
        """Reports of one blast at local position xy, one per node, as (report, arrival time)."""
        out = []
        for node in nodes or NODES:
            onset = t_us + math.dist(NODES[node], xy) / C * 1e6 + (delay or {}).get(node, 0.0)
            out.append(self.report(node, onset))
        return out

    def feed(self, reports):
        changed = []
        for r in sorted(reports, key=lambda r: (r.onset_utc_us, r.node_id)):
            for incident in self.engine.add(r, r.received_at_us):
                self.latest[incident.id] = incident
                changed.append(incident)
        return changed

    def live(self):
        return [i for i in self.latest.values() if i.reports]


def error_m(incident, xy):
    return haversine_m(incident.lat, incident.lon, *FRAME.to_latlon(*xy))


def test_one_blast_is_fixed_within_centimetres_on_the_right_side():
    world = World()
    world.feed(world.blast((6300.0, 2000.0), T0))
    [incident] = world.live()
    assert incident.fix == "tdoa" and incident.provisional
    assert error_m(incident, (6300.0, 2000.0)) < 0.05
    assert abs(incident.time_utc_us - T0) <= 2
    assert incident.side == "L" and incident.side_probability > 0.999
    assert incident.distance_from_line_m == pytest.approx(2000.0, abs=0.5)
    assert sorted(incident.nodes) == sorted(NODES) and incident.rejected_nodes == ()
    assert set(incident.to_json()) == JSON_KEYS


def test_an_echo_at_one_node_is_rejected_from_the_fix():
    world = World()
    world.feed(world.blast((6300.0, -800.0), T0, delay={0x105: 300_000.0}))
    [incident] = world.live()
    assert incident.rejected_nodes == (0x105,)
    assert error_m(incident, (6300.0, -800.0)) < 0.05
    assert incident.side == "R"


def test_two_nodes_give_a_hyperbola_held_until_a_third_makes_a_fix():
    """A lone impulsive report is held, not published: one node cannot tell a blast from a
    door or its own fault; nor can two (unrelated false alarms at neighbouring nodes pair
    within the travel time between them): the pair is held until a third node's report makes
    it a fix, published."""
    world = World()
    assert world.feed(world.blast((6000.0, 0.0), T0, nodes=[0x104])) == []
    assert world.feed(world.blast((6000.0, 0.0), T0, nodes=[0x203])) == []
    [fix] = world.feed(world.blast((6000.0, 0.0), T0, nodes=[0x105]))
    assert fix.fix == "tdoa" and sorted(fix.nodes) == [0x104, 0x105, 0x203]
    world.engine.tick(T0 + 600_000_000)
    assert world.engine.tick(T0 + 600_000_000) == []


def test_with_pairs_published_two_nodes_give_a_hyperbola():
    world = World(config=FusionConfig(publish_pairs=True))
    assert world.feed(world.blast((6000.0, 0.0), T0, nodes=[0x104])) == []
    [pair] = world.feed(world.blast((6000.0, 0.0), T0, nodes=[0x203]))
    assert pair.fix == "hyperbola" and sorted(pair.nodes) == [0x104, 0x203]
    assert pair.ellipse_95 is None and pair.version >= 1
    world.engine.tick(T0 + 600_000_000)
    assert world.engine.tick(T0 + 600_000_000) == []


def test_two_impacts_a_second_apart_and_two_km_apart_are_two_incidents():
    world = World(clock_error_us=10_000)
    sources = [((5000.0, 300.0), T0), ((7000.0, -200.0), T0 + 1_000_000)]
    world.feed([r for xy, t in sources for r in world.blast(xy, t)])
    live = sorted(world.live(), key=lambda i: i.time_utc_us)
    assert [i.fix for i in live] == ["tdoa", "tdoa"]
    for incident, (xy, t) in zip(live, sources):
        assert error_m(incident, xy) < 1.0
        assert len(incident.nodes) == len(NODES)


def test_a_late_report_updates_the_incident_and_bumps_its_version():
    world = World()
    reports = world.blast((6300.0, 2000.0), T0)
    late = [r for r in reports if r.node_id == 0x10B][0]
    world.feed([r for r in reports if r is not late])
    [before] = world.live()
    [after] = world.engine.add(late, late.received_at_us + 5_000_000)
    assert after.id == before.id and after.version == before.version + 1
    assert 0x10B in after.nodes and 0x10B not in before.nodes
    assert after.formed_at_us == before.formed_at_us < after.updated_at_us


def test_every_report_belongs_to_one_incident_only_and_duplicates_are_ignored():
    world = World(clock_error_us=10_000)
    reports = world.blast((4000.0, 1000.0), T0) + world.blast((9000.0, -1500.0), T0 + 3_000_000)
    world.feed(reports)
    assert world.engine.add(reports[0], T0 + 60_000_000) == []
    used = [e for incident in world.live() for e in incident.reports]
    assert sorted(used) == sorted(r.evidence_id for r in reports)


def test_tick_makes_incidents_final_after_the_window():
    world = World()
    world.feed(world.blast((6300.0, 2000.0), T0))
    [incident] = world.live()
    assert world.engine.tick(T0 + 1_000_000) == []
    [final] = world.engine.tick(T0 + 600_000_000)
    assert final.id == incident.id and not final.provisional and final.version == incident.version + 1
    assert world.engine.tick(T0 + 700_000_000) == []


def test_side_probability_reflects_the_ellipse_near_the_line():
    world = World(clock_error_us=10_000)
    world.feed(world.blast((6300.0, 3.0), T0, nodes=[0x104, 0x105, 0x106, 0x204, 0x205]))
    [incident] = world.live()
    assert 0.5 <= incident.side_probability < 0.9      # 3 m from the line, metres of uncertainty
    assert incident.distance_from_line_m < 5.0


def test_a_launch_is_paired_with_its_impact():
    world = World()
    launch_xy, impact_xy = (4000.0, 4000.0), (12000.0, -2000.0)
    flight_us = int(math.dist(launch_xy, impact_xy) / 400.0 * 1e6)    # 400 m/s mean ground speed
    world.feed(world.blast(launch_xy, T0) + world.blast(impact_xy, T0 + flight_us))
    launch, impact = sorted(world.live(), key=lambda i: i.time_utc_us)
    assert launch.impact_id == impact.id and impact.launch_id == launch.id
    assert launch.side == "L" and impact.side == "R"


def test_blasts_too_close_in_time_are_not_paired():
    world = World()
    world.feed(world.blast((4000.0, 4000.0), T0) + world.blast((6000.0, 3000.0), T0 + 2_000_000))
    assert all(i.launch_id is None and i.impact_id is None for i in world.live())


def test_a_drone_crossing_the_line_is_an_incident_of_its_own():
    world = World()
    # Flies north over x = 6000 m at 10 m/s; the nearest node hears it every 5 s.
    reports = []
    for k in range(24):
        t_s = 5.0 * k
        y = -1200.0 + 10.0 * t_s
        node = min(NODES, key=lambda n: math.dist(NODES[n], (6000.0, y)))
        reports.append(world.report(node, T0 + t_s * 1e6, "drone", frequency_hz=180))
    world.feed(reports)
    drones = [i for i in world.live() if i.event_class == "drone"]
    crossings = [i for i in drones if i.distance_from_line_m == 0.0]
    [track] = [i for i in drones if i not in crossings]
    assert len(crossings) == 1
    assert crossings[0].side == "L" and abs(((crossings[0].heading_deg + 180) % 360) - 180) < 30
    assert len(track.track) == 24 and track.side == "L"


def test_one_drone_report_is_held_until_a_second_one_joins_its_track():
    # One node hearing a tone once is no incident (a cow's call or a generator gives that);
    # the same drone heard again by the next node makes the track, with both reports.
    world = World()
    first = world.report(0x105, T0, "drone", frequency_hz=180)
    assert world.feed([first]) == []
    second = world.report(0x106, T0 + 20e6, "drone", frequency_hz=182)
    [track] = [i for i in world.feed([second]) if i.event_class == "drone"]
    assert sorted(track.reports) == sorted([first.evidence_id, second.evidence_id])
    assert len(track.track) == 2 and set(track.nodes) == {0x105, 0x106}
    # a lone report that no other joins is never published, nor its closing
    lone = world.report(0x10A, T0 + 40e6, "vehicle", frequency_hz=240)
    assert world.feed([lone]) == []
    assert world.engine.tick(T0 + 3600e6) == [world.engine.incident(track.id)]


def test_a_steady_tone_at_one_node_is_held_until_it_moves():
    # A generator by node 0x105: the same tone at the same level every 10 s for minutes.
    # One node, one level: a machine standing there, not published as a drone.
    world = World()
    hum = [replace(world.report(0x105, T0 + k * 10e6, "drone", frequency_hz=150 + 8 * (k % 2)),
                   peak_db=-62.0 + 0.4 * (k % 3))
           for k in range(12)]
    assert world.feed(hum) == []
    assert world.engine.tick(T0 + 3600e6) == []
    # a drone nearing the node: the same node, its level rising between reports
    world = World()
    near = [replace(world.report(0x105, T0 + k * 10e6, "drone", frequency_hz=150), peak_db=-75.0 + 3.0 * k)
            for k in range(3)]
    assert world.feed(near[:1]) == []
    world.feed(near[1:])
    [track] = [i for i in world.live() if i.event_class == "drone"]
    assert sorted(track.reports) == sorted(r.evidence_id for r in near)
    # a drone going by at one level (its distance barely changing): its tone falls (Doppler)
    world = World()
    by = [replace(world.report(0x105, T0 + k * 10e6, "drone", frequency_hz=317 - 8 * k), peak_db=-79.0)
          for k in range(3)]
    world.feed(by)
    assert [i for i in world.live() if i.event_class == "drone"]
    # the steady tone heard by a second node too is published (a drone hovering between them)
    world = World()
    assert world.feed(hum[:3]) == []
    other = replace(world.report(0x106, T0 + 35e6, "drone", frequency_hz=150), peak_db=-70.0)
    assert [i for i in world.feed([other]) if i.event_class == "drone"]
    # and with the hold switched off, the steady tone is a track from its second report
    world = World(config=FusionConfig(track_moving_db=0.0))
    assert world.feed(hum[:2])
    with pytest.raises(ValueError, match="track_moving_db"):
        FusionConfig(track_moving_db=-1.0)
    with pytest.raises(ValueError, match="track_moving_hz"):
        FusionConfig(track_moving_hz=float("nan"))


def test_one_report_makes_a_track_incident_when_so_configured():
    world = World(config=FusionConfig(track_confirm_reports=1))
    [track] = world.feed([world.report(0x105, T0, "drone", frequency_hz=180)])
    assert track.event_class == "drone" and len(track.reports) == 1
    with pytest.raises(ValueError, match="track_confirm_reports"):
        FusionConfig(track_confirm_reports=0)


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="event class"):
        Report(1, 48.0, 37.0, 0.0, "mortar", 0, 0, 1.0, 0.0, 0, 0, 0.0, None, 0)
    with pytest.raises(ValueError, match="finite"):
        Report(1, float("nan"), 37.0, 0.0, "explosion", 0, 0, 1.0, 0.0, 0, 0, 0.0, None, 0)
    with pytest.raises(TypeError):
        FusionEngine(LINE).add({"node_id": 1}, 0)


def test_the_speed_of_sound_follows_the_temperature():
    engine = FusionEngine(LINE, FusionConfig(temperature_c=0.0))
    assert engine.speed_of_sound == pytest.approx(331.3)
    engine.set_temperature(30.0)
    assert engine.speed_of_sound == pytest.approx(331.3 * math.sqrt(1 + 30 / 273.15))


def test_a_report_fitting_an_existing_fix_changes_that_incident_only():
    world = World(clock_error_us=10_000)
    first = world.blast((4000.0, 1000.0), T0)
    second = world.blast((9000.0, -1500.0), T0 + 3_000_000)
    late = [r for r in first if r.node_id == 0x10B][0]
    world.feed([r for r in first + second if r is not late])
    before = {i.id: i for i in world.live()}
    assert len(before) == 2
    [changed] = world.engine.add(late, late.received_at_us)
    assert 0x10B in changed.nodes and changed.version == before[changed.id].version + 1
    assert error_m(changed, (4000.0, 1000.0)) < 1.0
    [other] = [i for i in before if i != changed.id]
    assert world.engine.incident(other) == before[other]


def test_the_refit_fast_path_agrees_with_full_re_association(monkeypatch):
    fast, full = World(clock_error_us=10_000), World(clock_error_us=10_000)
    association = full.engine._association
    monkeypatch.setattr(association.fixes, "refit_with", lambda state, extras, now_us, strict=False: None)
    # ... and every report that no fix takes re-associates its whole neighbourhood
    monkeypatch.setattr(association, "_anchored",
                        lambda report, neighbours, now_us, mode="full": tuple(association._involved(report, neighbours)))
    for world in (fast, full):
        world.feed(world.blast((6300.0, -800.0), T0, delay={0x105: 300_000.0, 0x203: 7_000.0}))
    [a], [b] = fast.live(), full.live()
    assert (a.nodes, a.rejected_nodes, a.reports) == (b.nodes, b.rejected_nodes, b.reports)
    assert haversine_m(a.lat, a.lon, b.lat, b.lon) < 0.01


def test_an_arrival_that_fails_the_refit_is_not_taken_by_the_fix():
    world = World()
    world.feed(world.blast((4000.0, 3000.0), T0, nodes=[0x102, 0x103, 0x202]))
    [state] = world.engine._ledger.open.values()
    fixes = world.engine._fixes
    # Inside the three-node fix's gate, but 150 ms late: chi-square fails with one dof.
    [stray] = world.blast((4000.0, 3000.0), T0, nodes=[0x203], delay={0x203: 150_000.0})
    assert fixes.fitting_fix(stray, [state]) is state
    version = state.snapshot.version
    assert fixes.refit(state, stray, stray.received_at_us) is None
    assert state.snapshot.version == version and stray.key not in state.used


def test_a_flood_of_far_reports_does_not_crowd_out_a_sources_own_reports():
    world = World()
    world.engine = FusionEngine(LINE, FusionConfig(max_group=8))
    source = (3000.0, 1000.0)
    near = world.blast(source, T0, nodes=[0x101, 0x102, 0x103, 0x201])
    last = max(near, key=lambda r: r.onset_utc_us)
    # Unrelated single reports 8-10 km away, each heard alone just before the last arrival.
    flood = [world.report(node, last.onset_utc_us - 10_000 * k)
             for k, node in enumerate([0x10A, 0x10B, 0x20A, 0x20B, 0x209, 0x109, 0x208, 0x108], 1)]
    world.feed([r for r in near if r is not last] + flood)
    world.feed([last])
    [fixed] = [i for i in world.live() if last.evidence_id in i.reports]
    assert fixed.fix == "tdoa" and sorted(fixed.nodes) == [0x101, 0x102, 0x103, 0x201]
    assert error_m(fixed, source) < 0.5


def test_a_vehicle_driving_past_the_nodes_is_one_track():
    world = World()
    # Drives east at 10 m/s along y = 200 m; the nodes 300 m off its road hear it while it is
    # within ~450 m, each reporting once it has gone: onsets 100 s apart, the gap between
    # what one node heard and the next ~35 s, received in the order the stretches ended.
    reports = []
    for i in range(8):
        x_node = NODES[0x100 + i][0]
        onset_s, end_s = (x_node - 2000.0 - 335.0) / 10.0, (x_node - 2000.0 + 335.0) / 10.0
        r = world.report(0x100 + i, T0 + onset_s * 1e6, "vehicle", frequency_hz=230 + 5 * (i % 3))
        reports.append(Report(**{**r.__dict__, "duration_ms": int((end_s - onset_s) * 1000),
                                 "received_at_us": int(T0 + (end_s + 2.0) * 1e6)}))
    # and another vehicle 10 km away at the same time, heard twice by its node (once, it
    # would be held: config.track_confirm_reports): a track of its own
    far = [world.report(0x10B, T0 + t_s * 1e6, "vehicle", frequency_hz=240) for t_s in (30.0, 90.0)]
    for r in sorted(reports + far, key=lambda r: r.received_at_us):
        for incident in world.engine.add(r, r.received_at_us):
            world.latest[incident.id] = incident
    vehicles = [i for i in world.live() if i.event_class == "vehicle"]
    assert sorted(len(i.reports) for i in vehicles) == [2, 8], vehicles
    [track] = [i for i in vehicles if len(i.reports) == 8]
    assert len(track.track) == 8 and track.side == "L"
    assert abs(((track.heading_deg - 90.0 + 180) % 360) - 180) < 20    # east


def test_public_ids_have_no_gaps_and_continue_after_the_commissions_last():
    """Ids go out in the order incidents are first published, with no gap for the held lone
    reports and candidates that never went out (the operator saw I-000013, I-000017, ... on a
    generated run), and after number_after() where the commission's store left off (a restarted
    service named its first new incident I-000001 again, over the stored one)."""
    world = World()
    world.engine.number_after("I-000041")
    for k in range(3):                          # lone reports far apart in time: held, never out
        world.feed([world.report(0x100 + k, T0 + k * 60_000_000)])
    assert world.latest == {}
    world.feed(world.blast((6300.0, 2000.0), T0 + 300_000_000))
    world.feed(world.blast((9300.0, -1500.0), T0 + 400_000_000))
    ids = sorted(world.latest)                  # withdrawn ones included: they went out
    assert ids == ["I-%06d" % n for n in range(42, 42 + len(ids))] and len(world.live()) == 2
    assert all(world.engine.incident(i) == world.latest[i] for i in ids)
    world.engine.number_after("I-e12")          # a cluster's id is no number: nothing changes
    world.feed(world.blast((4300.0, 900.0), T0 + 500_000_000))
    assert sorted(world.latest)[len(ids)] == "I-%06d" % (42 + len(ids))


def _reports_from(world, xy, t_us, kinds):
    """One report per node of `kinds` ({node: (class, balance frequency)}) of a sound at xy."""
    out = []
    for node, (cls, hz) in kinds.items():
        onset = t_us + math.dist(NODES[node], xy) / C * 1e6
        out.append(world.report(node, onset, cls, frequency_hz=hz))
    return out


def test_a_crack_named_unknown_and_two_thumps_are_no_source():
    # The background's false alarms: a knock (unknown, balance 3.3 kHz) at one node and two
    # thumps (explosion, ~30 Hz) at others, by chance at times some place fits exactly. A far
    # node names a blast unknown with its highs absorbed (a low balance), never a crack.
    world = World()
    kinds = {0x103: ("unknown", 3300), 0x105: ("explosion", 28), 0x107: ("explosion", 30)}
    world.feed(_reports_from(world, (5000.0, 1500.0), T0, kinds))
    assert world.live() == []
    # the same arrivals with the unknown's balance a blast's: one fix of three nodes
    world = World()
    kinds[0x103] = ("unknown", 20)
    world.feed(_reports_from(world, (5000.0, 1500.0), T0, kinds))
    [fix] = world.live()       # three nodes of one straight row: a fix with two places
    assert fix.fix == "mirror" and sorted(fix.nodes) == [0x103, 0x105, 0x107]
    # and a crack-like unknown still joins shots
    world = World()
    kinds = {0x103: ("unknown", 3300), 0x105: ("small_arms", 900), 0x107: ("small_arms", 1200)}
    world.feed(_reports_from(world, (5000.0, 1500.0), T0, kinds))
    [fix] = world.live()
    assert fix.fix == "mirror" and fix.event_class == "small_arms"
