"""`linewatch report --day YYYY-MM-DD`: the commission's daily violation report, one
self-contained HTML file (and a PDF where a converter is installed), from the evidence log.
`linewatch export --day YYYY-MM-DD`: the day's incidents, tracks and nodes as CSV or GeoJSON
for QGIS. The report's own modules are in linewatch.report.

Exit 0 when written, 2 when it could not be made (a bad --day, no such database, a bad config),
each with one line on stderr saying what was wrong.
"""
from __future__ import annotations

import sys
from pathlib import Path

from linewatch import keys
from linewatch.commission import config as cfg
from linewatch.commission.wording import plural
from linewatch.commission.store import StoreError, open_store
from linewatch.keys import KeyFileError
from linewatch.report import FORMATS, WHAT
from linewatch.report.day import ReportError, parse_day

# The report's own modules (and matplotlib, seconds to import on a loaded Pi) are imported when
# a report or an export is made: every other command builds this parser too.

EXIT_FAILED = 2


def register(sub) -> None:
    p = sub.add_parser("report", help="the daily violation report: one self-contained HTML file (PDF too where"
                                      " a converter is installed)")
    cfg.add_arguments(p)
    p.add_argument("--day", required=True, help="the UTC day to report, YYYY-MM-DD")
    p.add_argument("--out", default=".", help="folder to write linewatch-report-DAY.html (and .pdf) into"
                                              " (default: the current folder)")
    p.add_argument("--no-pdf", action="store_true", help="the HTML only, even where a PDF converter is installed")
    p.set_defaults(func=cmd_report)
    e = sub.add_parser("export", help="the day's incidents, tracks and nodes as CSV or GeoJSON (RFC 7946) for QGIS")
    cfg.add_arguments(e)
    e.add_argument("--day", required=True, help="the UTC day to export, YYYY-MM-DD")
    e.add_argument("--format", choices=FORMATS, default="geojson", help="file format (default: geojson)")
    e.add_argument("--what", choices=WHAT, action="append",
                   help="what to export (repeatable; default: all of " + ", ".join(WHAT) + ")")
    e.add_argument("--out", default=".", help="folder to write linewatch-WHAT-DAY.FORMAT into (default: the"
                                              " current folder)")
    e.set_defaults(func=cmd_export)


def day_data(args):
    """The day's data (a linewatch.report.gather.DayData) as the report and the exports tell
    it; ReportError with one clear line."""
    from linewatch.report.gather import gather
    day = parse_day(args.day)
    out = Path(args.out)
    if not out.is_dir():
        raise ReportError(f"--out {args.out}: no such folder")
    try:
        config = cfg.from_args(args)
    except cfg.ConfigError as exc:
        raise ReportError(str(exc)) from None
    master, problem = None, ""
    try:
        master = keys.load_master_key(config.keys.master_key_file)
    except (KeyFileError, OSError, ValueError) as exc:
        problem = f"the master key cannot be read ({exc})"
    try:
        store = open_store(config.store.target, config.store.synchronous, readonly=True)
    except StoreError as exc:
        raise ReportError(str(exc)) from None
    try:
        return gather(store, config, day, master, problem)
    finally:
        store.close()


def cmd_report(args) -> int:
    from linewatch.report import pdf
    from linewatch.report.figure import map_png
    from linewatch.report.html import render
    try:
        data = day_data(args)
    except ReportError as exc:
        print(f"linewatch report: {exc}", file=sys.stderr)
        return EXIT_FAILED
    html_path = Path(args.out) / f"linewatch-report-{data.day.text}.html"
    html_path.write_text(render(data, map_png(data)), encoding="utf-8")
    print(f"report for {data.day.text}: {plural(len(data.counted), 'incident')} ({len(data.withdrawn)} withdrawn"
          f" not counted), {plural(len(data.nodes), 'node')} -> {html_path}")
    print(("evidence: " if data.statement.ok else "evidence NOT verified: ") + data.statement.text)
    if args.no_pdf:
        return 0
    pdf_path = html_path.with_suffix(".pdf")
    why_not = pdf.to_pdf(html_path, pdf_path)
    print(f"PDF -> {pdf_path}" if why_not is None else f"no PDF: {why_not}")
    return 0


def cmd_export(args) -> int:
    from linewatch.report import exports
    try:
        data = day_data(args)
    except ReportError as exc:
        print(f"linewatch export: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for what in args.what or WHAT:
        path = Path(args.out) / f"linewatch-{what}-{data.day.text}.{args.format}"
        text = exports.render(data, what, args.format)
        path.write_text(text, encoding="utf-8")
        print(f"{plural(len(exports.features(data, what)), what[:-1], what)} -> {path}")
    return 0
