"""Write protocol/vectors/v1.json: golden frames for every type and invalid frames.

Run once when the protocol changes (`python -m lwtools.make_vectors`); the tests then hold
every implementation, CPython and MicroPython, to these exact bytes.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lwproto import auth, const as c, frame

OUT = Path(__file__).resolve().parents[1] / "protocol" / "vectors" / "v1.json"
MASTER = bytes(range(32))
NODE = 0x0102
T0 = 1795000000123456  # 2026-11-18T11:06:40.123456Z

VALID = [
    ("event", c.EVENT, NODE, {"event_class": c.EXPLOSION, "confidence": 0.87, "onset_offset_us": -1234,
                              "peak_db": -12.3, "duration_ms": 180, "frequency_hz": 95, "snr_db": 18.5}),
    ("heartbeat", c.HEARTBEAT, NODE, {"battery_mv": 3912, "temperature_c": 11.5, "uptime_s": 86400,
                                      "rssi_dbm": -67, "queue_depth": 3, "free_memory": 61440,
                                      "detections": 17, "dropped": 0, "reconnects": 2,
                                      "refused_commands": 1, "radio_ms": 41250, "slept_s": 3600,
                                      "heartbeat_s": 60, "power": c.POWER_NORMAL}),
    ("birth", c.BIRTH, NODE, {"fw_major": 0, "fw_minor": 1, "fw_patch": 0, "board": 1, "segment": 3,
                              "lat": 48.0123456, "lon": 37.7654321, "alt_m": 182, "position_error_m": 4,
                              "sensors": c.SENSOR_MIC | c.SENSOR_ACCEL | c.SENSOR_BATTERY | c.SENSOR_GPS,
                              "capabilities": c.CAP_VIPER | c.CAP_DEEP_SLEEP | c.CAP_PPS | c.CAP_DRONE
                              | c.CAP_RESEND | c.CAP_VEHICLE | c.CAP_UPDATE,
                              "sample_rate_hz": 16000}),
    ("death", c.DEATH, NODE, {"reason": c.DEATH_LOST}),
    ("sleep", c.SLEEP, NODE, {"sleep_s": 600, "reason": 1}),
    ("command", c.COMMAND, NODE, {"command": c.CMD_RESEND, "event_class": 0, "threshold": 0,
                                  "refractory_ms": 0, "boot": 7, "first_seq": 40, "last_seq": 44,
                                  "delay_s": 0}),
    ("ack", c.ACK, NODE, {"boot": 7, "seq": 42}),
    ("state", c.STATE, c.COMMISSION_NODE, {"state": c.ONLINE}),
]
# Values a field's widened raw range allows within version 1 (SPEC.md section 7): an older
# receiver refuses them as out_of_range, this one decodes and encodes them like "valid".
WIDENED = [
    ("heartbeat of a node saving power and degraded (power bits 1 and 2)", c.HEARTBEAT, NODE,
     {"battery_mv": 3480, "temperature_c": -3.5, "uptime_s": 7200, "rssi_dbm": -80, "queue_depth": 256,
      "free_memory": 2048, "detections": 4, "dropped": 12, "reconnects": 9, "refused_commands": 0,
      "radio_ms": 90500, "slept_s": 0, "heartbeat_s": 300, "power": c.POWER_SAVE | c.POWER_DEGRADED}),
]


def golden(frames) -> list:
    out = []
    for name, ftype, node, values in frames:
        key = auth.derive_node_key(MASTER, node)
        data = frame.encode(key, ftype, node, 7, 42, T0, c.CLOCK_GPS_PPS, 3, values)
        out.append({"name": name, "type": ftype, "node": node, "key": key.hex(), "hex": data.hex(),
                    "header": {"boot": 7, "seq": 42, "time_us": T0, "clock_source": c.CLOCK_GPS_PPS,
                               "clock_error_us": 3},
                    "fields": frame.decode(data, key).fields()})
    return out


def build() -> dict:
    vectors = []
    key_of = {}
    for name, ftype, node, values in VALID:
        key = auth.derive_node_key(MASTER, node)
        key_of[node] = key
        data = frame.encode(key, ftype, node, 7, 42, T0, c.CLOCK_GPS_PPS, 3, values)
        vectors.append({"name": name, "type": ftype, "node": node, "key": key.hex(), "hex": data.hex(),
                        "header": {"boot": 7, "seq": 42, "time_us": T0, "clock_source": c.CLOCK_GPS_PPS,
                                   "clock_error_us": 3},
                        "fields": frame.decode(data, key).fields()})
    event = bytes.fromhex(vectors[0]["hex"])
    key = key_of[NODE]

    def retag(body: bytes) -> str:
        return (body + auth.tag(key, body)).hex()

    invalid = [
        ("empty", "", "truncated"),
        ("header only", event[:20].hex(), "truncated"),
        ("version 2", bytes([0x21]) + event[1:], "unknown_version"),
        ("type 15", retag(bytes([0x1F]) + event[1:-8]), "unknown_type"),
        ("event one byte short", event[:-1].hex(), "length"),
        ("event one byte long", (event + b"\x00").hex(), "length"),
        ("flipped payload bit", event[:25] + bytes([event[25] ^ 0x01]) + event[26:], "bad_tag"),
        ("flipped tag bit", event[:-1] + bytes([event[-1] ^ 0x80]), "bad_tag"),
        ("event class 9 (tag valid)", retag(event[:20] + b"\x09" + event[21:-8]), "out_of_range"),
        ("clock source 3 (tag valid)", retag(event[:17] + b"\x03" + event[18:-8]), "out_of_range"),
        ("confidence 101 (tag valid)", retag(event[:21] + b"\x65" + event[22:-8]), "out_of_range"),
        ("seq 0 (tag valid)", retag(event[:5] + bytes(4) + event[9:-8]), "out_of_range"),
    ]
    # Older lengths a type had within version 1 (SPEC.md section 7): decoded, never encoded.
    heartbeat = next(v for v in vectors if v["name"] == "heartbeat")
    body = bytes.fromhex(heartbeat["hex"])[:51 - 8]
    old_fields = {k: v for k, v in heartbeat["fields"].items()
                  if k in [spec[0] for spec in frame.fields(c.HEARTBEAT)][:10]}
    older = [{"name": "heartbeat before the power fields (51 bytes)", "type": c.HEARTBEAT, "node": NODE,
              "key": key.hex(), "hex": retag(body), "fields": old_fields,
              "absent": ["radio_ms", "slept_s", "heartbeat_s", "power"]}]
    return {
        "protocol_version": c.VERSION,
        "master_key": MASTER.hex(),
        "note": "keys are derived from master_key for each node; tags are HMAC-SHA256 truncated to 8 bytes",
        "valid": vectors,
        "older": older,
        "widened": golden(WIDENED),
        "invalid": [{"name": n, "node": NODE, "key": key.hex(),
                     "hex": h if isinstance(h, str) else h.hex(), "error": e} for n, h, e in invalid],
        "rounding": rounding(),
        "replay": REPLAY,
        "downlink": DOWNLINK,
        "commands": commands(key),
        "state": states(),
        "key_files": KEY_FILES,
    }


# SPEC section 2: raw = round(value * scale) in IEEE 754 double, ties to even, for every field
# (scale 1 included); a value whose product lands just below .5 rounds down.
ROUNDING = [
    ("heartbeat", "temperature_c", 0.25, 2), ("heartbeat", "temperature_c", 0.75, 8),
    ("heartbeat", "temperature_c", -0.25, -2), ("heartbeat", "temperature_c", 11.55, 116),
    ("event", "confidence", 0.285, 28), ("event", "confidence", 0.125, 12),
    ("event", "duration_ms", 180.5, 180), ("event", "duration_ms", 181.5, 182),
    ("event", "duration_ms", 2.7, 3), ("event", "peak_db", -12.35, -124),
]


def rounding() -> list[dict]:
    base = {v[0]: v[3] for v in VALID}
    out = []
    for name, field, value, raw in ROUNDING:
        ftype = next(v[1] for v in VALID if v[0] == name)
        data = frame.encode(auth.derive_node_key(MASTER, NODE), ftype, NODE, 7, 42, T0, c.CLOCK_GPS_PPS, 3,
                            {**base[name], field: value})
        got = _raw_field(data, ftype, field)
        assert got == raw, (name, field, value, got, raw)
        out.append({"type": name, "field": field, "value": value, "raw": raw, "hex": data.hex()})
    return out


def _raw_field(data: bytes, ftype: int, field: str) -> int:
    import struct
    offset = c.HEADER_SIZE
    for spec in frame.fields(ftype):
        if spec[0] == field:
            return struct.unpack_from(">" + spec[1], data, offset)[0]
        offset += struct.calcsize(spec[1])
    raise KeyError(field)


# SPEC section 6, one case per rule: uplink frames of node 0x0102 in arrival order, each with
# the verdict a receiver gives (frames that decoded and verified). ["lost", boot, first, last]:
# the receiver gives that range up (after its resend requests); ["ack", boot, seq]: the ack it
# sends now names seq (inclusive: every frame of that boot up to seq is stored).
REPLAY = [
    {"name": "in order, a replay, a gap filled late; the ack is the contiguous prefix, inclusive", "steps": [
        ["event", 1, 1, "accept"], ["event", 1, 2, "accept"], ["ack", 1, 2], ["event", 1, 2, "replay"],
        ["event", 1, 5, "accept"], ["ack", 1, 2], ["event", 1, 3, "accept"], ["ack", 1, 3],
        ["event", 1, 4, "accept"], ["ack", 1, 5], ["event", 1, 4, "replay"]]},
    {"name": "a frame from a range given up as lost is refused as given_up", "steps": [
        ["event", 1, 1, "accept"], ["event", 1, 4, "accept"], ["ack", 1, 1], ["lost", 1, 2, 3],
        ["ack", 1, 4], ["event", 1, 2, "given_up"], ["event", 1, 3, "given_up"], ["event", 1, 5, "accept"]]},
    {"name": "boots: newer accepted, older accepted while fewer than 4 are tracked, then old_boot", "steps": [
        ["event", 5, 1, "accept"], ["event", 3, 1, "accept"], ["event", 6, 1, "accept"],
        ["event", 7, 1, "accept"], ["event", 2, 1, "old_boot"], ["event", 4, 1, "accept"],
        ["event", 3, 2, "old_boot"], ["event", 4, 2, "accept"], ["event", 8, 1, "accept"],
        ["event", 4, 3, "old_boot"]]},
    {"name": "a death is its connection's birth (boot, seq), accepted once", "steps": [
        ["birth", 1, 1, "accept"], ["event", 1, 2, "accept"], ["death", 1, 1, "accept"],
        ["death", 1, 1, "replay"], ["birth", 1, 3, "accept"], ["death", 1, 1, "replay"],
        ["death", 1, 3, "accept"], ["birth", 2, 1, "accept"], ["death", 1, 3, "old_boot"]]},
    {"name": "a death newer than the last birth is accepted; its birth arrives later", "steps": [
        ["birth", 1, 1, "accept"], ["event", 1, 2, "accept"], ["death", 1, 3, "accept"],
        ["birth", 1, 3, "accept"], ["death", 1, 3, "replay"], ["death", 1, 1, "replay"]]},
    {"name": "births out of order: the newest (boot, seq) is the last birth", "steps": [
        ["birth", 1, 7, "accept"], ["birth", 1, 3, "accept"], ["death", 1, 3, "replay"],
        ["death", 1, 7, "accept"], ["ack", 1, 0]]},
]

# SPEC section 6, the node's side: acks and commands share the commission's one downlink
# sequence (boot = the commission's boot counter); each kind is compared with the last one of
# its own kind: a command must be newer than the last command applied (kept in flash), an ack
# newer than the last ack taken (RAM); anything else is refused (command) or ignored (ack).
DOWNLINK = [
    ["ack", 3, 1, "take"], ["command", 3, 2, "apply"], ["ack", 3, 3, "take"], ["command", 3, 2, "refuse"],
    ["ack", 3, 1, "ignore"], ["command", 3, 4, "apply"], ["ack", 3, 3, "ignore"], ["command", 2, 99, "refuse"],
    ["ack", 4, 1, "take"], ["command", 4, 2, "apply"]]


def commands(key: bytes) -> list[dict]:
    """Commands a node must accept: fields a command does not use are ignored, whatever they hold
    (the tag covers them; a sender writes zero)."""
    out = []
    for name, values in (
            ("set_threshold with zero unused fields", {"command": c.CMD_SET_THRESHOLD, "event_class": 1,
                                                       "threshold": 12.5, "refractory_ms": 800, "boot": 0,
                                                       "first_seq": 0, "last_seq": 0, "delay_s": 0}),
            ("set_threshold with non-zero unused fields", {"command": c.CMD_SET_THRESHOLD, "event_class": 1,
                                                           "threshold": 12.5, "refractory_ms": 800, "boot": 7,
                                                           "first_seq": 40, "last_seq": 44, "delay_s": 9})):
        data = frame.encode(key, c.COMMAND, NODE, 3, 2, T0, c.CLOCK_NTP, 1000, values)
        out.append({"name": name, "hex": data.hex(), "applies": {"event_class": 1, "threshold": 12.5,
                                                                 "refractory_ms": 800}})
    return out


def states() -> list[dict]:
    """The commission's state frames of one boot, in the order the broker may deliver them: the
    will (composed at connect, seq 1) comes last when the commission dies after going online."""
    key = auth.derive_node_key(MASTER, c.COMMISSION_NODE)
    out = []
    for seq, state, what in ((2, c.ONLINE, "online after connecting"), (3, c.OFFLINE, "offline, clean stop"),
                             (1, c.OFFLINE, "offline, the will (the broker publishes it on a lost link)")):
        data = frame.encode(key, c.STATE, c.COMMISSION_NODE, 9, seq, T0 + seq, c.CLOCK_NTP, 1000, {"state": state})
        out.append({"what": what, "hex": data.hex(), "boot": 9, "seq": seq, "state": state})
    return out


# SPEC section 4: the master key file.
KEY_FILES = [
    {"text": MASTER.hex() + "\n", "valid": True},
    {"text": MASTER.hex().upper(), "valid": True},
    {"text": MASTER[:16].hex() + "\n", "valid": False},
    {"text": " ".join("%02x" % b for b in MASTER) + "\n", "valid": False},
    {"text": (MASTER + b"\0").hex() + "\n", "valid": False},
]


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m lwtools.make_vectors",
                            description="write %s: golden frames for every type and invalid frames" % OUT.name
                            ).parse_args(argv)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
