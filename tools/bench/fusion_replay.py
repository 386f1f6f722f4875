"""Fusion again over a recorded run: the evidence log's event frames, in the order the
commission stored them, replayed into a fresh FusionEngine in virtual time, then scored.

A run folder is what `linewatch emulate --out DIR` leaves (DIR/commission holds the
aggregator's config, master key and SQLite evidence log; DIR/truth.json the ground truth).
Each verified event frame becomes the Report the aggregator's fusion hook would make (the
registered position of its node), heartbeats give the nodes' temperatures as they do in the
service, and the commission's receive time is the caller's clock. Fusion's wide searches run
at once (no idle moments to wait for), so figures can differ from the live run by a few
incidents; what it is for is comparing fusion code on the very same reports in seconds
instead of minutes. With --idle-ms the deferred searches wait for a gap between frames, as
in the service.

    python -m lwtools.bench.fusion_replay RUN_DIR [RUN_DIR ...] [--incidents OUT.jsonl] [--digest]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from lwproto import const, hostframe

from linewatch import keys
from linewatch.commission.config import load as load_config
from linewatch.commission.fusionhook import FusionHook, incident_dict
from linewatch.commission.store import open_store
from linewatch.emulator.score import format_text, score
from linewatch.emulator.truth import load_truth
from linewatch.fusion import FusionConfig, FusionEngine, Report
from linewatch.geo import ContactLine

TICK_US = 1_000_000


def replay(run: Path, idle_us: int | None = None) -> tuple[list[dict], dict]:
    """Every incident state fusion publishes over the run's reports, and the run's counts."""
    commission = run / "commission"
    config = load_config(commission / "aggregator.toml")
    master = keys.load_master_key(config.keys.master_key_file)
    store = open_store(config.store.path, "NORMAL")
    try:
        nodes = {n.id: n for n in store.nodes()}
        rows = [r for r in store.evidence() if r.kind == "frame" and r.type in ("event", "heartbeat")]
    finally:
        store.close()
    engine = FusionEngine(ContactLine([tuple(p) for p in config.fusion.line]), FusionConfig())
    if config.fusion.wind_speed_mps:
        engine.set_wind(config.fusion.wind_speed_mps, config.fusion.wind_from_deg)
    hook = FusionHook(engine, Report, config.fusion.temperature_c)
    out: list[dict] = []
    derived: dict[int, bytes] = {}
    next_tick = None
    cpu = 0.0
    events = 0
    last_us = None
    for row in rows:                        # in the order stored, which is the order fed
        if idle_us is not None and last_us is not None and row.received_us - last_us >= idle_us:
            while engine.parked():          # the service settles them while no frame waits
                out += [incident_dict(i) for i in engine.settle(last_us)]
        last_us = row.received_us
        key = derived.get(row.node) or derived.setdefault(row.node, keys.derive(master, row.node))
        frame = hostframe.decode(row.raw, key)
        now = row.received_us
        started = time.process_time()
        if next_tick is None:
            next_tick = now + TICK_US
        while now >= next_tick:
            out += hook.tick(next_tick)
            next_tick += TICK_US
        if frame.ftype == const.HEARTBEAT:
            hook.heartbeat(frame.node, frame.field("temperature_c"))
        else:
            node = nodes[frame.node]
            v = frame.fields()
            report = Report(frame.node, node.lat, node.lon, node.alt_m, const.CLASS_NAMES[v["event_class"]],
                            frame.time_us + v["onset_offset_us"], frame.clock_error_us, v["confidence"],
                            v["peak_db"], v["duration_ms"], v["frequency_hz"], v["snr_db"], row.id, now,
                            clock_source=const.CLOCK_NAMES[frame.clock_source])
            out += [incident_dict(i) for i in engine.add(report, now)]
            while idle_us is None and engine.parked():
                out += [incident_dict(i) for i in engine.settle(now)]
            events += 1
        cpu += time.process_time() - started
    while engine.parked():
        out += [incident_dict(i) for i in engine.settle(last_us)]
    if next_tick is not None:
        for _ in range(120):                # let every incident close
            out += hook.tick(next_tick)
            next_tick += TICK_US
    return out, {"event reports": events, "fusion CPU s": round(cpu, 2)}


def latest(incidents: list[dict]) -> list[dict]:
    last: dict[str, dict] = {}
    for incident in incidents:
        last.pop(incident["id"], None)
        last[incident["id"]] = incident
    return list(last.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="folders written by `linewatch emulate --out`")
    parser.add_argument("--incidents", type=Path, help="write the replay's incidents here (JSON lines)")
    parser.add_argument("--idle-ms", type=float,
                        help="settle deferred searches only when the next frame comes this much later "
                             "(as the service does while no frame waits; default: at once)")
    parser.add_argument("--digest", action="store_true",
                        help="print a digest of every incident state published (same digest, same output)")
    args = parser.parse_args(argv)
    for run in args.runs:
        if not (run / "commission" / "aggregator.toml").is_file() or not (run / "truth.json").is_file():
            print("fusion_replay: %s is not a run folder (need commission/aggregator.toml and truth.json)" % run,
                  file=sys.stderr)
            return 2
        published, counts = replay(run, None if args.idle_ms is None else int(args.idle_ms * 1000))
        if args.incidents:
            with args.incidents.open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(i, sort_keys=True) + "\n" for i in published)
        print("== %s: %s" % (run, ", ".join("%s %s" % kv for kv in counts.items())))
        if args.digest:
            body = "\n".join(json.dumps(i, sort_keys=True) for i in published).encode()
            print("digest %s (%d incident states)" % (hashlib.sha256(body).hexdigest()[:16], len(published)))
        sys.stdout.write(format_text(score(load_truth(run / "truth.json"), latest(published))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
