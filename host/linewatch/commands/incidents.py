"""`linewatch incidents list/export/set-status`: the commission's incidents.

A status change (new -> confirmed / dismissed) is an act of the commission: it is written to
the evidence log with who made it and why, as well as to the incident itself.
"""
from __future__ import annotations

import getpass
import json
import sys

from linewatch.commission import config as cfg, wording
from linewatch.commission.incidents import STATUSES, incident_dicts, set_status
from linewatch.commission.store import StoreError, open_store


def register(sub) -> None:
    p = sub.add_parser("incidents", help="list, export and judge incidents")
    cfg.add_arguments(p)
    inc = p.add_subparsers(dest="incidents_command", metavar="ACTION", required=True)
    ls = inc.add_parser("list", help="one line per incident: time, class, how it was placed, nodes, side"
                                     " (named as [fusion] sides says) with its probability, status")
    ls.add_argument("--all", action="store_true", help="also the withdrawn ones (reports joined other incidents)")
    ls.set_defaults(func=cmd_list)
    ex = inc.add_parser("export", help="JSON lines, one incident per line, every day (CSV and GeoJSON of a day"
                                       " for QGIS: linewatch export)")
    ex.add_argument("file", help="output file ('-' for stdout)")
    ex.set_defaults(func=cmd_export)
    st = inc.add_parser("set-status", help="confirm or dismiss an incident")
    st.add_argument("incident", help="incident id as `incidents list` shows it, like I-000001")
    st.add_argument("status", choices=STATUSES, help="the commission's judgement: " + ", ".join(STATUSES))
    st.add_argument("--note", default="", help="why (kept in the evidence log)")
    st.add_argument("--who", default=getpass.getuser(), help="who decides (default: this user)")
    st.set_defaults(func=cmd_set_status)


def _store(args, readonly: bool):
    config = cfg.from_args(args)
    args.sides = tuple(config.fusion.sides)
    return open_store(config.store.target, config.store.synchronous, readonly=readonly)


def _run(fn, args, readonly: bool = True) -> int:
    try:
        store = _store(args, readonly)
    except (cfg.ConfigError, StoreError) as exc:
        print(f"linewatch incidents: {exc}", file=sys.stderr)
        return 2
    try:
        return fn(store, args)
    finally:
        store.close()


def cmd_list(args) -> int:
    def list_(store, args) -> int:
        found = sorted(incident_dicts(store), key=lambda d: (d.get("time_utc_us") or 0, str(d["id"])))
        hidden = 0 if args.all else sum(d["status"] == "withdrawn" for d in found)
        if not args.all:
            found = [d for d in found if d["status"] != "withdrawn"]
        if found:
            for line in wording.table(found, args.sides):
                print(line)
        # the count on stderr: the table alone goes down a pipe
        print(("%s" % wording.plural(len(found), "incident") if found else "no incidents")
              + ("; %s withdrawn (their reports joined others) not shown: --all shows them"
                 % wording.plural(hidden, "more", "more") if hidden else ""), file=sys.stderr)
        return 0
    return _run(list_, args)


def cmd_export(args) -> int:
    def export(store, args) -> int:
        lines = [json.dumps(d, sort_keys=True) for d in incident_dicts(store)]
        text = "".join(line + "\n" for line in lines)
        if args.file == "-":
            sys.stdout.write(text)
        else:
            with open(args.file, "w") as f:
                f.write(text)
            print(f"{wording.plural(len(lines), 'incident')} written to {args.file}")
        return 0
    return _run(export, args)


def cmd_set_status(args) -> int:
    def set_status_(store, args) -> int:
        try:
            old = set_status(store, args.incident, args.status, args.note, args.who)
        except KeyError:
            print(f"linewatch incidents: no incident {args.incident!r} (ids look like I-000001:"
                  " see `linewatch incidents list`)", file=sys.stderr)
            return 1
        except ValueError as exc:
            print(f"linewatch incidents: {exc}", file=sys.stderr)
            return 1
        print(f"incident {args.incident}: {old} -> {args.status}")
        return 0
    return _run(set_status_, args, readonly=False)
