"""Windows and horizons run in event time: a replay or a virtual-time run days away from the
caller's clock behaves like live operation."""
import math

from linewatch.fusion import FusionConfig, FusionEngine, Report, speed_of_sound
from linewatch.geo import ContactLine, LocalFrame

C = speed_of_sound(15.0)
LINE = ContactLine([(48.0, 37.0), (48.0, 37.3)])
FRAME = LocalFrame(48.0, 37.0)
NODES = {0x100 + i: (2000.0 + 1000.0 * i, 500.0) for i in range(12)}
NODES.update({0x200 + i: (2500.0 + 1000.0 * i, -500.0) for i in range(12)})
T0 = 1_800_000_000_000_000               # scenario (event) time
WALL = T0 + 5 * 86_400_000_000           # the caller's clock: five days later


class Run:
    def __init__(self):
        self.engine = FusionEngine(LINE, FusionConfig())
        self.latest = {}
        self.evidence = 0

    def blast(self, xy, t_us, now_us):
        reports = []
        for node, pos in sorted(NODES.items()):
            self.evidence += 1
            lat, lon = FRAME.to_latlon(*pos)
            onset = int(t_us + math.dist(pos, xy) / C * 1e6)
            reports.append(Report(node, lat, lon, 100.0, "explosion", onset, 1000, 0.9, 120.0, 200, 0, 20.0,
                                  self.evidence, onset + 500_000))
        for r in sorted(reports, key=lambda r: (r.onset_utc_us, r.node_id)):
            for incident in self.engine.add(r, now_us):
                self.latest[incident.id] = incident

    def tick(self, now_us):
        for incident in self.engine.tick(now_us):
            self.latest[incident.id] = incident

    def live(self):
        return sorted((i for i in self.latest.values() if i.reports), key=lambda i: i.time_utc_us)


def test_a_launch_and_its_impact_30_s_apart_in_event_time_pair_while_the_caller_clock_is_far():
    run = Run()
    launch_xy, impact_xy = (4000.0, 4000.0), (12000.0, -2000.0)     # 10 km: 333 m/s over 30 s
    run.blast(launch_xy, T0, WALL)
    for k in range(1, 4):
        run.tick(WALL + k * 1_000_000)                              # the aggregator ticks each second
    run.blast(impact_xy, T0 + 30_000_000, WALL + 3_000_000)        # fed faster than real time
    launch, impact = run.live()
    assert launch.impact_id == impact.id and impact.launch_id == launch.id


def test_incidents_close_after_their_event_time_window_not_after_10_s_of_the_caller_clock():
    run = Run()
    run.blast((6300.0, 2000.0), T0, WALL)
    run.tick(WALL + 15_000_000)
    [incident] = run.live()
    assert incident.provisional                  # the window is ~70 s of event time
    run.tick(WALL + 120_000_000)
    [incident] = run.live()
    assert not incident.provisional


def test_a_late_delivered_old_report_does_not_take_the_event_clock_back():
    run = Run()
    run.blast((6300.0, 2000.0), T0, WALL)
    before = run.engine.event_now(WALL + 1_000_000)
    lat, lon = FRAME.to_latlon(*NODES[0x100])
    old = Report(0x100, lat, lon, 100.0, "explosion", T0 - 3_600_000_000, 1000, 0.9, 120.0, 200, 0, 20.0,
                 999, T0)
    run.engine.add(old, WALL + 1_000_000)
    assert run.engine.event_now(WALL + 1_000_000) == before


def test_live_operation_keeps_the_callers_clock():
    engine = FusionEngine(LINE, FusionConfig())
    assert engine.event_now(WALL) == WALL        # nothing seen yet
