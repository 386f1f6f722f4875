"""`linewatch emulate SCENARIO.toml | --seed N`: play a scenario through virtual nodes.

Without --broker the run is self-contained: a private Mosquitto, the aggregator as a child
process with the run's master key and registry, and the score at the end. With --broker the
nodes publish to that broker; the run's folder (--out) holds the master key, the registry DB
and an aggregator config for the commission that listens there (`--prepare` writes them and
stops, so that aggregator can be started before the nodes talk).
"""
from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

EXIT_USAGE, EXIT_BROKER, EXIT_AGGREGATOR = 2, 3, 4


def register(sub) -> None:
    p = sub.add_parser("emulate", help="play a scenario through virtual nodes running the firmware")
    p.add_argument("scenario", nargs="?", help="scenario TOML file, or the name of a bundled one (demo, ...)")
    p.add_argument("--seed", type=int, help="generate a random stretch of time on the line from this seed instead")
    p.add_argument("--hours", type=float, default=0.5,
                   help="length of a generated scenario (default 0.5; the run's time grows with hours x nodes)")
    p.add_argument("--line-km", type=float, default=10.0,
                   help="length of a generated line (default 10 km, about 10 nodes; the whole line is 1200)")
    p.add_argument("--rows", type=int, choices=(1, 2), default=1,
                   help="rows of nodes on a generated line (default 1; 2: a second row behind the first, "
                        "staggered, which tells a source from its mirror image)")
    p.add_argument("--profile", choices=("ideal", "field"),
                   help="realism profile (default: the scenario's own, field when it says none; "
                        "see docs/scenarios.md)")
    p.add_argument("--broker", help="HOST:PORT of the broker (default: a private Mosquitto and aggregator)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--virtual", action="store_true", help="virtual time, as fast as possible (default)")
    when.add_argument("--realtime", action="store_true", help="real time (live demos and tests)")
    p.add_argument("--truth", help="write the ground truth here (default: OUT/truth.json)")
    p.add_argument("--out", help="folder for the run: master key, registry, truth, incidents "
                                 "(default: a new temporary folder)")
    p.add_argument("--aggregator", action="store_true",
                   help="also start the aggregator (implied without --broker) and score at the end")
    p.add_argument("--prepare", action="store_true",
                   help="only write the master key, registry, aggregator config and truth, then stop")
    p.add_argument("--drain-s", type=float, default=20.0, help="after the end, wait this long for acks")
    p.add_argument("--tier", choices=("full", "direct"), default="full",
                   help="full: every node on its own MQTT connection through a broker (default); "
                        "direct: the firmware's detector and frames handed to the commission in-process, "
                        "days in minutes (docs/emulator.md says what it leaves out)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes to run the nodes in, split by segment (default 1; see docs/emulator.md)")
    p.set_defaults(func=run)


def load_scenario(args):
    from linewatch.emulator import scenario as sc
    if (args.scenario is None) == (args.seed is None):
        raise sc.ScenarioError("emulate", "", "give a scenario file or --seed N (one of them)")
    profile = getattr(args, "profile", None)
    if args.seed is not None:
        # the generator draws the day's weather by the profile (the ideal air stays calm)
        return sc.generate(args.seed, hours=args.hours, line_km=args.line_km, rows=getattr(args, "rows", 1),
                           **({} if profile is None else {"profile": profile}))
    scenario = sc.load(args.scenario)
    return scenario if profile is None else scenario.with_profile(profile)


def parse_broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("--broker %r: expected HOST:PORT" % text)
    return host, int(port)


def run(args) -> int:
    from linewatch.emulator.scenario import ScenarioError
    try:
        scenario = load_scenario(args)
        broker = parse_broker(args.broker) if args.broker else None
    except (ScenarioError, ValueError) as exc:
        print("linewatch emulate: %s" % exc, file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="lw-emulate-"))
    out.mkdir(parents=True, exist_ok=True)
    if getattr(args, "tier", "full") == "direct":
        if broker is not None or args.realtime:
            print("linewatch emulate: --tier direct runs without a broker, in virtual time", file=sys.stderr)
            return EXIT_USAGE
        return _play_direct(args, scenario, out)
    if broker is not None:
        return _play(args, scenario, out, broker)
    from linewatch.mosquitto import BrokerError, Mosquitto
    try:
        mosquitto = Mosquitto(workdir=out / "broker").start()
    except BrokerError as exc:
        print("linewatch emulate: %s" % exc, file=sys.stderr)
        return EXIT_BROKER
    try:
        args.aggregator = True
        return _play(args, scenario, out, (mosquitto.host, mosquitto.port))
    finally:
        mosquitto.stop()


def _play(args, scenario, out: Path, broker: tuple[str, int]) -> int:
    from linewatch.emulator.commission import Commission, CommissionError
    from linewatch.emulator.runner import RunOptions, emulate, prepare
    from linewatch.emulator.truth import write_truth
    world, truth = prepare(scenario, real_time=args.realtime)
    truth_path = Path(args.truth) if args.truth else out / "truth.json"
    write_truth(truth_path, truth)
    desk = Commission.prepare(out / "commission", world, broker)
    from linewatch.emulator.profiles import describe
    print("emulate %s (profile %s): %d nodes, %.0f s of scenario; truth %s; commission %s (config %s)"
          % (scenario.name, describe(scenario.profile), len(world.nodes), scenario.duration_s,
             truth_path, desk.folder, desk.config_path.name))
    if args.prepare:
        return 0
    node_log = logging.getLogger("linewatch.emulator.node")
    options = RunOptions(broker, out / "nodes", desk.master_key, virtual=not args.realtime,
                         drain_s=args.drain_s, workers=max(1, args.workers),
                         on_log=lambda node, line: node_log.debug("0x%04x %s", node, line))
    try:
        if args.aggregator:
            try:
                desk.start_aggregator()
            except CommissionError as exc:
                print("linewatch emulate: %s" % exc, file=sys.stderr)
                return EXIT_AGGREGATOR
        summary = emulate(scenario, world, options)
    finally:
        if args.aggregator:
            desk.stop_aggregator()
    print(summary.text())
    if args.aggregator:
        from linewatch.emulator.score import format_text, score
        incidents = desk.write_incidents(out / "incidents.jsonl")
        result = score(truth, incidents)
        (out / "score.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        sys.stdout.write(format_text(result))
        print("incidents %s, score %s" % (out / "incidents.jsonl", out / "score.json"))
    return 0


def _play_direct(args, scenario, out: Path) -> int:
    from linewatch.emulator.commission import Commission
    from linewatch.emulator.direct import emulate_direct
    from linewatch.emulator.runner import prepare
    from linewatch.emulator.score import format_text, score
    from linewatch.emulator.truth import write_truth
    world, truth = prepare(scenario, real_time=False)
    truth_path = Path(args.truth) if args.truth else out / "truth.json"
    write_truth(truth_path, truth)
    desk = Commission.prepare(out / "commission", world, ("127.0.0.1", 1883))
    print("emulate %s (direct tier): %d nodes, %.0f s of scenario; truth %s; commission %s"
          % (scenario.name, len(world.nodes), scenario.duration_s, truth_path, desk.folder))
    if args.prepare:
        return 0
    summary = emulate_direct(scenario, world, desk.folder, desk.master_key, desk.config_path, out / "nodes")
    print(summary.text())
    incidents = desk.write_incidents(out / "incidents.jsonl")
    result = score(truth, incidents)
    (out / "score.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    sys.stdout.write(format_text(result))
    print("incidents %s, score %s" % (out / "incidents.jsonl", out / "score.json"))
    return 0
