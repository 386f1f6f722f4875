"""Query parameters, checked before anything is read: a malformed one is a 400 whose message
names the parameter, what it got and what it takes. Nothing from a request reaches the store
except through these checked values (and the store's queries are parameterized)."""
from __future__ import annotations

import datetime
from collections.abc import Mapping

from lwproto import const

from linewatch.commission.incidents import STATUSES
from linewatch.commission.registry import RegistryError, parse_node_id
from linewatch.desk.views import Filters

INCIDENT_PARAMS = ("since", "until", "segment", "class", "side", "status", "limit")
SIDES = {"L": "L", "R": "R", "left": "L", "right": "R", "undecided": "undecided"}
INCIDENT_STATUSES = STATUSES + ("withdrawn",)


class BadParameter(ValueError):
    """The message is what the client is told (400)."""


def incident_filters(query: Mapping[str, str]) -> Filters:
    unknown = sorted(set(query) - set(INCIDENT_PARAMS))
    if unknown:
        raise BadParameter(f"unknown parameter {unknown[0]!r}; incidents take {', '.join(INCIDENT_PARAMS)}")
    since = _time(query, "since")
    until = _time(query, "until")
    if since is not None and until is not None and until <= since:
        raise BadParameter("until must be later than since")
    cls = query.get("class") or None
    if cls is not None and cls not in const.CLASS_NAMES:
        raise BadParameter(f"class {cls!r}: expected one of {', '.join(const.CLASS_NAMES)}")
    side = query.get("side") or None
    if side is not None and side not in SIDES:
        raise BadParameter(f"side {side!r}: expected L, R (or left, right) or undecided")
    status = query.get("status") or None
    if status is not None and status not in INCIDENT_STATUSES:
        raise BadParameter(f"status {status!r}: expected one of {', '.join(INCIDENT_STATUSES)}")
    return Filters(since_us=since, until_us=until, segment=integer(query, "segment", 0, 255),
                   event_class=cls, side=SIDES.get(side) if side else None, status=status,
                   limit=integer(query, "limit", 1, 5000) or 500)


def integer(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        value = int(text, 10)
    except ValueError:
        raise BadParameter(f"{name} {text!r}: expected a whole number {low}..{high}") from None
    if not low <= value <= high:
        raise BadParameter(f"{name} {value}: outside {low}..{high}")
    return value


def _time(query: Mapping[str, str], name: str) -> int | None:
    """UTC microseconds from an ISO 8601 time (2026-12-04T10:30:00Z, or a date: its midnight
    UTC); a time without a zone is taken as UTC."""
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(f"{name} {text!r}: expected an ISO 8601 UTC time such as 2026-12-04T10:30:00Z "
                           f"or a date such as 2026-12-04") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1_000_000)


def node_id(text: str) -> int:
    """A node id in a path, in hex as nodes are named everywhere (0x0102 or 0102)."""
    try:
        return parse_node_id(text)
    except RegistryError as exc:
        raise BadParameter(str(exc)) from None


def incident_id(text: str) -> str:
    if not (0 < len(text) <= 40 and all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in text)):
        raise BadParameter(f"incident {text[:40]!r}: expected an id such as I-000012")
    return text
