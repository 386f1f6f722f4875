"""Node control: the commission's commands to a node, and what the node did about them.

A command is an act of the commission like a status change: written to the evidence log with
who gave it (before it goes out, so nothing is sent that the log does not hold), then signed
with the node's key under the aggregator's boot and downlink sequence (acks.Downlink, the same
counter as acks and resend requests: a node refuses a command whose (boot, seq) is not newer
than the last it obeyed) and published on the node's downlink topic.

The node does not answer a command with a frame of its own; its next frames tell the effect:
a birth after `rebirth`, a birth under a newer boot after `reboot`, and for `set_threshold` and
`resend` the next heartbeat's refused-command counter (unchanged: obeyed; higher: refused).
"Next" by the frame's own time too: a frame the node made well before the command was given
(its stamp plus its stated error more than BEFORE_MARGIN_US earlier), such as a heartbeat from
the backlog a node sends when it reconnects (when the command reaches it too), says nothing
about the command. The margin, a heartbeat interval, allows for a commission and a node whose
clocks disagree by more than the node admits (seconds, in the real-time emulator); a node with
no clock is read in log order.
`effect()` reads that from the evidence log, so it survives a restart of the service.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lwproto import const
from lwproto import frame as wire
from lwproto.errors import ProtocolError

from linewatch.commission.evidence import commission_entry
from linewatch.commission.store import Batch, EvidenceRow

COMMANDS = ("set_threshold", "rebirth", "reboot", "resend")
CODES = {name: code for code, name in const.COMMAND_NAMES.items()}
ENTRY = "command"              # the evidence entry's type
BEFORE_MARGIN_US = 60_000_000  # a frame stamped this much before the command was made before it
# Classes a threshold may be set for (tamper has its own accelerometer rule on the node).
THRESHOLD_CLASSES = tuple(c for c in const.CLASS_NAMES if c not in ("unknown",))


class CommandError(ValueError):
    """A command that cannot be sent as asked; the message says which part and why."""


def arguments(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """The command's arguments checked and completed (what the evidence entry records)."""
    if name not in COMMANDS:
        raise CommandError(f"command must be one of {', '.join(COMMANDS)}, not {name!r}")
    wanted = {"set_threshold": ("event_class", "threshold", "refractory_ms"), "rebirth": (),
              "reboot": ("delay_s",), "resend": ("boot", "first_seq", "last_seq")}[name]
    extra = sorted(set(args) - set(wanted))
    if extra:
        raise CommandError(f"{name} takes {', '.join(wanted) or 'no arguments'}; not {', '.join(extra)}")
    if name == "set_threshold":
        cls = args.get("event_class")
        if cls not in THRESHOLD_CLASSES:
            raise CommandError(f"set_threshold: event_class must be one of {', '.join(THRESHOLD_CLASSES)}, "
                               f"not {cls!r}")
        threshold = _number(args.get("threshold"), "set_threshold: threshold", 0, 6553.5)
        refractory = int(_number(args.get("refractory_ms", 0), "set_threshold: refractory_ms", 0, 65535, True))
        return {"event_class": cls, "threshold": threshold, "refractory_ms": refractory}
    if name == "reboot":
        return {"delay_s": int(_number(args.get("delay_s", 0), "reboot: delay_s", 0, 65535, True))}
    if name == "resend":
        boot = int(_number(args.get("boot"), "resend: boot", 0, 65535, True))
        first = int(_number(args.get("first_seq"), "resend: first_seq", 1, 2 ** 32 - 1, True))
        last = int(_number(args.get("last_seq", first), "resend: last_seq", first, 2 ** 32 - 1, True))
        return {"boot": boot, "first_seq": first, "last_seq": last}
    return {}


def _number(value: Any, what: str, low: float, high: float, integer: bool = False) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise CommandError(f"{what}: {value!r} is not a number") from None
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CommandError(f"{what}: a number is required")
    if integer and value != int(value):
        raise CommandError(f"{what}: {value!r} is not a whole number")
    if not low <= value <= high:
        raise CommandError(f"{what}: {value!r} outside {low:g}..{high:g}")
    return float(value)


