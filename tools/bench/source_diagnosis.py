"""Why each true source of an emulated run was located, misplaced or missed.

For every blast and burst heard by 3 or more nodes of a run folder (`linewatch emulate ...
--out DIR`), against the world the run was made from (the scenario is regenerated from the
truth: a bundled scenario by name, a generated one from its seed, hours and line length):

- heard: nodes in the truth's `heard_by`; rep: of those, nodes whose event frame is this
  source's arrival (the onset, taken back to true time with the node's clock model, within
  150 ms of the true arrival of one of its shots);
- pick / clock: the reported onsets' error against the true arrival (median |error| and the
  worst, ms), split into the node clock's own error and the rest (block stamp and pick);
  "late" counts arrivals more than 3 stated sigmas off (stated clock error + 1 ms of pick);
- outcome: what the scorer made of it (located / heard / misplaced / missed), its error (of a
  "mirror" fix, which claims two places and is scored as heard: the nearer place's), the
  incident and how many of its used nodes carry other sounds' reports ("mix");
- iso: the same fusion code fed this source's reports alone (first shot per node, in the order
  stored): what fusion makes of them with nothing else around, and with every onset replaced
  by the true arrival ("exact": no clock, no pick), and that again told the true air at the
  source ("air": the temperature and wind there, taken as known). So:
  too few reports -> the detectors; iso bad, exact good -> timing; exact bad, air good -> the
  air fusion was told/estimated; air bad -> geometry (a far source off one row; its mirror);
  iso good, product bad -> association (mixed or split) or the scorer's gates.
- cause: that reading as a word.

    python -m lwtools.bench.source_diagnosis RUN_DIR [RUN_DIR ...] [--line-km 20] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from lwproto import const, hostframe

from linewatch import keys
from linewatch.commission.config import load as load_config
from linewatch.commission.fusionhook import incident_dict
from linewatch.commission.store import open_store
from linewatch.emulator import scenario as sc
from linewatch.emulator import score as scoring
from linewatch.emulator.gates import DISTANCE_GATE_M, Gates, family, one_to_one
from linewatch.emulator.synth import Synthesizer
from linewatch.emulator.truth import load_truth
from linewatch.fusion import FusionConfig, FusionEngine, Report
from linewatch.geo import ContactLine, LocalFrame, haversine_m

MATCH_US = 150_000
PICK_US = 1_000
GOOD_M = DISTANCE_GATE_M


def world_of(truth: dict, line_km: float | None):
    """The scenario and world the run was made from."""
    name = truth.get("scenario") or ""
    if name.startswith("generated-"):
        if line_km is None:
            line = truth["line"]
            line_km = round(sum(haversine_m(*a, *b) for a, b in zip(line, line[1:])) / 1000.0)
        rows = 1 + max((n.get("row") or 0) for n in truth["nodes"])
        scenario = sc.generate(int(truth["seed"]), hours=float(truth["duration_s"]) / 3600.0,
                               line_km=float(line_km), rows=rows)
    else:
        scenario = sc.load(name)
    world = scenario.build_world(None)
    if len(world.nodes) != len(truth["nodes"]) or any(
            abs(n.lat - t["lat"]) > 1e-6 for n, t in zip(world.nodes, truth["nodes"])):
        raise SystemExit("source_diagnosis: the regenerated world is not the run's (give --line-km)")
    return scenario, world


def reports_of(run: Path):
    """Every verified event frame as fusion's Report, in the order stored; the run's config."""
    config = load_config(run / "commission" / "aggregator.toml")
    master = keys.load_master_key(config.keys.master_key_file)
    store = open_store(config.store.path, "NORMAL")
    try:
        nodes = {n.id: n for n in store.nodes()}
        rows = [r for r in store.evidence() if r.kind == "frame" and r.type == "event"]
    finally:
        store.close()
    out = []
    for row in rows:
        frame = hostframe.decode(row.raw, keys.derive(master, row.node))
        node, v = nodes[frame.node], frame.fields()
        out.append(Report(frame.node, node.lat, node.lon, node.alt_m, const.CLASS_NAMES[v["event_class"]],
                          frame.time_us + v["onset_offset_us"], frame.clock_error_us, v["confidence"],
                          v["peak_db"], v["duration_ms"], v["frequency_hz"], v["snr_db"], row.id,
                          row.received_us, clock_source=const.CLOCK_NAMES[frame.clock_source]))
    return config, out


def match_reports(world, synth, reports):
    """{evidence id: (source id, shot, true arrival us, clock error us)} for reports that are a
    true arrival at their node."""
    times = {}
    for node, arrivals in synth.arrivals.items():
        times[node] = (np.array([world.start_utc_us + a.arrival_s * 1e6 for a in arrivals]), arrivals)
    out = {}
    for r in reports:
        t, arrivals = times.get(r.node_id, (None, None))
        if t is None or not len(t):
            continue
        clock = world.node(r.node_id).clock
        true_guess = clock.true_time_us(r.onset_utc_us)
        k = int(np.argmin(np.abs(t - true_guess)))
        if abs(t[k] - true_guess) <= MATCH_US:
            out[r.evidence_id] = (arrivals[k].source_id, arrivals[k].shot, float(t[k]), clock.offset_at(t[k]))
    return out


def engine_for(config, line, temperature_c=None, wind=None, known_air=False) -> FusionEngine:
    f = config.fusion
    cfg = FusionConfig()
    if known_air:
        cfg = replace(cfg, sound_speed_sd_mps=0.0, wind_sd_mps=0.0)
    engine = FusionEngine(line, cfg)
    engine.set_temperature(f.temperature_c if temperature_c is None else temperature_c)
    speed, frm = (f.wind_speed_mps, f.wind_from_deg) if wind is None else wind
    if speed:
        engine.set_wind(speed, frm)
    return engine


def isolated(engine: FusionEngine, reports) -> dict | None:
    """The fix fusion makes of these reports alone (the published incident with most nodes)."""
    latest: dict[str, dict] = {}

    def keep(incidents):
        for i in incidents:
            d = incident_dict(i)
            latest[d["id"]] = d

    for r in reports:
        keep(engine.add(r, r.received_at_us))
        while engine.parked():
            keep(engine.settle(r.received_at_us))
    last = reports[-1].received_at_us if reports else 0
    for k in range(120):
        keep(engine.tick(last + k * 1_000_000))
    kept = [d for d in latest.values() if not scoring.withdrawn(d)]
    return max(kept, key=lambda d: len(d.get("nodes") or ()), default=None)


def fix_error(inc: dict | None, src: dict) -> float | None:
    """How far a fix is from the source; a "mirror" fix (two places, fusion cannot tell which):
    its nearer place."""
    if not inc or inc.get("fix") not in ("tdoa", "mirror") or inc.get("lat") is None:
        return None
    d = haversine_m(inc["lat"], inc["lon"], src["lat"], src["lon"])
    other = inc.get("mirror") if inc.get("fix") == "mirror" else None
    if isinstance(other, dict) and other.get("lat") is not None:
        d = min(d, haversine_m(other["lat"], other["lon"], src["lat"], src["lon"]))
    return d


def mirror_error(inc: dict | None, src: dict, world) -> float | None:
    """Distance of the fix from the source's mirror image across the straight row of the
    fix's nodes (one row cannot tell them apart)."""
    if not inc or inc.get("lat") is None or len(inc.get("nodes") or ()) < 2:
        return None
    frame = LocalFrame(src["lat"], src["lon"])
    xy = np.array([frame.to_xy(world.node(n).lat, world.node(n).lon) for n in inc["nodes"]])
    centre = xy.mean(axis=0)
    _, _, vt = np.linalg.svd(xy - centre)
    u = vt[0]
    p = -centre                                       # the source is the frame's origin
    image = centre + 2 * (p @ u) * u - p
    fx, fy = frame.to_xy(inc["lat"], inc["lon"])
    return float(math.hypot(fx - image[0], fy - image[1]))


