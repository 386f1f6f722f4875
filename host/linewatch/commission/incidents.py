"""The commission's incidents as stored, and its judgement of them.

A status change (new -> confirmed / dismissed) is an act of the commission: it is written to
the evidence log with who made it and why, in the same transaction as the incident itself.
"""
from __future__ import annotations

import json
import time

from linewatch.commission.evidence import commission_entry
from linewatch.commission.store import Batch
from linewatch.commission.wording import withdrawn

STATUSES = ("new", "confirmed", "dismissed")


def incident_dicts(store) -> list[dict]:
    """Every incident's latest version with the commission's status; one whose reports all
    joined other incidents has the status "withdrawn"."""
    return [incident_dict(row) for row in store.incidents()]


def incident_dict(row: tuple[str, str, int, str]) -> dict:
    """One stored incident (store.incidents() or incident_get()) as incident_dicts tells it."""
    incident_id, status, updated_us, body = row
    d = json.loads(body)
    d["id"] = d.get("id", incident_id)
    d["status"] = "withdrawn" if withdrawn(d) else status
    d["updated_us"] = updated_us
    return d


def set_status(store, incident_id: str, status: str, note: str, who: str) -> str:
    """Judge one incident; returns its old status. KeyError when there is no such incident."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    known = store.incident_get(incident_id)
    if known is None:
        raise KeyError(incident_id)
    if withdrawn(json.loads(known[3])):
        raise ValueError(f"incident {incident_id} was withdrawn (its reports joined other incidents):"
                         " judge those instead")
    at = time.time_ns() // 1000
    entry = commission_entry("incident_status", 0, {"incident": incident_id, "old": known[1],
                                                    "new": status, "note": note}, who=who, at_us=at)
    store.commit(Batch(evidence=[entry], incidents={incident_id: (status, at, known[3])}))
    return known[1]
