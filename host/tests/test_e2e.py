"""End to end: emulator (firmware on virtual boards) -> real Mosquitto -> the real aggregator
(a child process) -> incidents, scored against the ground truth.

The bundled demo scenario runs once in virtual time (~30 s here) in its realism profile,
`field` (docs/scenarios.md "Realism profiles": a met station's reading, board thermometers,
surveyed positions, air that varies, clocks and block stamps as the boards keep them),
scored by the strict scorer (docs/scenarios.md "Score"). Minimum figures, with room below
what the chain achieves today: 7 blasts and bursts heard by >= 3 nodes, all 7 reported and
located, median 6.5 m, p90 118-133 m, side right for 7 of 7, 3-4 false incidents of 12-13
(three runs, 2026-12-04, after fusion weighed the field's air, timing and positions; before,
4 of 7 located, median 15.0 m, side 4 of 7, 6 false of 12).
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

# Strict gates since the strict scorer (a fix within 250 m and its own ellipse + 25 m, 2 s);
# before it, any incident within 10 s matched and the test asked detection >= 85 % of the
# sources heard by any node, median <= 50 m, side >= 75 % of the decided, false <= 4.
# In the ideal world (fusion's own model: `linewatch emulate demo --profile ideal`) the chain
# gave 6 of 7 located, side right 6 of 7, 2 false of 10 and the test asked 5, 5, 5/7 and 4.
MIN_RECALL = 5 / 7                   # of the 7 blasts and bursts heard by >= 3 nodes
MIN_LOCATED = 5                      # of those 7, located within the gates
MAX_LOCALIZATION_MEDIAN_M = 25.0
MIN_SIDE_RIGHT = 5 / 7               # undecided and missing count as not right
MAX_FALSE_INCIDENTS = 6

# A hang guard, not a speed limit (the run takes ~1 min idle, a few under load 20): the
# thread method, because the signal method's exception is raised wherever the main thread
# is, which here is the emulator's event loop, and asyncio catches it in a callback or ends
# one task with it, so the run goes on (a test hung past its timeout so).
pytestmark = pytest.mark.timeout(900, method="thread")


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
    assert result["hearing"]["heard_by_3_or_more"] == 7 and result["hearing"]["not_heard"] == 0
    assert result["recall"]["rate"] >= MIN_RECALL, result["missed"]
    loc = result["localization_error_m"]
    assert loc["located"] >= MIN_LOCATED, result["unlocated"]
    assert loc["median"] <= MAX_LOCALIZATION_MEDIAN_M
    assert result["side"]["rate"] >= MIN_SIDE_RIGHT, result["side"]
    assert result["false"]["count"] <= MAX_FALSE_INCIDENTS, result["false"]
    assert result["tamper"]["reported"] == 1


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
    # and the aggregator's own log (journalctl's view) tells each of these, in words
    log = run["desk"].log_tail(chars=10**7)
    assert "node 0x0202 died (boot 1)" in log and "node 0x0202 born: boot 2" in log
    assert "node 0x0103: online -> tampered" in log
    assert "incident formed: " in log and " UTC explosion, located at " in log


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


def test_direct_tier_agrees_with_the_full_chain(run, tmp_path):
    """The direct tier (linewatch.emulator.direct: the firmware's detector and frames handed
    to the commission in-process, no broker, radio, queue or acks) on the same scenario: the
    same sources heard and located, as many false incidents give or take two."""
    from linewatch.emulator.direct import emulate_direct
    scenario = sc.load("demo")
    world, truth = prepare(scenario, real_time=False)
    desk = Commission.prepare(tmp_path / "commission", world, ("127.0.0.1", 1))
    summary = emulate_direct(scenario, world, desk.folder, desk.master_key, desk.config_path, tmp_path / "nodes")
    direct, full = score(truth, desk.incidents()), run["score"]
    print(summary.text())
    print(format_text(direct))
    assert abs(summary.detections - run["summary"].detections) <= 0.1 * run["summary"].detections
    assert direct["hearing"] == full["hearing"]
    assert len(set(direct["unlocated"]) ^ set(full["unlocated"])) <= 1, (direct["unlocated"], full["unlocated"])
    assert abs(direct["localization_error_m"]["located"] - full["localization_error_m"]["located"]) <= 1
    assert abs(direct["recall"]["reported"] - full["recall"]["reported"]) <= 1
    assert abs(direct["false"]["count"] - full["false"]["count"]) <= 2, (direct["false"], full["false"])
    assert direct["tamper"]["reported"] == full["tamper"]["reported"] == 1
