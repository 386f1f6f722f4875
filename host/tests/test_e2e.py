"""End to end: emulator (firmware on virtual boards) -> real Mosquitto -> the real aggregator
(a child process) -> incidents, scored against the ground truth.

The bundled demo scenario runs once in virtual time (~20 s here). Minimum figures, with room
below what the chain achieves today (100 % detection, median 92 m, side 7 of 8 right, 14 false
incidents of 23; docs/emulator.md has the error budget):
"""
from __future__ import annotations

import shutil

import pytest

from lwproto import frame as wire

from linewatch import keys
from linewatch.emulator import scenario as sc
from linewatch.emulator.commission import Commission
from linewatch.emulator.runner import RunOptions, emulate, prepare
from linewatch.emulator.score import format_text, score
from linewatch.emulator.truth import dumps
from linewatch.commission.store import FRAME, open_store
from linewatch.mosquitto import Mosquitto, find_mosquitto, BrokerError

MIN_DETECTION_RATE = 0.85
# measured 9.5-14 m with the air temperature and wind known to fusion (92 m before)
MAX_LOCALIZATION_MEDIAN_M = 50.0
MIN_SIDE_ACCURACY = 0.75
# 28 before the synthesizer's blasts stopped ending in a click (a lone false event each);
# 20 of 29 before a burst became one incident; 0 of 9 once withdrawn incidents (all their
# reports moved to another incident) stopped counting as incidents
MAX_FALSE_INCIDENTS = 4

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    try:
        find_mosquitto()
    except BrokerError as exc:
        pytest.skip(str(exc))
    folder = tmp_path_factory.mktemp("e2e")
    scenario = sc.load("demo")
    world, truth = prepare(scenario, real_time=False)
    with Mosquitto(workdir=folder / "broker") as broker:
        desk = Commission.prepare(folder / "commission", world, (broker.host, broker.port))
        desk.start_aggregator()
        try:
            options = RunOptions((broker.host, broker.port), folder / "nodes", desk.master_key,
                                 virtual=True, drain_s=10, progress=False)
            summary = emulate(scenario, world, options)
        finally:
            code = desk.stop_aggregator()
    incidents = desk.incidents()
    yield {"truth": truth, "summary": summary, "desk": desk, "exit": code,
           "incidents": incidents, "score": score(truth, incidents)}
    shutil.rmtree(folder, ignore_errors=True)


def test_incidents_meet_the_stated_minimum_figures(run):
    result = run["score"]
    print(format_text(result))
    assert run["exit"] == 0, run["desk"].log_tail()
    assert result["heard"] == 9
    assert result["detection_rate"] >= MIN_DETECTION_RATE, result["missed"]
    assert result["localization_error_m"]["count"] >= 3
    assert result["localization_error_m"]["median"] <= MAX_LOCALIZATION_MEDIAN_M
    assert result["side"]["accuracy"] >= MIN_SIDE_ACCURACY, result["side"]
    assert result["false_incidents"] <= MAX_FALSE_INCIDENTS, result["false"]


def test_every_stored_frame_verifies_with_its_node_key_and_none_was_forged(run):
    desk = run["desk"]
    store = open_store(str(desk.db_path), "NORMAL")
    try:
        frames = [row for row in store.evidence() if row.kind == FRAME]
        refused = store.refusals_by_reason()
    finally:
        store.close()
    # a frame sent twice (a reconnect, a resend under load) is refused as a replay: that is
    # the dedup working; anything else (bad tag, unknown node, wrong topic) is a failure
    assert set(refused) <= {"replay"}, refused
    assert len(frames) >= run["summary"].frames
    for row in frames:
        f = wire.decode(row.raw, keys.derive(desk.master_key, row.node))
        assert (f.node, f.boot, f.seq) == (row.node, row.boot, row.seq)
    # a node's key does not verify another node's frames
    other = frames[0]
    with pytest.raises(Exception):
        wire.decode(other.raw, keys.derive(desk.master_key, other.node ^ 1))


def test_faults_reach_the_commission(run):
    store = open_store(str(run["desk"].db_path), "NORMAL")
    try:
        frames = [row for row in store.evidence() if row.kind == FRAME]
    finally:
        store.close()
    # the scenario reboots 0x0202 at 30 s: its will (death) and a birth under a new boot
    births = {row.boot for row in frames if row.node == 0x0202 and row.type == "birth"}
    assert births == {1, 2}
    assert any(row.node == 0x0202 and row.type == "death" for row in frames)
    # and shakes 0x0103 at 25 s
    assert any(i["class"] == "tamper" and 0x0103 in i["nodes"] for i in run["incidents"])
    assert run["summary"].left_in_queues == 0


def test_same_seed_same_truth():
    scenario = sc.load("demo")
    first = dumps(prepare(scenario, real_time=False)[1])
    again = dumps(prepare(sc.load("demo"), real_time=False)[1])
    assert first == again
    other = sc.parse({**_raw_demo(), "scenario": {**_raw_demo()["scenario"], "seed": 8}})
    assert dumps(prepare(other, real_time=False)[1]) != first


def _raw_demo() -> dict:
    import tomllib
    return tomllib.loads((sc.SCENARIO_DIR / "demo.toml").read_text())