def diagnose(run: Path, line_km: float | None = None) -> list[dict]:
    truth = load_truth(run / "truth.json")
    scenario, world = world_of(truth, line_km)
    synth = Synthesizer(world, scenario.sources, scenario.faults, scenario.seed)
    config, reports = reports_of(run)
    line = ContactLine([tuple(p) for p in config.fusion.line])
    matched = match_reports(world, synth, reports)
    incidents = [i for i in scoring.load_incidents(run / "incidents.jsonl") if not scoring.withdrawn(i)]
    result = scoring.score(truth, incidents)
    gates = Gates(truth)
    cands, _ = scoring._candidates(gates, truth["sources"], incidents, [])
    hits = one_to_one(cands)
    owner = {}
    for ii, inc in enumerate(incidents):
        for e in inc.get("reports") or ():
            owner[e] = ii
    by_id = {r.evidence_id: r for r in reports}
    rows = []
    for si, src in enumerate(truth["sources"]):
        if family(src.get("class")) not in ("explosion", "small_arms") or len(src.get("heard_by") or ()) < 3:
            continue
        mine = [e for e, m in matched.items() if m[0] == src["id"]]
        first: dict[int, int] = {}
        for e in sorted(mine, key=lambda e: by_id[e].onset_utc_us):
            first.setdefault(by_id[e].node_id, e)
        errs, clock_errs, late = [], [], 0
        for node, e in first.items():
            r, m = by_id[e], matched[e]
            total = r.onset_utc_us - m[2]
            errs.append(total)
            clock_errs.append(m[3])
            sigma = math.hypot(r.clock_error_us, PICK_US)
            late += abs(total) > 3 * sigma
        hit = hits.get(si)
        misplaced = [c for c in cands if c.source == si and c.quality == "misplaced"]
        outcome, err, inc = "missed", None, None
        if hit is not None:
            outcome, err, inc = hit.quality, hit.error_m, incidents[hit.incident]
            if err is None and inc.get("fix") == "mirror":
                err = fix_error(inc, src)          # heard: the nearer of its two places
        elif misplaced:
            c = min(misplaced, key=lambda c: c.error_m)
            outcome, err, inc = "misplaced", c.error_m, incidents[c.incident]
        mix = 0
        if inc is not None:
            for e in inc.get("reports") or ():
                if e in by_id and matched.get(e, (None,))[0] not in (src["id"],):
                    mix += by_id[e].node_id in (inc.get("nodes") or ())
        split = len({owner[e] for e in first.values() if e in owner})
        iso_reports = sorted((by_id[e] for e in first.values()), key=lambda r: r.received_at_us)
        iso = exact = air = None
        if len(iso_reports) >= 3:
            iso = isolated(engine_for(config, line), iso_reports)
            exact_reports = [replace(r, onset_utc_us=int(matched[r.evidence_id][2])) for r in iso_reports]
            exact = isolated(engine_for(config, line), exact_reports)
            t_s = (src["time_utc_us"] - world.start_utc_us) / 1e6
            temp = float(world.air.temperature_at(src["lat"], src["lon"], t_s))
            east, north = world.air.wind_at(src["lat"], src["lon"], t_s, gusts=False)
            speed = math.hypot(float(east), float(north))
            frm = (math.degrees(math.atan2(float(east), float(north))) + 180.0) % 360.0
            air = isolated(engine_for(config, line, temp, (speed, frm), known_air=True), exact_reports)
        iso_m, exact_m, air_m = fix_error(iso, src), fix_error(exact, src), fix_error(air, src)
        mirror_m = mirror_error(inc if inc is not None and inc.get("fix") in ("tdoa", "mirror") else iso, src, world)
        cause = _cause(outcome, err, len(first), iso_m, exact_m, air_m, mirror_m, mix, split, inc)
        rows.append({
            "run": str(run), "source": src["id"], "class": src["class"], "side": src.get("side"),
            "off_line_m": src.get("distance_from_line_m"), "heard": len(src.get("heard_by") or ()),
            "reported": len(first), "kinds": dict(Counter(by_id[e].event_class for e in first.values())),
            "pick_ms": None if not errs else float(np.median(np.abs(np.subtract(errs, clock_errs)))) / 1e3,
            "err_ms": None if not errs else float(np.median(np.abs(errs))) / 1e3,
            "worst_ms": None if not errs else float(np.max(np.abs(errs))) / 1e3,
            "late": late, "outcome": outcome, "error_m": err,
            "incident": None if inc is None else inc["id"], "fix": None if inc is None else inc.get("fix"),
            "used": None if inc is None else len(inc.get("nodes") or ()), "mix": mix, "split": split,
            "iso_m": iso_m, "exact_m": exact_m, "air_m": air_m, "mirror_m": mirror_m,
            "told": {"temperature_c": config.fusion.temperature_c, "wind": [config.fusion.wind_speed_mps,
                                                                           config.fusion.wind_from_deg]},
            "cause": cause,
        })
    false_rows = []
    false_ids = set(result["false"]["ids"])
    for inc in incidents:
        if inc["id"] not in false_ids or family(inc.get("class")) not in ("explosion", "small_arms", None) \
                or inc.get("class") in ("drone", "vehicle", "tamper"):
            continue
        used = set(inc.get("nodes") or ())
        whose = Counter()
        for e in inc.get("reports") or ():
            if e in by_id and by_id[e].node_id in used:
                whose[matched.get(e, ("background",))[0]] += 1
        near = None
        for src in truth["sources"]:
            if src["id"] in whose and inc.get("lat") is not None:
                d = haversine_m(inc["lat"], inc["lon"], src["lat"], src["lon"])
                near = d if near is None else min(near, d)
        kind = "mixed sounds" if len(whose) > 1 else "one source (%s)" % inc.get("fix") if whose and \
            "background" not in whose else "background" if whose else "-"
        false_rows.append({"run": str(run), "incident": inc["id"], "class": inc.get("class"),
                           "fix": inc.get("fix"), "nodes": len(used), "whose": dict(whose),
                           "error_m": near, "kind": kind})
    return rows, result, false_rows


