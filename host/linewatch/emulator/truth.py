"""The ground truth of a run: what really happened, where, when, and who should have heard it.

The same scenario and seed give byte-identical truth (floats are rounded, keys sorted).
"""
from __future__ import annotations

import json
from pathlib import Path

from linewatch.emulator import propagation
from linewatch.emulator.background import Background
from linewatch.emulator.boards import STAMP_ERROR_US
from linewatch.emulator.crossings import track_crossings
from linewatch.emulator.hearing import audience
from linewatch.emulator.scenario import Scenario
from linewatch.emulator.sources import ClockFault, Impulse, NodeFault, Outage, Tamper, Track
from linewatch.emulator.world import World, segment_at

TRUTH_VERSION = 2      # 2: reached_by, not_heard, best_snr_db, partner, crossings, node clock error
# the background's sources a node may rightly report: cars and tractors passing on tracks
# near it (background.py "vehicle", 20-300 m away). They are not the scenario's: the score
# counts an incident about one as background traffic, neither a hit nor false.
BACKGROUND_REAL = {"vehicle": "vehicle"}        # transient kind -> the class it rightly is
BACKGROUND_RANGE_M = 300.0


def build_truth(scenario: Scenario, world: World,
                threshold_db: float = propagation.DETECTION_SNR_DB) -> dict:
    return {
        "version": TRUTH_VERSION,
        "scenario": scenario.name,
        "seed": scenario.seed,
        "duration_s": scenario.duration_s,
        "start_utc_us": world.start_utc_us,
        "detection_snr_db": threshold_db,
        "line": [[round(a, 7), round(b, 7)] for a, b in world.line.vertices],
        "segments": [{"number": s.number, "start_m": round(s.start_m, 1), "end_m": round(s.end_m, 1)}
                     for s in world.segments],
        "nodes": [_node(n, world.start_utc_us, _us(world, scenario.duration_s)) for n in world.nodes],
        "sources": [_source(s, scenario, world, threshold_db) for s in scenario.sources],
        "faults": [_fault(f, world) for f in scenario.faults],
        "background": _background(scenario, world),
    }


def _background(scenario: Scenario, world: World) -> list[dict]:
    """The background's real sources (BACKGROUND_REAL) at each node, in time order: where the
    node is (the source was within BACKGROUND_RANGE_M of it) and when."""
    back = Background(world, scenario.seed)
    out = []
    for n in world.nodes:
        for tr in (t for kind in BACKGROUND_REAL for t in back.transients_of(kind, n.id, 0.0, scenario.duration_s)):
            if tr.start_s < scenario.duration_s:
                out.append({"kind": tr.kind, "class": BACKGROUND_REAL[tr.kind], "node": n.id,
                            "lat": round(n.lat, 7), "lon": round(n.lon, 7),
                            "range_m": BACKGROUND_RANGE_M, "level_db": round(tr.level_db, 1),
                            "time_utc_us": _us(world, tr.start_s), "end_utc_us": _us(world, tr.end_s)})
    return sorted(out, key=lambda b: (b["time_utc_us"], b["node"]))


def _us(world: World, time_s: float) -> int:
    return world.start_utc_us + int(round(time_s * 1e6))


def _node(n, start_us: int, end_us: int) -> dict:
    # the largest clock error its frames state during the run (boards that stamp blocks
    # late add their allowance: boards.STAMP_ERROR_US)
    allowance = 0 if n.board.stamps.exact else STAMP_ERROR_US
    return {"id": n.id, "segment": n.segment, "row": n.row, "lat": round(n.lat, 7),
            "lon": round(n.lon, 7), "reported_lat": round(n.reported_lat, 7),
            "reported_lon": round(n.reported_lon, 7), "clock_source": n.clock_source,
            "reported_clock_error_us": n.clock.stated_error_us(start_us, end_us, allowance)}


def _where(world: World, lat: float, lon: float) -> dict:
    pos = world.line.locate(lat, lon)
    return {"lat": round(lat, 7), "lon": round(lon, 7), "side": pos.side,
            "distance_from_line_m": round(pos.distance_m, 1), "along_m": round(pos.along_m, 1),
            "segment": segment_at(world.segments, pos.along_m)}


