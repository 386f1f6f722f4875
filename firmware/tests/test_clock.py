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
