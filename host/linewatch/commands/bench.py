"""`linewatch bench`: run the benchmark suite (tools/bench, `python -m lwtools.bench.NAME`)
and write what it measured, with the machine it ran on, as JSON and as a markdown table.

    linewatch bench [--out DIR] [--only ingest,fusion_latency] [--quick]

Each benchmark runs as its own process, one after the other (figures from a shared machine
move with its load: the load average is recorded before and after each). The markdown's table
names each figure, its value, the goal and the command that reproduces it; docs/performance.md
keeps the latest. Nothing here is a test: the benches print, this collects.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

# name, arguments, quick arguments, [(figure, regex on the output, goal)]
SUITE = [
    ("ingest", ["--frames", "50000"], ["--frames", "20000"], [
        ("ingest, 1 instance (SQLite FULL): wall ratio to mosquitto_sub", r"ratio aggregator / mosquitto_sub: (\S+)", ">= 0.8"),
        ("ingest, 1 instance: per busy core ratio to mosquitto_sub", r"frames/s per busy core: .* ratio (\S+)", ">= 0.8"),
        ("ingest, 1 instance: frames/s", r"aggregator \(verify.*?:\s+(\d+) frames/s", ""),
    ]),
    ("ingest_pg_1", ["--frames", "50000", "--instances", "1"], ["--frames", "20000", "--instances", "1"], [
        ("ingest, 1 instance (PostgreSQL): frames/s", r"instance\(s\), all stored:\s+(\d+) frames/s", ""),
        ("ingest, 1 instance (PostgreSQL): per busy core ratio", r"per busy core ratio (\S+)", ""),
    ]),
    ("ingest_pg_2", ["--frames", "50000", "--instances", "2"], ["--frames", "20000", "--instances", "2"], [
        ("ingest, 2 instances ($share, PostgreSQL): frames/s", r"instance\(s\), all stored:\s+(\d+) frames/s",
         "> 1 instance's"),
        ("ingest, 2 instances: wall ratio to mosquitto_sub", r"ratio instances / mosquitto_sub: (\S+)", ""),
        ("ingest, 2 instances: per busy core ratio", r"per busy core ratio (\S+)", ""),
    ]),
    ("fusion_latency", [], ["--seconds", "5"], [
        ("fusion engine alone, 1,000 event reports/s: reports/s of CPU", r"engine throughput: (\d+) reports/s", ">= 1,000"),
        ("fusion engine alone: fix latency p99 ms", r"fix latency ms \(w/ queue\):.*p99 (\S+)", "< 100"),
        ("fusion engine alone: fix latency from the 3rd arrival, p99 ms",
         r"p99 (\S+)\s+max \S+\s+\(from the 3rd arrival\)", "< 100"),
    ]),
    ("incident_latency", ["--seconds", "20"], ["--seconds", "10"], [
        ("through the service, 1,000 frames/s: p99 ms", r"^latency ms p99\s+(\S+)", "< 100"),
        ("through the service, 1,000 frames/s: first fix after the 3rd report, p99 ms",
         r"first 3-node fix, ms after 3rd report \(p50 / p99\)\s+\S+ / (\S+)", "< 100"),
    ]),
    ("emulator_tiers", ["--day-minutes", "10", "--storm-minutes", "10"], ["--day-minutes", "1", "--storm-minutes", "1"], [
        ("direct tier: 24 h of the whole line (min)", r"24 h of the whole line, projected: \S+ s = (\S+) min", "<= 10"),
        ("direct tier: 10 min storm, 500 sources, 50 km (min)", r"over 50 km, projected: \S+ s = (\S+) min", "<= 2"),
        ("direct tier: 24 h of the whole line, CPU time (min)", r"24 h of the whole line, projected: .* by CPU time \(a core of its own\) (\S+) min", "<= 10"),
        ("direct tier: 10 min storm, CPU time (min)", r"over 50 km, projected: .* by CPU time \(a core of its own\) (\S+) min", "<= 2"),
    ]),
    ("detector_speed", ["--seconds", "30"], ["--seconds", "5"], [
        ("firmware detector, unix port, viper: x real time", r"\| micropython[^|]*\| viper \| \S+ \| (\d+) \|", ">= 50"),
        ("firmware detector, CPython: x real time", r"\| cpython[^|]*\| plain \| \S+ \| (\d+) \|", ""),
    ]),
    ("node_memory", [], [], [
        ("node heap, code imported (bytes)", r"code once imported: (\d+) bytes", ""),
        ("node heap peak at 128K (bytes)", r"128K.*?peak (\d+)", "< 64 KB (issue 3)"),
    ]),
    ("frame_sizes", [], [], [
        ("event frame (bytes, tag included)", r"\bevent\b\D+(\d+)", "<= 48"),
    ]),
    ("fusion_accuracy", ["--trials", "100"], ["--trials", "10"], [
        ("fix median / CRLB median, two rows 1 km, inside, 10 ms", r"\| two rows, 1 km, \+-500 m \| inside \| 10 ms \|(?:[^|]*\|){4}\s*(\S+)", "~1"),
    ]),
]


def register(sub) -> None:
    p = sub.add_parser("bench", help="run the benchmark suite; write JSON and a markdown table")
    p.add_argument("--out", default="bench-results", help="folder for bench.json and bench.md (default bench-results)")
    p.add_argument("--only", help="comma-separated names: " + ", ".join(name for name, *_ in SUITE))
    p.add_argument("--quick", action="store_true", help="shorter runs (figures less steady)")
    p.set_defaults(func=run)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        memory = "%.1f GiB" % (int(Path("/proc/meminfo").read_text().split()[1]) / 2 ** 20)
    except (OSError, ValueError, IndexError):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent).stdout.strip()
    return {"cores": os.cpu_count(), "cpu": cpu, "memory": memory, "python": platform.python_version(),
            "platform": platform.platform(), "commit": commit or "unknown",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def run_one(name: str, args: list[str], figures: list) -> dict:
    module = "ingest" if name.startswith("ingest") else name
    command = [sys.executable, "-m", "lwtools.bench." + module, *args]
    load = os.getloadavg()[0]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    out = result.stdout + (("\n" + result.stderr[-2000:]) if result.returncode else "")
    found = []
    for label, pattern, goal in figures:
        m = re.search(pattern, out, re.MULTILINE)
        found.append({"figure": label, "value": m.group(1) if m else None, "goal": goal})
    return {"name": name, "command": "python -m lwtools.bench.%s %s" % (module, " ".join(args)),
            "exit": result.returncode, "seconds": round(time.monotonic() - started, 1),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
            "figures": found, "output": out}


def markdown(info: dict, results: list[dict]) -> str:
    m = info
    lines = ["# LineWatch benchmarks", "",
             f"Machine: {m['cores']} cores, {m['cpu']}, {m['memory']}, Python {m['python']}, {m['platform']}; "
             f"commit {m['commit']}, {m['date']}.", "",
             "| figure | value | goal | load (before/after) | command |", "|---|---|---|---|---|"]
    for r in results:
        for f in r["figures"]:
            value = f["value"] if f["value"] is not None else ("failed (exit %d)" % r["exit"] if r["exit"] else "n/a")
            lines.append(f"| {f['figure']} | {value} | {f['goal']} | {r['load_before']} / {r['load_after']} | "
                         f"`{r['command']}` |")
    for r in results:
        lines += ["", f"## {r['name']} ({r['seconds']} s, exit {r['exit']})", "", "```", r["output"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def run(args) -> int:
    chosen = set(args.only.split(",")) if args.only else None
    unknown = (chosen or set()) - {name for name, *_ in SUITE}
    if unknown:
        print("linewatch bench: unknown benchmark(s): %s" % ", ".join(sorted(unknown)), file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    results = []
    for name, full, quick, figures in SUITE:
        if chosen and name not in chosen:
            continue
        print("bench %s ..." % name, flush=True)
        results.append(run_one(name, quick if args.quick else full, figures))
        for f in results[-1]["figures"]:
            print("  %s: %s" % (f["figure"], f["value"]), flush=True)
        (out / "bench.json").write_text(json.dumps({"machine": info, "results": results}, indent=1) + "\n")
        (out / "bench.md").write_text(markdown(info, results))
    print("wrote %s and %s" % (out / "bench.json", out / "bench.md"))
    return 0 if all(r["exit"] == 0 for r in results) else 1
