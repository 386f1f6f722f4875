"""SPEC rules an outside implementer asked about (issue 12, defect 8), held by the golden
vectors in protocol/vectors/v1.json: the replay rule through the commission's own ingest with
real frames, and the master key file through the commission's loader."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lwproto import const, frame as wire, replay, topic as topics
from linewatch import keys
from linewatch.commission.ingest import Accepted, Ingest
from linewatch.commission.registry import Registry
from linewatch.commission.store import Refusal, open_store

VECTORS = json.loads((Path(__file__).parents[2] / "protocol" / "vectors" / "v1.json").read_text())
MASTER = bytes.fromhex(VECTORS["master_key"])
NODE, SEGMENT = 0x0102, 3
KINDS = {"event": const.EVENT, "birth": const.BIRTH, "death": const.DEATH}


def make(kind: str, boot: int, seq: int) -> bytes:
    key = keys.derive(MASTER, NODE)
    valid = {v["name"]: v["fields"] for v in VECTORS["valid"]}
    return wire.encode(key, KINDS[kind], NODE, boot, seq, 1795000000000000 + seq, const.CLOCK_NTP, 100,
                       valid[kind])


@pytest.fixture
def ingest(tmp_path):
    store = open_store(str(tmp_path / "lw.db"))
    Registry(store).add(NODE, SEGMENT, 48.0, 37.0)
    yield Ingest(Registry(store), MASTER, replay.ReplayGuard(4))
    store.close()


@pytest.mark.parametrize("case", VECTORS["replay"], ids=lambda c: c["name"][:40])
def test_replay_vectors_through_the_commissions_ingest(ingest, case):
    for i, step in enumerate(case["steps"]):
        kind = step[0]
        if kind == "lost":
            ingest.guard.forget(NODE, *step[1:])
            continue
        if kind == "ack":
            assert ingest.guard.contiguous(NODE, step[1]) == step[2], (i, step)
            continue
        _, boot, seq, want = step
        result = ingest.process(topics.uplink(SEGMENT, NODE, KINDS[kind]), make(kind, boot, seq), 1)
        got = "accept" if isinstance(result, Accepted) else result.reason
        assert got == want, (i, step, result.detail if isinstance(result, Refusal) else "")


def test_seq_zero_is_refused_as_out_of_range(ingest):
    data = make("event", 1, 1)
    key = keys.derive(MASTER, NODE)
    from lwproto import auth
    body = data[:5] + bytes(4) + data[9:-8]
    result = ingest.process(topics.uplink(SEGMENT, NODE, const.EVENT), body + auth.tag(key, body), 1)
    assert isinstance(result, Refusal) and result.reason == "out_of_range" and "seq 0" in result.detail


@pytest.mark.parametrize("case", VECTORS["key_files"], ids=lambda c: repr(c["text"][:12]) + str(c["valid"]))
def test_master_key_file_format(tmp_path, case):
    path = tmp_path / "master.key"
    path.write_text(case["text"])
    path.chmod(0o600)
    if case["valid"]:
        assert keys.load_master_key(path) == MASTER
    else:
        with pytest.raises(keys.KeyFileError, match="32 bytes as 64 hex digits"):
            keys.load_master_key(path)


def test_rounding_vectors_on_the_encoder():
    for r in VECTORS["rounding"]:
        v = next(v for v in VECTORS["valid"] if v["name"] == r["type"])
        h = v["header"]
        data = wire.encode(bytes.fromhex(v["key"]), v["type"], v["node"], h["boot"], h["seq"], h["time_us"],
                           h["clock_source"], h["clock_error_us"], {**v["fields"], r["field"]: r["value"]})
        assert data.hex() == r["hex"], r
