"""`linewatch demo`: the whole chain on this machine in about a minute (README's main command)."""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole chain on this machine: broker, aggregator, "
                                    "an emulated segment, incidents and the score")
    p.add_argument("--scenario", default="demo", help="bundled scenario name or TOML file (default: demo)")
    p.add_argument("--keep", help="keep the run's files (DB, key, logs) in this folder")
    p.add_argument("--stay", action="store_true",
                   help="keep the broker and the aggregator (and so the desk) running after the demo, "
                        "until Ctrl-C")
    p.set_defaults(func=run)


def run(args) -> int:
    from linewatch.emulator.commission import CommissionError
    from linewatch.emulator.demo import run_demo
    from linewatch.emulator.scenario import ScenarioError
    from linewatch.mosquitto import BrokerError
    try:
        run_demo(args.scenario, keep=Path(args.keep) if args.keep else None, stay=args.stay)
    except BrokerError as exc:
        print("linewatch demo: needs Mosquitto: %s" % exc, file=sys.stderr)
        return 3
    except (ScenarioError, CommissionError) as exc:
        print("linewatch demo: %s" % exc, file=sys.stderr)
        return 2
    return 0