def _ok(m):
    return m is not None and m <= GOOD_M


def _cause(outcome, err, reported, iso_m, exact_m, air_m, mirror_m, mix, split, inc) -> str:
    if outcome == "located":
        return "ok"
    if inc is not None and inc.get("fix") == "mirror":
        return "mirror image (said as such: two places)"
    if reported < 3:
        return "detectors (fewer than 3 reports)"
    wrong = err if err is not None else iso_m
    if mirror_m is not None and wrong is not None and wrong > GOOD_M and mirror_m < wrong / 2:
        return "mirror image"
    if _ok(iso_m):
        if err is not None and err <= GOOD_M:
            return "gates (within 250 m, outside its ellipse + 25 m)"
        if mix:
            return "association (other sounds' arrivals in the fix)"
        if split > 1:
            return "association (split over %d incidents)" % split
        return "association / not published (alone it is located)"
    if _ok(exact_m):
        return "timing (clock or pick)"
    if _ok(air_m):
        return "air (told/estimated air)"
    return "geometry (even exact arrivals in the true air miss)"


def _fmt(x, f="%.0f"):
    return "-" if x is None else f % x


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--line-km", type=float, help="the generated line's length (default: from the truth)")
    parser.add_argument("--json", type=Path, help="write every row here (JSON lines)")
    args = parser.parse_args(argv)
    all_rows, all_false = [], []
    print("| run | source | heard | rep | err ms (worst) | late | outcome | error m | fix used/mix/split | "
          "iso m | exact m | air m | mirror m | cause |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        rows, _, false_rows = diagnose(run, args.line_km)
        all_rows += rows
        all_false += false_rows
        for r in rows:
            print("| %s | %s | %d | %d | %s (%s) | %d | %s | %s | %s %s/%d/%d | %s | %s | %s | %s | %s |" % (
                run.name, r["source"], r["heard"], r["reported"], _fmt(r["err_ms"], "%.1f"),
                _fmt(r["worst_ms"], "%.0f"), r["late"], r["outcome"], _fmt(r["error_m"]), r["fix"] or "-",
                _fmt(r["used"], "%d"), r["mix"], r["split"], _fmt(r["iso_m"]), _fmt(r["exact_m"]),
                _fmt(r["air_m"]), _fmt(r["mirror_m"]), r["cause"]))
    print("\ncauses over %d sources: %s" % (len(all_rows), ", ".join(
        "%s %d" % kv for kv in Counter(r["cause"] for r in all_rows).most_common())))
    print("\nfalse impulsive incidents (used nodes' reports by true source):")
    for f in all_false:
        print("  %s %s %s %s, %d nodes: %s; nearest of those sources %s m -> %s" % (
            Path(f["run"]).name, f["incident"], f["class"], f["fix"], f["nodes"],
            ", ".join("%s %d" % kv for kv in sorted(f["whose"].items())) or "none", _fmt(f["error_m"]), f["kind"]))
    print("false by kind: %s" % ", ".join("%s %d" % kv for kv in Counter(f["kind"] for f in all_false).most_common()))
    if args.json:
        with args.json.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in all_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
