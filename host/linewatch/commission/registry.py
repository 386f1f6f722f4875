"""The node registry: which nodes exist, in which segment, where they stand.

`linewatch nodes add` and `linewatch provision` write here; ingest reads through a cache that
refreshes itself so a node added while the service runs is heard at once.
"""
from __future__ import annotations

import time
from pathlib import Path

from linewatch.commission.store import NodeRecord, Store, open_store


class RegistryError(ValueError):
    pass


def parse_node_id(text: str) -> int:
    """'0x0102', '0102' (hex, as shown everywhere) or a plain decimal with a 'd' prefix is not
    accepted: node ids are always written in hex."""
    try:
        value = int(text, 16)
    except ValueError:
        raise RegistryError(f"node id {text!r} is not hex (like 0x0102)")
    if not 0 < value <= 0xFFFF:
        raise RegistryError(f"node id {text!r} outside 0x0001..0xffff (0 is the commission)")
    return value


class Registry:
    def __init__(self, store: Store, refresh_s: float = 10.0) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self._cache: dict[int, NodeRecord] = {}
        self._loaded = float("-inf")

    @classmethod
    def open(cls, db_path: str | Path, readonly: bool = False) -> "Registry":
        return cls(open_store(str(db_path), readonly=readonly))

    def add(self, node_id: int, segment: int, lat: float, lon: float, alt_m: float = 0.0) -> NodeRecord:
        """Add or update a node (a moved node keeps its id and gets its new position)."""
        if not 0 < node_id <= 0xFFFF:
            raise RegistryError(f"node id {node_id} outside 1..65535 (0 is the commission)")
        if not 0 <= segment <= 255:
            raise RegistryError(f"node 0x{node_id:04x}: segment {segment} outside 0..255")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise RegistryError(f"node 0x{node_id:04x}: position ({lat}, {lon}) is off the globe")
        record = NodeRecord(node_id, segment, float(lat), float(lon), float(alt_m), time.time_ns() // 1000)
        self.store.node_put(record)
        self._cache[node_id] = record
        return record

    def remove(self, node_id: int) -> bool:
        self._cache.pop(node_id, None)
        return self.store.node_remove(node_id)

    def list(self) -> list[NodeRecord]:
        return self.store.nodes()

    def get(self, node_id: int) -> NodeRecord | None:
        """The node, from the cache when fresh; an unknown id is looked up once more in the DB."""
        now = time.monotonic()
        if now - self._loaded > self.refresh_s:
            self._cache = {n.id: n for n in self.store.nodes()}
            self._loaded = now
        record = self._cache.get(node_id)
        if record is None:
            record = self.store.node_get(node_id)
            if record is not None:
                self._cache[node_id] = record
        return record
