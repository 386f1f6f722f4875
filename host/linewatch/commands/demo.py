"""`linewatch demo`: the main job of the README (grows into the full emulated chain)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the demonstration on this machine")
    p.set_defaults(func=run)


def run(args) -> int:
    print("demo: not yet")
    return 0
