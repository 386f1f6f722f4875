"""The daily report as one self-contained HTML page, laid out as a ceasefire monitoring
mission's daily report: a summary with the counts, the map, then segment by segment what was
recorded, incident by incident; node availability; the evidence statement; how to read it.

Self-contained: inline CSS, the map as a data: URI, no script, no link, no font or image
fetched from anywhere (host/tests/test_report.py parses the page and checks every src, href
and url()). Every value from the store or the config is escaped.
"""
from __future__ import annotations

import datetime
from html import escape

from linewatch import __version__
from linewatch.commission import wording
from linewatch.report.availability import HOUR_US, LISTENING
from linewatch.report.categories import CATEGORIES, SHORT
from linewatch.report.gather import UNDECIDED, DayData, Entry

VIOLATIONS = ("explosion_impact", "explosion_outgoing", "explosion_undetermined", "small_arms_burst",
              "small_arms_shot")
DRONES = ("drone_crossing", "drone_overflight")

CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10.5pt; color: #111; margin: 2em auto;
       max-width: 62em; line-height: 1.4; }
h1 { font-size: 17pt; margin-bottom: 0.1em; } h2 { font-size: 13pt; border-bottom: 1px solid #999;
     margin-top: 1.6em; } h3 { font-size: 11pt; margin-bottom: 0.3em; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; font-size: 9.5pt; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #eee; } td:first-child { white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.withdrawn td { color: #888; text-decoration: line-through; }
tr.withdrawn td.status { text-decoration: none; }
.ok { color: #1a7f37; font-weight: bold; } .bad { color: #b00020; font-weight: bold; }
.strip { display: flex; width: 24em; height: 0.9em; border: 1px solid #999; }
.strip span { flex: 1; } .h-up { background: #1a9850; } .h-part { background: #fee08b; }
.h-down { background: #d73027; } .h-none { background: #e0e0e0; }
figure { margin: 1em 0; } figure img { max-width: 100%; } figcaption { font-size: 9pt; color: #444; }
.small { font-size: 9pt; color: #444; }
@media print { body { margin: 0; max-width: none; } h2 { page-break-after: avoid; }
               tr { page-break-inside: avoid; } }
"""


def render(data: DayData, map_uri: str | None) -> str:
    parts = [_head(data), _summary(data), _counts(data), _map(data, map_uri), _segments(data),
             _withdrawn(data), _availability(data), _evidence(data), _method(data), "</body></html>\n"]
    return "\n".join(p for p in parts if p)


def _head(data: DayData) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>LineWatch daily report {escape(data.day.text)}</title><style>{CSS}</style></head><body>\n"
            f"<h1>Daily report: {escape(data.day.text)}</h1>\n"
            f"<p class=\"sub\">What the LineWatch sensor line recorded from 00:00 to 24:00 UTC on "
            f"{escape(data.day.date.strftime('%A %d %B %Y'))}. Made {escape(_utc(data.made_us))} by linewatch "
            f"{escape(__version__)} from the commission's evidence log.</p>")


def _summary(data: DayData) -> str:
    c = data.counts
    violations = sum(c[k] for k in VIOLATIONS)
    explosions = sum(c[k] for k in VIOLATIONS[:3])
    small = [e for e in data.counted if e.category in ("small_arms_burst", "small_arms_shot")]
    drones = sum(c[k] for k in DRONES)
    text = (f"The sensor line recorded <b>{violations}</b> ceasefire violations: {_n(explosions, 'explosion')} "
            f"({c['explosion_impact']} impacts, {c['explosion_outgoing']} outgoing, "
            f"{c['explosion_undetermined']} undetermined) and {_n(len(small), 'incident')} of small-arms fire "
            f"({_n(c['small_arms_burst'], 'burst')} and {_n(c['small_arms_shot'], 'single shot')}, "
            f"{sum(e.shots for e in small)} shots in all). It also recorded {_n(drones, 'drone flight')} "
            f"({c['drone_crossing']} crossing the contact line, {_n(c['drone_overflight'], 'overflight')})")
    others = [_n(c[k], w) for k, w in (("vehicle", "vehicle"), ("unknown", "unclassified sound"))]
    text += ", " + " and ".join(others) + "."
    if c["tamper"]:
        text += f" Nodes were handled {_n(c['tamper'], 'time')} (tampering; not a violation)."
    if data.withdrawn:
        text += (f" {_n(len(data.withdrawn), 'incident')} first reported were withdrawn (their reports joined "
                 f"other incidents) and are not counted.")
    seen = {e.side for e in data.counted if e.category in VIOLATIONS}
    by_side = "; ".join(f"{escape(s)}: {sum(data.by_side.get(s, {}).get(k, 0) for k in VIOLATIONS)}"
                        for s in (*data.sides, UNDECIDED) if s in seen)
    if by_side:
        text += f" Violations by the side of the line where they were placed: {by_side}."
    return f"<h2>Summary</h2>\n<p>{text}</p>"


def _counts(data: DayData) -> str:
    sides = [*data.sides, UNDECIDED]
    head = "".join(f"<th>{escape(s)}</th>" for s in sides)
    rows = []
    for key, words in CATEGORIES:
        cells = "".join(f"<td class=\"n\">{data.by_side.get(s, {}).get(key, 0)}</td>" for s in sides)
        rows.append(f"<tr><td>{escape(words)}</td>{cells}<td class=\"n\"><b>{data.counts[key]}</b></td></tr>")
    segments = sorted(data.by_segment, key=lambda s: (s is None, s or 0))
    seg_head = "".join(f"<th>{_segment(s)}</th>" for s in segments)
    seg_rows = []
    for key, words in CATEGORIES:
        cells = "".join(f"<td class=\"n\">{data.by_segment[s].get(key, 0)}</td>" for s in segments)
        seg_rows.append(f"<tr><td>{escape(words)}</td>{cells}</tr>")
    out = (f"<h3>By category and side of the line</h3>\n<table id=\"counts-by-side\"><tr><th>category</th>{head}"
           f"<th>total</th></tr>\n" + "\n".join(rows) + "</table>")
    if segments:
        out += (f"\n<h3>By segment</h3>\n<table id=\"counts-by-segment\"><tr><th>category</th>{seg_head}</tr>\n"
                + "\n".join(seg_rows) + "</table>")
    return out


def _map(data: DayData, uri: str | None) -> str:
    if uri is None:
        return "<h2>Map</h2>\n<p>Nothing to draw: no node, contact line or placed incident.</p>"
    return (f"<h2>Map</h2>\n<figure><img src=\"{uri}\" alt=\"map of the day's incidents, nodes and the contact "
            f"line\"><figcaption>The contact line (black), the nodes (squares, coloured by availability), the "
            f"reference points, and the day's incidents by category (number = incident id). Arrows: a launch to "
            f"its impact; dashed: drone tracks. {escape(wording.side_legend(data.line, data.sides))}."
            f"</figcaption></figure>")


def _segments(data: DayData) -> str:
    out = ["<h2>Incidents by segment</h2>"]
    if not data.counted:
        out.append("<p>No incident was recorded on this day.</p>")
    segments = sorted({e.segment for e in data.counted}, key=lambda s: (s is None, s or 0))
    for seg in segments:
        mine = [e for e in data.counted if e.segment == seg]
        out.append(f"<h3>{_segment(seg).capitalize()}</h3>\n<p>{_narrative(mine)}</p>")
        out.append(_table(mine, data))
    return "\n".join(out)


def _narrative(entries: list[Entry]) -> str:
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.category] = counts.get(e.category, 0) + 1
    said = [_n(n, *NOUNS[k]) for k, _ in CATEGORIES if (n := counts.get(k))]
    first, last = _clock(entries[0].time_us), _clock(entries[-1].time_us)
    return f"Between {first} and {last} UTC: " + "; ".join(said) + "."


# each category as a countable noun (singular, plural) for the narrative
NOUNS = {
    "explosion_impact": ("impact", "impacts"),
    "explosion_outgoing": ("outgoing explosion (a launch)", "outgoing explosions (launches)"),
    "explosion_undetermined": ("undetermined explosion", "undetermined explosions"),
    "small_arms_burst": ("burst of small-arms fire", "bursts of small-arms fire"),
    "small_arms_shot": ("single shot", "single shots"),
    "drone_crossing": ("drone crossing the line", "drones crossing the line"),
    "drone_overflight": ("drone overflight", "drone overflights"),
    "vehicle": ("vehicle", "vehicles"),
    "unknown": ("unclassified sound", "unclassified sounds"),
    "tamper": ("node handled (tampering)", "nodes handled (tampering)"),
}

COLUMNS = ("id", "time (UTC)", "category", "place", "side (probability)", "confidence", "nodes", "how placed",
           "status")


def _table(entries: list[Entry], data: DayData) -> str:
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    rows = [_row(e) for e in entries]
    return "<table class=\"incidents\"><tr>" + head + "</tr>\n" + "\n".join(rows) + "</table>"


def _row(e: Entry) -> str:
    d = e.incident
    cells = [escape(e.id), _clock(e.time_us), escape(SHORT[e.category]) + _pair(d),
             escape(e.placing.text) if e.placing else "not placed",
             "-" if e.withdrawn else
             escape(e.side) + (f" ({e.side_probability:.2f})" if e.side_probability is not None else ""),
             f"{e.confidence:.2f}" if e.confidence is not None else "-",
             str(e.nodes), escape(wording.fix_words(d)), escape(e.status)]
    shots = f" ({e.shots} shots)" if e.category == "small_arms_burst" else ""
    cells[2] += shots
    cls = " class=\"withdrawn\"" if e.withdrawn else ""
    tds = "".join(f"<td class=\"status\">{c}</td>" if k == 8 else
                  f"<td class=\"n\">{c}</td>" if k in (5, 6) else f"<td>{c}</td>" for k, c in enumerate(cells))
    return f"<tr{cls} id=\"{escape(e.id)}\">{tds}</tr>"


def _pair(d: dict) -> str:
    if d.get("impact_id"):
        return f", its impact {escape(str(d['impact_id']))}"
    if d.get("launch_id"):
        return f", launched at {escape(str(d['launch_id']))}"
    return ""


def _withdrawn(data: DayData) -> str:
    if not data.withdrawn:
        return ""
    return ("<h3>Withdrawn incidents (not counted)</h3>\n<p class=\"small\">Their reports joined the incidents "
            "above as fusion learned more; kept here because they were published.</p>\n"
            + _table(data.withdrawn, data))


def _availability(data: DayData) -> str:
    rows = []
    for a in data.availability:
        share = "-" if a.fraction is None else f"{100 * a.fraction:.1f} %"
        rows.append(f"<tr><td>0x{a.node:04x}</td><td class=\"n\">{a.segment}</td><td class=\"n\">{share}</td>"
                    f"<td>{_strip(a, data)}</td><td class=\"n\">{a.frames}</td><td class=\"n\">{a.heartbeats}</td>"
                    f"<td class=\"n\">{a.changes}</td><td>{escape(a.last_state)}</td></tr>")
    listening = ", ".join(sorted(LISTENING))
    return ("<h2>Node availability</h2>\n<p class=\"small\">Available: the node's state was one in which it "
            f"listens and reports ({listening}), from the commission's health record (state changes) and the "
            "frames it sent; measured over the part of the day the node was registered and the day had passed. "
            "Hours: green all available, yellow partly, red not, grey outside that part.</p>\n"
            "<table id=\"availability\"><tr><th>node</th><th>segment</th><th>available</th><th>hours 00-24 UTC</th>"
            "<th>frames</th><th>heartbeats</th><th>state changes</th><th>state at the end</th></tr>\n"
            + "\n".join(rows) + "</table>")


def _strip(a, data: DayData) -> str:
    cells = []
    for h in range(24):
        start = data.day.start_us + h * HOUR_US
        end = start + HOUR_US
        covered = up = 0
        for s, e, state in a.spans:
            overlap = max(0, min(e, end) - max(s, start))
            covered += overlap
            up += overlap if state in LISTENING else 0
        kind = "none" if covered == 0 else "up" if up == covered else "down" if up == 0 else "part"
        cells.append(f"<span class=\"h-{kind}\"></span>")
    return "<div class=\"strip\">" + "".join(cells) + "</div>"


def _evidence(data: DayData) -> str:
    s = data.statement
    mark = "<span class=\"ok\">verified</span>" if s.ok else "<span class=\"bad\">NOT verified</span>"
    return f"<h2>Evidence</h2>\n<p id=\"evidence\">{mark}: {escape(s.text)}</p>"


def _method(data: DayData) -> str:
    legend = "".join(f"<li><b>{escape(w)}</b>: {escape(m)}</li>" for w, m in wording.FIXES.values())
    return ("<h2>How to read this report</h2>\n<ul class=\"small\">"
            f"<li>Place: compass bearing and distance band from {escape(data.references_note)}.</li>"
            "<li>Side: where the source was placed relative to the contact line, by the names the commission "
            "gives the sides, with the probability that it lies on that side.</li>"
            "<li>Confidence: the median of the detectors' confidence in the class, over the node reports that "
            "make the incident (each report's authentication tag checked).</li>"
            "<li>Explosions: an <i>impact</i> was paired with an earlier launch, <i>outgoing</i> with a later "
            "impact (flight time and range fit a shell); the others are <i>undetermined</i>. A burst is two or more "
            "shots from one place. A drone <i>crossing</i> has a track on both sides of the line.</li>"
            f"<li>How placed:<ul>{legend}</ul></li>"
            "<li>Status: new (not yet judged), confirmed or dismissed by the commission, withdrawn (merged into "
            "another incident).</li></ul>")


def _segment(seg) -> str:
    return "segment %d" % seg if seg is not None else "no segment (nodes not registered)"


def _n(n: int, word: str, words: str | None = None) -> str:
    return wording.plural(n, word, words)


def _clock(time_us: int) -> str:
    text = wording.when(time_us)
    return text[11:] if text[:1].isdigit() else text


def _utc(time_us: int) -> str:
    return datetime.datetime.fromtimestamp(time_us / 1e6, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
