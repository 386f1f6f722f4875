# The validated config the node runs with; config.py fills it in at boot. A module of its own so
# that config.py (its checks and their messages) can leave RAM once the node has started:
# an instance keeps its class's module alive, and this one is small.


class Config:
    """Validated settings; sections are plain dicts with every default filled in."""
    # declared for the type checker only (MicroPython stores nothing for a bare annotation)
    node: int
    segment: int
    key: bytes
    position: dict
    board: "str | None"   # None: the board from sys.platform
    wifi: dict
    broker: dict
    pins: dict
    audio: dict
    thresholds: dict
    refractory_ms: dict
    heartbeat_s: int
    queue: dict
    storage: str
    power: tuple
    feed: dict
    raw: dict

    def name(self):
        return "0x%04x" % self.node
