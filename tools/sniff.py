"""A protocol analyzer for the line: every message under lw/ printed decoded, one line each.

With the master key at hand each frame is also verified (tag under the node's derived key,
node in the topic == node in the frame, kind of topic == type of frame); with the registry,
nodes the commission does not know are flagged. A bad frame is printed with its error and its
bytes in hex; nothing a node or an attacker sends can stop the sniffer.
"""
from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Callable

from lwproto import auth, const, frame, hostframe, topic
from lwproto.errors import ProtocolError

FILTERS = (f"{topic.ROOT}/#",)


@dataclass
class Verifier:
    """Keys for checking tags (from the master key) and the registry's node ids, when known."""
    master_key: bytes | None = None
    known_nodes: Callable[[int], bool] | None = None

    def __post_init__(self) -> None:
        self._keys: dict[int, bytes] = {}

    def key(self, node: int) -> bytes | None:
        if self.master_key is None:
            return None
        if node not in self._keys:
            self._keys[node] = auth.derive_node_key(self.master_key, node)
        return self._keys[node]


def utc(time_us: int) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(time_us / 1e6, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{time_us}us"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _value(name: str, value) -> str:
    if name == "event_class" and isinstance(value, int) and 0 <= value < len(const.CLASS_NAMES):
        return const.CLASS_NAMES[value]
    if name == "board" and 0 <= value < len(const.BOARD_NAMES):
        return const.BOARD_NAMES[value]
    if name == "command" and value in const.COMMAND_NAMES:
        return const.COMMAND_NAMES[value]
    if name == "state" and frame_state_names.get(value):
        return frame_state_names[value]
    return f"{value:g}" if isinstance(value, float) else str(value)


frame_state_names = {const.OFFLINE: "offline", const.ONLINE: "online"}


def describe(topic_name: str, payload: bytes, verifier: Verifier | None = None, raw: bool = False) -> str:
    """One line for one message; never raises for anything in the payload."""
    verifier = verifier or Verifier()
    head = f"{topic_name:<22}"
    hex_tail = f"\n    hex {payload.hex()}" if raw else ""
    if topic_name.startswith(topic.ALERTS):
        return f"{head} alert {payload[:300].decode('utf-8', 'replace')}{hex_tail}"
    try:
        ftype, node = frame.peek(payload)
        decoded = hostframe.decode_unverified(payload)   # the tag is checked in _checks
    except ProtocolError as exc:
        return f"{head} ERROR {exc.reason}: {exc}\n    hex {payload.hex()}"
    checks = _checks(topic_name, decoded, payload, verifier)
    fields = " ".join(f"{name}={_value(name, v)}" for name, v in decoded.fields().items())
    clock = const.CLOCK_NAMES[decoded.clock_source]
    line = (f"{head} {decoded.type_name():<9} node=0x{node:04x} boot={decoded.boot} seq={decoded.seq}"
            f" t={utc(decoded.time_us)} clock={clock}±{decoded.clock_error_us}us {fields} [{checks}]")
    if checks.startswith("REFUSED"):
        return f"{line}\n    hex {payload.hex()}"
    return line + hex_tail


def _checks(topic_name: str, decoded: frame.Frame, payload: bytes, verifier: Verifier) -> str:
    problems = []
    if topic_name == topic.COMMISSION_STATE:
        if decoded.node != const.COMMISSION_NODE:
            problems.append(f"state frame from node 0x{decoded.node:04x}, not the commission")
    else:
        try:
            _, topic_node, kind = topic.parse(topic_name)
        except ProtocolError as exc:
            problems.append(str(exc))
        else:
            if topic_node != decoded.node:
                problems.append(f"topic names node 0x{topic_node:04x}")
            if topic.KIND_OF_TYPE.get(decoded.ftype) != kind:
                problems.append(f"{decoded.type_name()} frame on a {kind} topic")
        if verifier.known_nodes is not None and not verifier.known_nodes(decoded.node):
            problems.append("node not in the registry")
    key = verifier.key(decoded.node)
    if key is not None and not frame.verify(payload, key):
        problems.insert(0, "bad tag")
    if problems:
        return "REFUSED: " + "; ".join(problems)
    return "verified" if key is not None else "not verified: no master key"


def sniff(access, verifier: Verifier, raw: bool = False, count: int | None = None,
          timeout: float | None = None, out: Callable[[str], None] = print,
          notice: Callable[[str], None] | None = None) -> int:
    """Print messages until `count` were seen or `timeout` seconds passed (None: forever).
    `access`: a linewatch.broker.BrokerAccess; BrokerError when the broker is unreachable or
    refuses us."""
    from linewatch.broker import Subscription

    seen = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    notice = notice or out
    with Subscription(access, [(f, 1) for f in FILTERS], "lw-sniff", notice=notice).open() as sub:
        notice(f"sniff: listening on {access.where} as {access.user} ({', '.join(FILTERS)})")
        while count is None or seen < count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            message = sub.get(timeout=min(left, 1.0) if left is not None else 1.0)
            if message is not None:
                seen += 1
                out(f"{datetime.datetime.now().strftime('%H:%M:%S.%f')[:-3]} {describe(*message, verifier, raw)}")
    return 0
