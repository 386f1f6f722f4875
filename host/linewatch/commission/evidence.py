"""Evidence rows the commission writes itself, and its signed state frame."""
from __future__ import annotations

import json
import time
from typing import Any

from lwproto import const
from lwproto import frame as wire

from linewatch import keys
from linewatch.commission.store import COMMISSION, EvidenceRow


def now_us() -> int:
    return time.time_ns() // 1000


def commission_entry(entry_type: str, node: int, content: dict[str, Any], who: str = "aggregator",
                     at_us: int | None = None) -> EvidenceRow:
    """An evidence row written by the commission itself (lost range, incident status ...)."""
    return EvidenceRow(0, COMMISSION, entry_type, node, 0, 0, "", now_us() if at_us is None else at_us, b"",
                       who, json.dumps(content, sort_keys=True))


def state_frame(master: bytes, boot: int, seq: int, state: int) -> bytes:
    """The retained commission state frame (node 0, tagged with node 0's derived key)."""
    return wire.encode(keys.derive(master, const.COMMISSION_NODE), const.STATE, const.COMMISSION_NODE,
                       boot & 0xFFFF, seq, now_us(), const.CLOCK_NTP, 1000, {"state": state})
