"""The aggregator's own log for operators: births, deaths, health changes and incidents at
INFO in the operator's words, rate-limited per cause."""
from __future__ import annotations

import logging

from lwproto import const, frame as wire

from linewatch.commission.oplog import OperatorLog
from linewatch.commission.store import HealthChange

KEY = bytes(32)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def birth(node=0x0102, boot=3):
    data = wire.encode(KEY, const.BIRTH, node, boot, 1, 1_795_000_000_000_000, const.CLOCK_NTP, 900,
                       {"fw_major": 0, "fw_minor": 1, "fw_patch": 0, "board": 0, "segment": 1, "lat": 48.0,
                        "lon": 37.0, "alt_m": 0, "position_error_m": 5, "sensors": 0, "capabilities": 0,
                        "sample_rate_hz": 16000})
    return wire.decode(data, KEY)


def test_state_changes_are_told_once_each_in_words(caplog):
    log = OperatorLog(logging.getLogger("test.oplog"), ("Party A", "Party B"))
    incident = {"id": "I-000001", "class": "explosion", "fix": "tdoa", "provisional": True, "reports": [1, 2, 3],
                "nodes": [1, 2, 3], "lat": 48.0, "lon": 37.0, "side": "L", "side_probability": 0.99,
                "time_utc_us": 1_795_586_403_000_000}
    with caplog.at_level(logging.INFO, logger="test.oplog"):
        log.frame(birth())
        log.health(HealthChange(0x0102, 1, "offline", "online", "birth"))
        log.incident(incident, first=True)
        log.incident({**incident, "nodes": [1, 2, 3, 4]}, first=False)      # an update: not a state change
        log.incident({**incident, "provisional": False}, first=False)
        log.incident({**incident, "id": "I-000002", "provisional": False, "reports": []}, first=False)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("node 0x0102 born: boot 3, firmware 0.1.0 on ")
    assert lines[1] == "node 0x0102: offline -> online (birth)"
    assert lines[2] == ("incident formed: I-000001 06:00:03 UTC explosion, located at 48.00000, 37.00000, "
                        "3 nodes, Party A (p 0.99)")
    assert lines[3].startswith("incident settled: I-000001")
    assert lines[4] == "incident I-000002 withdrawn: its reports joined other incidents"
    assert len(lines) == 5


def test_a_barrage_is_rate_limited_per_cause_and_the_rest_counted(caplog):
    clock = Clock()
    log = OperatorLog(logging.getLogger("test.oplog2"), burst=3, interval_s=60, clock=clock)
    incident = {"id": "I-1", "class": "explosion", "fix": "detection", "provisional": True, "reports": [1],
                "nodes": [1], "time_utc_us": 1}
    with caplog.at_level(logging.INFO, logger="test.oplog2"):
        for n in range(10):
            log.incident({**incident, "id": "I-%d" % n}, first=True)
        log.health(HealthChange(0x0102, 1, "online", "offline", "silent"))   # another cause still gets through
        clock.t = 61
        log.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert sum(line.startswith("incident formed") for line in lines) == 3
    assert "node 0x0102: online -> offline (silent)" in lines
    assert lines[-1] == ("7 more incident lines left out in the last 60 s (rate limit; see `linewatch incidents list`)")