def _source(s, scenario: Scenario, world: World, threshold_db: float) -> dict:
    heard = audience(world, s, scenario.faults, threshold_db)
    first = heard.first_heard_s
    out = {"id": s.id, "class": s.event_class, "time_utc_us": _us(world, s.time_s),
           "heard_by": heard.heard_by, "reached_by": heard.reached_by,
           "not_heard": heard.not_heard, "best_snr_db": heard.best_snr_db,
           "first_heard_utc_us": None if first is None else _us(world, first)}
    if isinstance(s, Impulse):
        out.update(_where(world, s.lat, s.lon))
        out.update(kind=s.kind, level_db=round(s.level_db, 1), shots=s.shots,
                   end_utc_us=_us(world, s.end_s))
        if s.kind in ("launch", "impact"):
            out.update(partner=_partner(s.id, s.kind))
    elif isinstance(s, Track):
        # A track is placed where it came from: that is the side that sent it.
        out.update(_where(world, *s.waypoints[0]))
        out.update(kind=s.kind or s.event_class, level_db=round(s.level_db, 1), end_utc_us=_us(world, s.end_s),
                   speed_mps=round(s.speed_mps, 2), altitude_m=round(s.altitude_m, 1),
                   fundamental_hz=round(s.fundamental_hz, 1), path=_path(s, world),
                   crossings=[_crossing(c, world) for c in
                              track_crossings(world, s, heard.exposures, scenario.faults, threshold_db)])
    elif isinstance(s, Tamper):
        node = world.node(s.node_id)
        out.update(_where(world, node.lat, node.lon))
        out.update(kind=s.action, node=s.node_id, end_utc_us=_us(world, s.end_s))
    return out


def _partner(ident: str, kind: str) -> str:
    """An artillery event's other half: ID-launch <-> ID-impact (scenario.py names them)."""
    other = "impact" if kind == "launch" else "launch"
    return ident[: -len(kind)] + other if ident.endswith(kind) else ident


def _crossing(c: dict, world: World) -> dict:
    return {"time_utc_us": _us(world, c["time_s"]), "lat": round(c["lat"], 7),
            "lon": round(c["lon"], 7), "from": c["from"], "to": c["to"],
            "heard_before": c["heard_before"], "heard_after": c["heard_after"],
            "in_hearing_range": c["in_hearing_range"]}


def _path(track: Track, world: World) -> list[list]:
    """[time_utc_us, lat, lon] at each waypoint."""
    t = track.time_s
    out = [[_us(world, t), round(track.waypoints[0][0], 7), round(track.waypoints[0][1], 7)]]
    for (lat, lon), leg in zip(track.waypoints[1:], track.leg_lengths_m):
        t += leg / track.speed_mps
        out.append([_us(world, t), round(lat, 7), round(lon, 7)])
    return out


def _fault(f, world: World) -> dict:
    if isinstance(f, NodeFault):
        end = None if f.duration_s is None else _us(world, f.time_s + f.duration_s)
        return {"kind": "node_" + f.kind, "node": f.node_id, "time_utc_us": _us(world, f.time_s),
                "end_utc_us": end}
    if isinstance(f, Outage):
        return {"kind": f.kind + "_outage", "nodes": list(f.node_ids),
                "time_utc_us": _us(world, f.time_s), "end_utc_us": _us(world, f.end_s)}
    if isinstance(f, ClockFault):
        return {"kind": "clock_" + f.fault, "node": f.node_id, "time_utc_us": _us(world, f.time_s),
                "end_utc_us": None, "offset_us": int(round(f.offset_ms * 1000)),
                "drift_ppm": round(f.drift_ppm, 3)}
    raise TypeError("not a fault: %r" % (f,))


def dumps(truth: dict) -> str:
    return json.dumps(truth, sort_keys=True, indent=1) + "\n"


def write_truth(path: str | Path, truth: dict) -> None:
    Path(path).write_text(dumps(truth), encoding="utf-8")


def load_truth(path: str | Path) -> dict:
    """Read a truth file; a clear ValueError names what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError("%s: cannot read: %s" % (path, exc.strerror)) from None
    except json.JSONDecodeError as exc:
        raise ValueError("%s: not JSON: %s" % (path, exc)) from None
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise ValueError("%s: not a truth file (no \"sources\" list)" % path)
    for i, s in enumerate(data["sources"]):
        for key in ("id", "class", "time_utc_us", "heard_by"):
            if not isinstance(s, dict) or key not in s:
                raise ValueError("%s: sources[%d]: missing %r" % (path, i, key))
    return data
