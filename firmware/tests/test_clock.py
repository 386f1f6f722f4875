"""Clock quality grows with time since the board's last sync; onsets map to the sample."""
from lwnode.clock import Clock, SampleTimeline
from lwproto.const import CLOCK_ERROR_MAX_US, CLOCK_NONE, CLOCK_NTP


class FakeBoard:
    def __init__(self):
        self.now = 1_000_000_000
        self.reported = (CLOCK_NTP, 1000)

    def time_us(self):
        return self.now

    def ticks_us(self):
        return self.now

    def clock(self):
        return self.reported


def test_error_grows_with_drift_since_sync_and_resets_at_a_new_sync():
    board = FakeBoard()
    clock = Clock(board, drift_ppm=50)
    assert clock.quality() == (CLOCK_NTP, 1000)
    board.now += 100_000_000                       # 100 s later: +5 ms at 50 ppm
    assert clock.quality() == (CLOCK_NTP, 6000)
    board.reported = (CLOCK_NTP, 800)              # a fresh sync
    assert clock.quality() == (CLOCK_NTP, 800)
    board.now += 10_000_000_000
    assert clock.quality() == (CLOCK_NTP, CLOCK_ERROR_MAX_US)


def test_no_source_means_the_largest_error():
    board = FakeBoard()
    board.reported = (CLOCK_NONE, 0)
    assert Clock(board).quality() == (CLOCK_NONE, CLOCK_ERROR_MAX_US)


def test_board_that_knows_its_sync_time_is_believed():
    board = FakeBoard()
    board.clock_synced_us = lambda: board.now - 20_000_000   # synced 20 s ago
    assert Clock(board, drift_ppm=10).quality() == (CLOCK_NTP, 1200)


def test_timeline_dates_a_sample_from_its_block_stamp():
    line = SampleTimeline(16000)
    line.mark(32000, 5_000_000)          # sample 32000 (one past the block) at t = 5 s
    assert line.utc_of(32000) == 5_000_000
    assert line.utc_of(16000) == 4_000_000
    assert line.utc_of(31984) == 4_999_000


BLOCK = 512
BLOCK_US = 32_000


def feed(line, delays_us, start_us=5_000_000, first_block=0, step_at=None, step_us=0):
    """Mark blocks whose true end times are start + k blocks, stamped late by delays_us[k]."""
    for k, late in enumerate(delays_us):
        index = (first_block + k + 1) * BLOCK
        true_end = start_us + (k + 1) * BLOCK_US
        if step_at is not None and k >= step_at:
            true_end += step_us
        line.mark(index, true_end + late)


def test_timeline_follows_the_earliest_stamps_not_a_late_block():
    line = SampleTimeline(16000)
    delays = [300, 0, 450, 120, 40_000, 35_000, 200, 80, 96_000, 64_000, 32_000, 100]
    feed(line, delays)
    # every sample is dated from the blocks stamped on time, whichever block came last
    true_of = lambda index: 5_000_000 + index * 1_000_000 // 16000
    for index in (0, 3 * BLOCK, 11 * BLOCK + 17):
        assert 0 <= line.utc_of(index) - true_of(index) < 500


def test_timeline_follows_a_clock_step_both_ways():
    up = SampleTimeline(16000)
    feed(up, [100] * 40, step_at=20, step_us=30_000)         # an NTP sync moves the clock +30 ms
    assert abs(up.utc_of(40 * BLOCK) - (5_000_000 + 40 * BLOCK_US + 30_000)) < 500
    down = SampleTimeline(16000)
    feed(down, [100] * 40, step_at=20, step_us=-30_000)
    assert abs(down.utc_of(40 * BLOCK) - (5_000_000 + 40 * BLOCK_US - 30_000)) < 500


def test_timeline_starts_afresh_after_a_gap_in_the_stream():
    line = SampleTimeline(16000)
    feed(line, [0] * 10)
    # the next block's samples follow on, but its stamp is 20 s later: the stream was cut
    line.mark(11 * BLOCK, 25_000_000 + 200)
    assert abs(line.utc_of(11 * BLOCK) - 25_000_000) <= 200
