"""The `linewatch` command: one subcommand per module under linewatch.commands.

Each command module defines `register(subparsers)`, which adds its parser and sets
`func(args) -> int` as the default. Adding a command is one line in COMMANDS.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from linewatch import __version__

COMMANDS = [
    "linewatch.commands.demo",
    "linewatch.commands.aggregator", "linewatch.commands.nodes", "linewatch.commands.frames",
    "linewatch.commands.stats", "linewatch.commands.evidence", "linewatch.commands.incidents",
    "linewatch.commands.score",
    "linewatch.commands.emulate",
    "linewatch.commands.build",
    "linewatch.commands.provision",
    "linewatch.commands.sniff",
    "linewatch.commands.flash",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linewatch",
        description="LineWatch: sensor line, wire protocol and the commission's desk.")
    parser.add_argument("--version", action="version", version=f"linewatch {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
