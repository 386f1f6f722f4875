"""`linewatch desk`: the desk's operators (the desk itself is served by `linewatch aggregator`)."""
from __future__ import annotations

import getpass
import sys

from linewatch.commission import config as cfg
from linewatch.desk.auth import MIN_PASSWORD, OperatorError, Operators


def register(sub) -> None:
    p = sub.add_parser("desk", help="the desk's operators (the aggregator serves the desk: docs/desk.md)")
    cfg.add_arguments(p)
    actions = p.add_subparsers(dest="desk_command", metavar="ACTION", required=True)
    add = actions.add_parser("add-operator", help="add an operator, or set a new password for one")
    add.add_argument("name", help="the operator's login name (letters, digits, '.', '_', '-')")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input instead of asking twice")
    add.set_defaults(func=cmd_add)
    rm = actions.add_parser("remove-operator", help="remove an operator (logged-in sessions end at expiry)")
    rm.add_argument("name", help="the operator's login name")
    rm.set_defaults(func=cmd_remove)
    actions.add_parser("operators", help="list the operators (names only)").set_defaults(func=cmd_list)


def _operators(args) -> Operators:
    config = cfg.from_args(args)
    return Operators(config.desk.operators_path(config.store))


def _guard(fn):
    def run(args) -> int:
        try:
            return fn(args)
        except (cfg.ConfigError, OperatorError) as exc:
            print(f"linewatch desk: {exc}", file=sys.stderr)
            return 2
    return run


@_guard
def cmd_add(args) -> int:
    operators = _operators(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name} (at least {MIN_PASSWORD} characters): ")
        if getpass.getpass("again: ") != password:
            raise OperatorError("the two passwords differ; nothing changed")
    known = args.name in operators.load()
    operators.add(args.name, password)
    print(f"operator {args.name} {'given a new password' if known else 'added'} in {operators.path}")
    return 0


@_guard
def cmd_remove(args) -> int:
    operators = _operators(args)
    if not operators.remove(args.name):
        raise OperatorError(f"no operator {args.name!r} in {operators.path}")
    print(f"operator {args.name} removed from {operators.path}")
    return 0


@_guard
def cmd_list(args) -> int:
    operators = _operators(args)
    names = sorted(operators.load())
    print("\n".join(names) if names else f"no operators yet in {operators.path}")
    return 0
