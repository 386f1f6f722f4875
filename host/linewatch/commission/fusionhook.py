"""The fusion hook: accepted event frames -> the fusion engine -> incident dicts."""
from __future__ import annotations

import json
import logging
from typing import Any

from lwproto import const

from linewatch.commission.config import Config
from linewatch.commission.evidence import now_us
from linewatch.commission.ingest import Accepted

log = logging.getLogger("linewatch.aggregator")


class FusionHook:
    """Feeds accepted event frames to the fusion engine (linewatch.fusion) when it is there."""

    def __init__(self, engine: Any, report_cls: Any, temperature_c: float | None = None) -> None:
        self.engine = engine
        self.report_cls = report_cls
        self.fixed_temperature = temperature_c
        self.temperatures: dict[int, float] = {}
        self.clock = now_us         # the commission's time (the direct tier sets its run's clock)
        if temperature_c is not None:
            engine.set_temperature(temperature_c)

    def heartbeat(self, node: int, temperature_c: float) -> None:
        """Speed of sound from the nodes' own thermometers unless the config fixes it."""
        if self.fixed_temperature is not None or not -60 <= temperature_c <= 60:
            return
        self.temperatures[node] = temperature_c
        values = sorted(self.temperatures.values())
        self.engine.set_temperature(values[len(values) // 2])

    def feed(self, result: Accepted, evidence_id: int, record: Any) -> list[dict[str, Any]]:
        if record is None:
            return []
        f = result.frame
        v = f.fields()
        try:
            report = self.report_cls(
                node_id=f.node, lat=record.lat, lon=record.lon, alt_m=record.alt_m,
                event_class=const.CLASS_NAMES[v["event_class"]], onset_utc_us=f.time_us + v["onset_offset_us"],
                clock_error_us=f.clock_error_us, confidence=v["confidence"], peak_db=v["peak_db"],
                duration_ms=v["duration_ms"], frequency_hz=v["frequency_hz"], snr_db=v["snr_db"],
                evidence_id=evidence_id, received_at_us=result.received_us,
                clock_source=_clock_name(f.clock_source))
            return [incident_dict(i) for i in self.engine.add(report, self.clock())]
        except ValueError as exc:   # a report fusion refuses is logged, never fatal
            log.warning("fusion refused the event of node 0x%04x: %s", f.node, exc)
            return []

    def number_after(self, last_id: str | None) -> None:
        if hasattr(self.engine, "number_after"):
            self.engine.number_after(last_id)

    def tick(self, at_us: int) -> list[dict[str, Any]]:
        return [incident_dict(i) for i in self.engine.tick(at_us)]

    def node_timing(self) -> dict[int, dict]:
        """Fusion's estimate of each node's clock ({node: {offset_us, flagged, ...}})."""
        return self.engine.node_timing() if hasattr(self.engine, "node_timing") else {}

    def parked(self) -> int:
        return self.engine.parked() if hasattr(self.engine, "parked") else 0

    def settle(self, at_us: int) -> list[dict[str, Any]]:
        return [incident_dict(i) for i in self.engine.settle(at_us)]


def _clock_name(code: int) -> str | None:
    return const.CLOCK_NAMES[code] if 0 <= code < len(const.CLOCK_NAMES) else None


def incident_dict(incident: Any) -> dict[str, Any]:
    body = incident.to_json() if hasattr(incident, "to_json") else incident
    return json.loads(body) if isinstance(body, (str, bytes)) else dict(body)


def make_fusion(config: Config) -> FusionHook | None:
    """The fusion engine when linewatch.fusion provides one and a contact line is configured."""
    if not config.fusion.line:
        return None
    try:
        from linewatch import fusion
        from linewatch.geo import ContactLine
        engine_cls = getattr(fusion, "FusionEngine")
        report_cls = getattr(fusion, "Report", None) or __import__("linewatch.fusion.report", fromlist=["Report"]).Report
    except (ImportError, AttributeError) as exc:
        log.warning("fusion not available (%s): frames are stored, no incidents are made", exc)
        return None
    line = ContactLine([tuple(p) for p in config.fusion.line])
    fusion_config = getattr(fusion, "FusionConfig", None)
    engine = engine_cls(line, fusion_config(publish_pairs=config.fusion.publish_pairs) if fusion_config else None)
    engine.defer_wide = True        # the serve loop settles them while no frame waits
    if config.fusion.wind_speed_mps and hasattr(engine, "set_wind"):
        engine.set_wind(config.fusion.wind_speed_mps, config.fusion.wind_from_deg)
    return FusionHook(engine, report_cls, config.fusion.temperature_c)
