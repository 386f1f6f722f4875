"""`linewatch score TRUTH INCIDENTS`: compare the commission's incidents with a run's truth."""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("score", help="score incidents (JSON lines) against a run's ground truth")
    p.add_argument("truth", help="ground truth JSON written by the emulator")
    p.add_argument("incidents", help="incidents, one JSON object per line (later lines replace same id)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from linewatch.emulator.score import format_text, load_incidents, score
    from linewatch.emulator.truth import load_truth
    try:
        truth = load_truth(args.truth)
        incidents = load_incidents(args.incidents)
    except ValueError as exc:
        print("score: %s" % exc, file=sys.stderr)
        return 2
    result = score(truth, incidents)
    if args.json:
        print(json.dumps(result, indent=1, sort_keys=True))
    else:
        sys.stdout.write(format_text(result))
    return 0
