"""What the desk shows, read from the store: plain dicts, the JSON API's bodies.

Every query is a Store method (commission/store*.py, parameterized there); nothing here builds
SQL. Filters on incidents are applied to incident_dicts() in Python, as `incidents list` reads
them. Geometry the page would otherwise compute (95 % ellipses as polygons, segments of the
line) is done here, so the page only draws what the API returns.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lwproto import const
from lwproto import frame as wire
from lwproto.errors import ProtocolError

from linewatch import keys
from linewatch.commission import commands, wording
from linewatch.commission.config import Config
from linewatch.commission.incidents import incident_dict, incident_dicts
from linewatch.commission.store import COMMISSION, EvidenceRow, Store
from linewatch.fusion.sound import speed_of_sound
from linewatch.geo import LocalFrame

DAY_US = 86_400_000_000
RECENT_FRAMES = 40
DAY_FRAMES = 5000          # a node's frames read for its day (heartbeats every minute: 1,440)


@dataclass(frozen=True)
class Filters:
    """Incident filters (params.py checks them): each None means any."""
    since_us: int | None = None
    until_us: int | None = None
    segment: int | None = None
    event_class: str | None = None
    side: str | None = None          # "L" / "R" / "undecided"
    status: str | None = None
    limit: int = 500


class Views:
    def __init__(self, store: Store, config: Config, master: bytes) -> None:
        self.store = store
        self.config = config
        self._keys: dict[int, bytes] = {}
        self._master = master

    def key_of(self, node: int) -> bytes:
        key = self._keys.get(node)
        if key is None:
            key = self._keys[node] = keys.derive(self._master, node)
        return key

    # -- the line --

    def line(self) -> dict[str, Any]:
        f, d = self.config.fusion, self.config.desk
        nodes = self.store.nodes()
        line = [list(p) for p in f.line] or _line_of(nodes)
        segments = {}
        for n in nodes:
            segments.setdefault(n.segment, []).append(n)
        return {
            "line": line,
            "sides": list(f.sides),
            "segments": [{"segment": s, "nodes": [n.id for n in members], "line": _part_of(line, members)}
                         for s, members in sorted(segments.items())],
            "basemap": {"url": "/basemap", "bounds": list(d.basemap_bounds)} if d.basemap_file else None,
        }

    # -- nodes --

    def nodes(self) -> list[dict[str, Any]]:
        health = {h.node: h for h in self.store.health()}
        return [self._node(n, health.get(n.id)) for n in self.store.nodes()]

    def _node(self, n, h) -> dict[str, Any]:
        out = {"id": n.id, "name": "0x%04x" % n.id, "segment": n.segment, "lat": n.lat, "lon": n.lon,
               "state": h.state if h else "unknown"}
        if h:
            counters = json.loads(h.counters or "{}")
            out.update(state_since_us=h.state_since_us, last_seen_us=h.last_seen_us, boot=h.boot,
                       battery_mv=h.battery_mv, temperature_c=h.temperature_c, rssi_dbm=h.rssi_dbm,
                       queue_depth=h.queue_depth, clock_source=_clock(h.clock_source),
                       clock_error_us=h.clock_error_us, firmware=h.firmware,
                       refused_commands=counters.get("refused_commands"), uptime_s=counters.get("uptime_s"))
        return out

    def node(self, node_id: int, now_us: int) -> dict[str, Any] | None:
        record = self.store.node_get(node_id)
        if record is None:
            return None
        health = next((h for h in self.store.health() if h.node == node_id), None)
        start = self.store.evidence_id_at(now_us - DAY_US)
        day = self.store.frames_after(start, [node_id], DAY_FRAMES)
        series, per_hour = self._day(day, now_us)
        return {
            "node": self._node(record, health),
            "history": [{"at_us": c.at_us, "old": c.old, "new": c.new, "why": c.why}
                        for c in self.store.node_health_changes(node_id, 50)],
            "recent_frames": [self._frame(r) for r in reversed(day[-RECENT_FRAMES:])],
            "day": {"since_us": now_us - DAY_US, "heartbeats": series, "frames_per_hour": per_hour,
                    "truncated": len(day) >= DAY_FRAMES},
            "commands": self.commands(node_id),
        }

    def _day(self, rows: list[EvidenceRow], now_us: int) -> tuple[list[list], list[list]]:
        """[t_s, battery_mv, temperature_c] per heartbeat, and [hour_start_s, frames] for 24 hours."""
        series, hours = [], [0] * 24
        first_hour = (now_us - DAY_US) // 3_600_000_000 + 1
        for r in rows:
            slot = r.received_us // 3_600_000_000 - first_hour
            if 0 <= slot < 24:
                hours[slot] += 1
            if r.type == "heartbeat":
                f = self._decode(r)
                if f is not None:
                    series.append([r.received_us / 1e6, f.get("battery_mv"), f.get("temperature_c")])
        per_hour = [[(first_hour + i) * 3600, n] for i, n in enumerate(hours)]
        return series, per_hour

    def _decode(self, row: EvidenceRow) -> dict | None:
        try:
            return wire.decode(row.raw, self.key_of(row.node)).fields()
        except ProtocolError:
            return None

    def _frame(self, row: EvidenceRow, with_fields: bool = True) -> dict[str, Any]:
        """A stored frame as the desk shows it: its bytes in hex, as stored and checked again now."""
        try:
            f = wire.decode(row.raw, self.key_of(row.node))
            check, fields = "tag verified with the node's key", f.fields() if with_fields else None
        except ProtocolError as exc:
            check, fields = f"does not verify: {exc}", None
        return {"evidence_id": row.id, "type": row.type, "node": row.node, "boot": row.boot, "seq": row.seq,
                "received_us": row.received_us, "hex": row.raw.hex(), "stored_as": row.verified,
                "check": check, "fields": fields, "hash": row.hash.hex()}

    def commands(self, node_id: int | None = None, limit: int = 20) -> list[dict[str, Any]]:
        out = []
        for entry in self.store.commission_entries(commands.ENTRY, node_id, limit):
            content = json.loads(entry.note)
            later = self.store.frames_after(entry.id, [entry.node], 200)
            out.append({"evidence_id": entry.id, "node": entry.node, "name": "0x%04x" % entry.node,
                        "at_us": entry.received_us, "who": entry.verified, "command": content["command"],
                        "args": content.get("args", {}), "effect": commands.effect(entry, later, self.key_of)})
        return out

    # -- incidents --

    def incidents(self, filters: Filters) -> list[dict[str, Any]]:
        segment_of = {n.id: n.segment for n in self.store.nodes()}
        out = []
        for d in incident_dicts(self.store):
            d["segments"] = sorted({segment_of[n] for n in d.get("nodes", []) if n in segment_of})
            if _matches(d, filters):
                out.append(d)
        out.sort(key=lambda d: (d.get("time_utc_us") or d.get("formed_at_us") or 0), reverse=True)
        # words and ellipse polygons for the page only: they cost more than the parsing
        return [self._incident(d) for d in out[:filters.limit]]

    def _incident(self, d: dict[str, Any]) -> dict[str, Any]:
        sides = tuple(self.config.fusion.sides)
        d["words"] = {"when": wording.when(d.get("time_utc_us") or d.get("formed_at_us")),
                      "placed": wording.fix_words(d), "side": wording.side_words(d, sides)}
        d["ellipse_polygon"] = ellipse_polygon(d)
        # fix "mirror": the other place one row of nodes cannot tell from the first, drawn too
        other = d.get("mirror")
        d["mirror_polygon"] = ellipse_polygon(other) if isinstance(other, dict) else None
        return d

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        known = self.store.incident_get(incident_id)      # by its key: never the whole table
        if known is None:
            return None
        d = self._incident(incident_dict(known))
        last = self.store.last_evidence_id()
        reports = [self._report(d, row) for row in self._rows(d.get("reports", []))]
        d["contributing"] = reports
        d["rejected"] = [{"node": n, "name": "0x%04x" % n} for n in d.get("rejected_nodes", [])]
        d["chain"] = {"rows": last, "positions": [r["evidence_id"] for r in reports]}
        d["judgements"] = [{"evidence_id": e.id, "at_us": e.received_us, "who": e.verified, **json.loads(e.note)}
                           for e in reversed(self.store.incident_judgements(incident_id))]
        return d

    def _rows(self, ids: list[int]) -> list[EvidenceRow]:
        """The incident's reports by their ids (PostgreSQL's evidence() would read a page of
        5,000 rows for each)."""
        wanted = sorted(set(i for i in ids if isinstance(i, int) and not isinstance(i, bool) and i > 0))
        return [row for row in self.store.evidence_rows(wanted) if row.kind != COMMISSION] if wanted else []

    def _report(self, incident: dict, row: EvidenceRow) -> dict[str, Any]:
        """One contributing frame: its arrival time, and its residual against the fix (the
        arrival the fix predicts at the speed of sound in still air at the air temperature)."""
        out = self._frame(row)
        record = self.store.node_get(row.node)
        fields = out["fields"] or {}
        try:
            f = wire.decode(row.raw, self.key_of(row.node))
            arrival = f.time_us + fields.get("onset_offset_us", 0)
        except ProtocolError:
            arrival = None
        out["arrival_us"] = arrival
        out["residual_ms"] = None
        lat, lon, t = incident.get("lat"), incident.get("lon"), incident.get("time_utc_us")
        if arrival is not None and record and incident.get("fix") in ("tdoa", "mirror") and None not in (lat, lon) and t:
            x, y = LocalFrame(lat, lon).to_xy(record.lat, record.lon)
            c = speed_of_sound(self.config.fusion.temperature_c if self.config.fusion.temperature_c is not None
                               else 15.0)
            out["residual_ms"] = round((arrival - t - math.hypot(x, y) / c * 1e6) / 1000, 2)
        return out


def _matches(d: dict[str, Any], f: Filters) -> bool:
    t = d.get("time_utc_us") or d.get("formed_at_us") or 0
    side = d.get("side") if d.get("side") in ("L", "R") else "undecided"
    return ((f.since_us is None or t >= f.since_us) and (f.until_us is None or t < f.until_us)
            and (f.segment is None or f.segment in d["segments"])
            and (f.event_class is None or d.get("class") == f.event_class)
            and (f.side is None or side == f.side)
            and (f.status is None or d.get("status") == f.status))


def ellipse_polygon(d: dict[str, Any], points: int = 36) -> list[list[float]] | None:
    """The 95 % ellipse as [lat, lon] points (angle of the major axis from east, counter-clockwise)."""
    e, lat, lon = d.get("ellipse_95"), d.get("lat"), d.get("lon")
    if not isinstance(e, dict) or lat is None or lon is None:
        return None
    a, b, angle = e.get("major_m"), e.get("minor_m"), math.radians(e.get("angle_deg") or 0.0)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (a, b)):
        return None
    frame, out = LocalFrame(lat, lon), []
    for i in range(points):
        t = 2 * math.pi * i / points
        x, y = a * math.cos(t), b * math.sin(t)
        p = frame.to_latlon(x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle))
        out.append([round(p[0], 7), round(p[1], 7)])
    return out


def _clock(code: int) -> str:
    return const.CLOCK_NAMES[code] if 0 <= code < len(const.CLOCK_NAMES) else str(code)


def _line_of(nodes) -> list[list[float]]:
    """No [fusion] line: a line through the nodes in order of longitude, so the map has a shape."""
    return [[n.lat, n.lon] for n in sorted(nodes, key=lambda n: (n.lon, n.lat))]


def _part_of(line: list[list[float]], members) -> list[list[float]]:
    """The stretch of the line a segment's nodes watch: from the line point nearest its first
    node to the one nearest its last, along the line."""
    if len(line) < 2 or not members:
        return []
    frame = LocalFrame(*line[0])
    xy = [frame.to_xy(*p) for p in line]
    along = [0.0]
    for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
        along.append(along[-1] + math.hypot(x1 - x0, y1 - y0))
    spots = [_nearest(xy, along, frame.to_xy(n.lat, n.lon)) for n in members]
    lo, hi = min(spots), max(spots)
    pts = [_at(xy, along, lo)] + [xy[i] for i in range(len(xy)) if lo < along[i] < hi] + [_at(xy, along, hi)]
    return [[round(v, 7) for v in frame.to_latlon(x, y)] for x, y in pts]


def _nearest(xy, along, p) -> float:
    best, where = math.inf, 0.0
    for i in range(len(xy) - 1):
        (x0, y0), (x1, y1) = xy[i], xy[i + 1]
        dx, dy = x1 - x0, y1 - y0
        span = dx * dx + dy * dy
        t = 0.0 if span == 0 else max(0.0, min(1.0, ((p[0] - x0) * dx + (p[1] - y0) * dy) / span))
        d = math.hypot(x0 + t * dx - p[0], y0 + t * dy - p[1])
        if d < best:
            best, where = d, along[i] + t * math.sqrt(span)
    return where


def _at(xy, along, s) -> tuple[float, float]:
    for i in range(len(xy) - 1):
        if along[i] <= s <= along[i + 1]:
            span = along[i + 1] - along[i]
            t = 0.0 if span == 0 else (s - along[i]) / span
            return xy[i][0] + t * (xy[i + 1][0] - xy[i][0]), xy[i][1] + t * (xy[i + 1][1] - xy[i][1])
    return xy[-1]


Reader = Callable[[Views], Any]
