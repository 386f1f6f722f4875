"""Frame sizes: every v1 frame type next to the same content as JSON.

Run: python -m lwtools.bench.frame_sizes [--markdown]
The table in protocol/SPEC.md is this script's --markdown output.
"""
from __future__ import annotations

import argparse
import json

from lwproto import const as c, frame, topic
from lwtools.make_vectors import MASTER, build


def as_json(vector: dict) -> bytes:
    """The same content a JSON report would carry (names spelled out, tag as hex)."""
    h = vector["header"]
    content = {"version": 1, "type": vector["name"], "node": "%04x" % vector["node"],
               "boot": h["boot"], "seq": h["seq"], "time_us": h["time_us"],
               "clock_source": c.CLOCK_NAMES[h["clock_source"]], "clock_error_us": h["clock_error_us"],
               **vector["fields"], "tag": vector["hex"][-16:]}
    return json.dumps(content, separators=(",", ":")).encode()


def mqtt_publish_size(topic_name: str, payload_len: int, qos: int = 1) -> int:
    body = 2 + len(topic_name) + (2 if qos else 0) + payload_len
    return 1 + (1 if body < 128 else 2) + body


def rows() -> list[tuple[str, int, int, int, int]]:
    out = []
    for v in build()["valid"]:
        data = bytes.fromhex(v["hex"])
        ftype = v["type"]
        name = (topic.COMMISSION_STATE if ftype == c.STATE
                else topic.downlink(3, v["node"]) if ftype in c.DOWNLINK_TYPES
                else topic.uplink(3, v["node"], ftype))
        js = as_json(v)
        out.append((v["name"], len(data), len(js), mqtt_publish_size(name, len(data)),
                    mqtt_publish_size(name, len(js))))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    assert frame.SIZES[c.EVENT] <= 48, "event frame over its 48-byte budget"
    if args.markdown:
        print("| frame | binary bytes | JSON bytes | JSON/binary | MQTT QoS 1 packet, binary | MQTT QoS 1 packet, JSON |")
        print("|---|---|---|---|---|---|")
        for name, b, j, mb, mj in rows():
            print(f"| {name} | {b} | {j} | {j / b:.1f}x | {mb} | {mj} |")
    else:
        print(f"{'frame':<10} {'binary':>7} {'json':>6} {'ratio':>6} {'mqtt(bin)':>10} {'mqtt(json)':>11}")
        for name, b, j, mb, mj in rows():
            print(f"{name:<10} {b:>7} {j:>6} {j / b:>5.1f}x {mb:>10} {mj:>11}")
    print(f"\nevent frame {frame.SIZES[c.EVENT]} bytes with its {c.TAG_SIZE}-byte tag "
          f"(budget 48; LoRaWAN DR0 payload 51). Master key for the example: {MASTER.hex()[:8]}...")


if __name__ == "__main__":
    main()
