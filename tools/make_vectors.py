"""Write protocol/vectors/v1.json: golden frames for every type and invalid frames.

Run once when the protocol changes (`python -m lwtools.make_vectors`); the tests then hold
every implementation, CPython and MicroPython, to these exact bytes.
"""
from __future__ import annotations

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
                                      "refused_commands": 1}),
    ("birth", c.BIRTH, NODE, {"fw_major": 0, "fw_minor": 1, "fw_patch": 0, "board": 1, "segment": 3,
                              "lat": 48.0123456, "lon": 37.7654321, "alt_m": 182, "position_error_m": 4,
                              "sensors": c.SENSOR_MIC | c.SENSOR_ACCEL | c.SENSOR_BATTERY | c.SENSOR_GPS,
                              "capabilities": c.CAP_VIPER | c.CAP_PPS | c.CAP_DRONE | c.CAP_RESEND,
                              "sample_rate_hz": 16000}),
    ("death", c.DEATH, NODE, {"reason": c.DEATH_LOST}),
    ("sleep", c.SLEEP, NODE, {"sleep_s": 600, "reason": 1}),
    ("command", c.COMMAND, NODE, {"command": c.CMD_RESEND, "event_class": 0, "threshold": 0,
                                  "refractory_ms": 0, "boot": 7, "first_seq": 40, "last_seq": 44,
                                  "delay_s": 0}),
    ("ack", c.ACK, NODE, {"boot": 7, "seq": 42}),
    ("state", c.STATE, c.COMMISSION_NODE, {"state": c.ONLINE}),
]


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
    ]
    return {
        "protocol_version": c.VERSION,
        "master_key": MASTER.hex(),
        "note": "keys are derived from master_key for each node; tags are HMAC-SHA256 truncated to 8 bytes",
        "valid": vectors,
        "invalid": [{"name": n, "node": NODE, "key": key.hex(),
                     "hex": h if isinstance(h, str) else h.hex(), "error": e} for n, h, e in invalid],
    }


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
