"""Fuzz the whole frame path with atheris (coverage-guided, libFuzzer's mutator): topic parsing,
peek, decode and verify (protocol's and the host's decoders, which must agree), and the
commission's ingest classification (registry, tag, topic, replay guard), seeded with the golden
vectors. A finding is any exception other than ProtocolError out of the decoders, the two
decoders disagreeing, a frame accepted that does not verify under its node's key, or ingest
refusing with reason "internal" (an exception it caught). Findings are counted and the first
few printed with their input in hex; the run goes on to its budget.

    python -m lwtools.bench.fuzz                       # 1,000,000 inputs (docs/reliability.md)
    python -m lwtools.bench.fuzz --inputs 20000 --seed 1

Not in the default test run: a million inputs take ~10-20 min on this machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "v1.json"
TOPIC_KINDS = ("event", "heartbeat", "birth", "death", "sleep", "down", "x")


class Target:
    """One input -> topic and bytes -> every stage; findings kept, never raised."""

    def __init__(self, folder: Path) -> None:
        from linewatch.commission.ingest import Ingest
        from linewatch.commission.registry import Registry
        from linewatch.commission.store import open_store
        from lwproto import replay
        vectors = json.loads(VECTORS.read_text())
        self.master = bytes.fromhex(vectors["master_key"])
        self.store = open_store(str(folder / "fuzz.db"), "OFF")
        registry = Registry(self.store)
        nodes = sorted({v["node"] for v in vectors["valid"] if v["node"]})
        for n in nodes:
            registry.add(n, n >> 8, 48.0, 37.0)
        self.segments = {n: n >> 8 for n in nodes}
        self.ingest = Ingest(registry, self.master, replay.ReplayGuard())
        self.seeds = [bytes.fromhex(v["hex"]) for v in vectors["valid"] + vectors.get("older", [])]
        self.inputs = 0
        self.outcomes: Counter[str] = Counter()
        self.findings: Counter[str] = Counter()
        self.examples: list[str] = []
        self.budget = 0
        self.report = lambda: None

    def topic_for(self, raw: bytes, choice: int) -> str:
        node = (raw[1] << 8 | raw[2]) if len(raw) >= 3 else 0x0102
        kind = TOPIC_KINDS[choice % len(TOPIC_KINDS)]
        if choice & 0x80:      # another node's or a misspelt topic now and then
            return "lw/%d/%04x/%s" % ((choice >> 3) & 7, node ^ (choice & 3), kind)
        return "lw/%d/%04x/%s" % (self.segments.get(node, 1), node, kind)

    def one(self, data: bytes) -> None:
        self.inputs += 1
        if data:
            choice, raw = data[0], data[1:]
            topic = self.topic_for(raw, choice)
            try:
                self._stages(topic, raw)
            except Exception as exc:       # noqa: BLE001  a finding: counted, the run goes on
                self._finding("%s: %s" % (type(exc).__name__, str(exc)[:120]), topic, raw)
        if self.inputs % 100_000 == 0 or self.inputs == self.budget:
            self.report()   # libFuzzer ends the process with _exit: no atexit

    def _stages(self, topic: str, raw: bytes) -> None:
        from linewatch import keys
        from lwproto import frame as wire, hostframe, topic as topics
        from lwproto.errors import ProtocolError
        try:
            topics.parse(topic)
        except ProtocolError:
            pass
        node = (raw[1] << 8 | raw[2]) if len(raw) >= 3 else 0x0102
        key = keys.derive(self.master, node)
        try:
            wire.peek(raw)
        except ProtocolError:
            pass
        verdicts = []
        for decode in (wire.decode, hostframe.decode):
            try:
                f = decode(raw, key)
                verdicts.append(("ok", f.ftype, f.node, f.boot, f.seq))
            except ProtocolError as exc:
                verdicts.append(("refused", exc.reason))
        if verdicts[0] != verdicts[1]:
            self._finding("decoders disagree: %r vs %r" % (verdicts[0], verdicts[1]), topic, raw)
        result = self.ingest.process(topic, raw, 1_795_000_000_000_000 + self.inputs)
        if result is None:
            self.outcomes["ignored (downlink)"] += 1
            return
        reason = getattr(result, "reason", None)
        if reason is None:
            self.outcomes["accepted"] += 1
            if verdicts[0][0] != "ok":
                self._finding("ingest accepted a frame the decoder refuses", topic, raw)
            return
        self.outcomes[reason] += 1
        if reason == "internal":
            self._finding("ingest internal: %s" % result.detail[:120], topic, raw)

    def _finding(self, what: str, topic: str, raw: bytes) -> None:
        self.findings[what] += 1
        if len(self.examples) < 10 and self.findings[what] == 1:
            self.examples.append("%s | topic %s | %s" % (what, topic, raw.hex()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lwtools.bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs to run (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=0, help="the mutator's seed (default 0)")
    args = parser.parse_args(argv)
    import logging
    logging.disable(logging.CRITICAL)     # the refusal log would print every refusal of note
    try:
        import atheris
    except ImportError:
        print("fuzz: atheris is not installed (`make setup-test` installs it on x86-64)", file=sys.stderr)
        return 1
    with atheris.instrument_imports():
        import lwproto.frame  # noqa: F401
        import lwproto.hostframe  # noqa: F401
        import lwproto.topic  # noqa: F401
        import lwproto.replay  # noqa: F401
        import linewatch.commission.ingest  # noqa: F401
    folder = Path(tempfile.mkdtemp(prefix="lw-fuzz-"))
    corpus = folder / "corpus"
    corpus.mkdir()
    target = Target(folder)
    for i, seed in enumerate(target.seeds):
        for kind in range(len(TOPIC_KINDS)):
            (corpus / ("seed-%02d-%d" % (i, kind))).write_bytes(bytes([kind]) + seed)
    started = time.monotonic()

    def report() -> None:
        took = time.monotonic() - started
        print("fuzz: %d inputs in %.0f s (%.0f/s), seed %d" % (target.inputs, took, target.inputs / max(took, 1e-9),
                                                             args.seed))
        print("fuzz: outcomes: " + ", ".join("%s %d" % kv for kv in target.outcomes.most_common()))
        print("fuzz: findings: %d (%d distinct)" % (sum(target.findings.values()), len(target.findings)))
        for line in target.examples:
            print("fuzz:   " + line)
        sys.stdout.flush()

    target.budget, target.report = args.inputs, report
    atheris.Setup([sys.argv[0], "-runs=%d" % args.inputs, "-seed=%d" % args.seed, "-max_len=256",
                   "-print_final_stats=0", str(corpus)], target.one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
