import numpy as np
import pytest

from linewatch.emulator import world as w
from linewatch.emulator.randomness import stream
from linewatch.geo import ContactLine

LINE = ContactLine([(48.0, 37.8), (48.05, 37.9)])


def clocks(source, count=200):
    return [w.draw_clock(source, stream(1, "t", i), 0) for i in range(count)]


def test_clock_sources_have_their_typical_errors():
    gps = clocks("gps_pps")
    ntp = clocks("ntp")
    free = clocks("none")
    assert max(abs(c.offset_us) for c in gps) < 10 and all(c.jitter_us <= 2 for c in gps)
    ntp_offsets = np.abs([c.offset_us for c in ntp])
    assert 500 < np.median(ntp_offsets) < 10_000 and ntp_offsets.max() < 60_000
    assert np.median(np.abs([c.offset_us for c in free])) > 1e6
    assert np.median(np.abs([c.drift_ppm for c in free])) > 3
    assert {c.source_code for c in free} == {0} and {c.source_code for c in gps} == {2}
    with pytest.raises(ValueError, match="unknown clock source"):
        w.draw_clock("sundial", stream(1), 0)


def test_node_time_applies_offset_drift_and_jitter():
    clock = w.NodeClock("none", offset_us=2_000_000, drift_ppm=50, jitter_us=0, error_estimate_us=1,
                        reference_us=10_000_000)
    # one hour after the reference, 50 ppm drift adds 180 ms
    true = 10_000_000 + 3_600_000_000
    assert clock.node_time_us(true) == true + 2_000_000 + 180_000
    assert clock.true_time_us(clock.node_time_us(true)) == pytest.approx(true, abs=1)
    jittery = w.NodeClock("ntp", 0, 0, 1000, 1, 0)
    stamps = [jittery.node_time_us(0, stream(2, i)) for i in range(300)]
    assert 700 < np.std(stamps) < 1300


def test_battery_discharges_and_voltage_falls():
    b = w.Battery(capacity_mah=1000, charge_at_start=1.0, draw_ma=100)
    assert b.charge_at(3600) == pytest.approx(0.9)
    assert b.voltage_at(0) == pytest.approx(4.2)
    assert b.voltage_at(3600 * 5) < b.voltage_at(3600)
    assert b.empty_after_s() == pytest.approx(36_000)
    assert b.charge_at(50_000) == 0.0 and b.millivolts_at(50_000) == 3300


def test_radio_loses_in_outages_and_by_probability():
    link = w.RadioLink(latency_ms=50, latency_jitter_ms=0, loss_probability=0.2).with_outage(10, 20)
    rng = stream(3)
    assert link.delivery_delay_s(15, rng) is None
    delays = [link.delivery_delay_s(30, rng) for _ in range(2000)]
    lost = sum(d is None for d in delays) / len(delays)
    assert 0.15 < lost < 0.25
    assert {d for d in delays if d is not None} == {0.05}
    assert link.is_up(20) and not link.is_up(10)


def test_layout_places_rows_with_segment_ids():
    segments = w.make_segments(LINE, 5000)
    layout = w.Layout(row_offsets_m=(-300.0, 400.0), spacing_m=1000, end_m=9000)
    nodes = w.place_nodes(LINE, segments, layout, w.Environment(), w.RadioLink(), 5, 0)
    assert LINE.length_m > 9000 and [s.number for s in segments] == [1, 2]
    assert len(nodes) == 10 + 9
    for n in nodes:
        assert n.id >> 8 == n.segment == w.segment_at(segments, n.along_m)
        pos = LINE.locate(n.lat, n.lon)
        assert pos.side == ("R" if n.offset_m < 0 else "L")
        assert pos.distance_m == pytest.approx(abs(n.offset_m), abs=1.0)
    assert nodes[0].name == "0x0101"
    again = w.place_nodes(LINE, segments, layout, w.Environment(), w.RadioLink(), 5, 0)
    assert again == nodes


def test_too_many_segments_for_a_u8_is_refused():
    with pytest.raises(ValueError, match="u8"):
        w.make_segments(LINE, 30)
