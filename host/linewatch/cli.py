"""The `linewatch` command: one subcommand per module under linewatch.commands.

Each command module defines `register(subparsers)`, which adds its parser and sets
`func(args) -> int` as the default. Adding a command is one line in COMMANDS.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

from linewatch import __version__

COMMANDS = [
    "linewatch.commands.demo",
    "linewatch.commands.aggregator", "linewatch.commands.desk", "linewatch.commands.nodes", "linewatch.commands.frames",
    "linewatch.commands.stats", "linewatch.commands.evidence", "linewatch.commands.incidents",
    "linewatch.commands.score",
    "linewatch.commands.report",
    "linewatch.commands.emulate",
    "linewatch.commands.build",
    "linewatch.commands.provision",
    "linewatch.commands.broker",
    "linewatch.commands.sniff",
    "linewatch.commands.update",
    "linewatch.commands.flash",
    "linewatch.commands.bench",
    "linewatch.commands.virtual_board",
]


FILES = ("Paths: every default file or folder (build/<target>, provisioned/, master.key, linewatch.db)"
         " is relative to the current folder; paths inside a --config file are relative to that file.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linewatch",
        description="LineWatch: sensor line, wire protocol and the commission's desk.", epilog=FILES)
    parser.add_argument("--version", action="version", version=f"linewatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    _verbose_everywhere(parser)
    return parser


def _verbose_everywhere(parser: argparse.ArgumentParser, depth: int = 0) -> None:
    """-v is accepted before and after each subcommand (`linewatch -v aggregator` and
    `linewatch aggregator --config x -v` alike); every -v given counts."""
    parser.add_argument("-v", "--verbose", action="count", default=0, dest="verbose%d" % depth,
                        help="more log output (-vv: debug)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                _verbose_everywhere(child, depth + 1)


def verbosity(args: argparse.Namespace) -> int:
    return sum(v for k, v in vars(args).items() if k.startswith("verbose") and isinstance(v, int))


class _Stop:
    """SIGTERM (timeout, CI, systemd) and SIGINT both end a command through its `finally`
    blocks, so every child it started (broker, aggregator, workers) is stopped. A second
    signal during that clean-up is ignored; the clean-up has its own time limits."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signal is None:
            self.signal = signum
            raise KeyboardInterrupt
        # already stopping


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose = verbosity(args)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    stop = _Stop()
    stop.install()
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return 128 + (stop.signal or signal.SIGINT)
    except BrokenPipeError:
        # the reader went away (`linewatch incidents list | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