def wire_values(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """The command frame's fields (SPEC: every field present, unused ones 0)."""
    values = {"command": CODES[name], "event_class": 0, "threshold": 0, "refractory_ms": 0, "boot": 0,
              "first_seq": 0, "last_seq": 0, "delay_s": 0}
    values.update(args)
    if name == "set_threshold":
        values["event_class"] = const.CLASS_NAMES.index(args["event_class"])
    return values


def send(store, downlink, publish: Callable[[str, bytes], None], node: int, name: str, args: dict[str, Any],
         who: str, before: dict[str, Any]) -> EvidenceRow:
    """Record the command in the evidence log, then sign and publish it. `before`: what the
    commission knew of the node when it gave the command (boot, refused-command counter), for
    effect(). Returns the evidence entry (with its id)."""
    args = arguments(name, args)
    if downlink.segment_of(node) is None:
        raise CommandError(f"node 0x{node:04x} is not registered")
    seq = downlink.seq + 1      # the frame's sequence, recorded before the frame is made
    content = {"command": name, "args": args, "commission_boot": downlink.boot, "commission_seq": seq,
               "node_boot": int(before.get("boot", 0)), "refused_before": before.get("refused_commands")}
    entry = commission_entry(ENTRY, node, content, who=who)
    ids = store.commit(Batch(evidence=[entry]))
    message = downlink.frame(node, const.COMMAND, wire_values(name, args))
    if message is None:       # removed between the check and now: the entry says it was given, not sent
        raise CommandError(f"node 0x{node:04x} is not registered")
    publish(*message)
    return entry._replace(id=ids[0])


def effect(entry: EvidenceRow, later: list[EvidenceRow], key_of: Callable[[int], bytes]) -> dict[str, Any]:
    """What the node's frames after the command (`later`, in log order) say about it:
    {"state": "waiting" | "obeyed" | "refused", "detail": words, "at_us": when it answered}."""
    content = json.loads(entry.note)
    name, node_boot, refused = content["command"], content.get("node_boot", 0), content.get("refused_before")
    for row in later:
        if row.type not in ("birth", "heartbeat"):
            continue
        try:
            frame = wire.decode(row.raw, key_of(row.node))
        except ProtocolError:
            continue
        if frame.clock_source != const.CLOCK_NONE and \
                frame.time_us + frame.clock_error_us + BEFORE_MARGIN_US < entry.received_us:
            continue      # made before the command was given (a backlog sent late): says nothing of it
        f = frame.fields()
        if name == "rebirth" and row.type == "birth":
            return _said("obeyed", f"birth received (boot {row.boot} seq {row.seq})", row)
        if name == "reboot" and row.type == "birth" and row.boot > node_boot:
            return _said("obeyed", f"rebooted: birth under boot {row.boot}", row)
        if name in ("set_threshold", "resend") and row.type == "heartbeat":
            now = f.get("refused_commands")
            if refused is None or now is None or row.boot != node_boot:
                continue
            if now > refused:
                return _said("refused", f"the node refused it (refused-command counter {refused} -> {now})", row)
            return _said("obeyed", f"next heartbeat (seq {row.seq}) shows it obeyed: no refusal", row)
    return {"state": "waiting", "detail": "no answer from the node yet", "at_us": None}


def _said(state: str, detail: str, row: EvidenceRow) -> dict[str, Any]:
    return {"state": state, "detail": detail, "at_us": row.received_us, "evidence_id": row.id}


def node_before(health_row) -> dict[str, Any]:
    """The node's boot and refused-command counter as the commission last stored them."""
    if health_row is None:
        return {"boot": 0, "refused_commands": None}
    counters = json.loads(health_row.counters or "{}")
    return {"boot": health_row.boot, "refused_commands": counters.get("refused_commands")}

