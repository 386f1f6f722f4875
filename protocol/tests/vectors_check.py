# Checks protocol/vectors/v1.json against lwproto; runs unchanged under CPython and
# MicroPython (the test suite runs it on both). Prints one line per failure, then a summary.
import json
import struct
import sys

from lwproto import const, frame, hostauth, replay
from lwproto.errors import ProtocolError

KINDS = {"event": const.EVENT, "birth": const.BIRTH, "death": const.DEATH, "heartbeat": const.HEARTBEAT}


def close(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) < 1e-6
    return a == b


def check(vectors):
    failures = []
    master = bytes.fromhex(vectors["master_key"])
    for v in vectors["valid"] + vectors.get("widened", []):
        key = bytes.fromhex(v["key"])
        if hostauth.derive_node_key(master, v["node"]) != key:
            failures.append("%s: derived key differs" % v["name"])
        data = bytes.fromhex(v["hex"])
        got = frame.decode(data, key)
        h = v["header"]
        if (got.ftype, got.node, got.boot, got.seq, got.time_us, got.clock_source, got.clock_error_us) != (
                v["type"], v["node"], h["boot"], h["seq"], h["time_us"], h["clock_source"], h["clock_error_us"]):
            failures.append("%s: header decoded differently" % v["name"])
        fields = got.fields()
        for name in v["fields"]:
            if not close(fields[name], v["fields"][name]):
                failures.append("%s: field %s is %r, vector says %r" % (v["name"], name, fields[name], v["fields"][name]))
        again = frame.encode(key, v["type"], v["node"], h["boot"], h["seq"], h["time_us"],
                             h["clock_source"], h["clock_error_us"], v["fields"])
        if again != data:
            failures.append("%s: encodes to %s" % (v["name"], again.hex()))
    for v in vectors.get("older", ()):
        got = frame.decode(bytes.fromhex(v["hex"]), bytes.fromhex(v["key"]))
        fields = got.fields()
        for name in v["fields"]:
            if not close(fields.get(name), v["fields"][name]):
                failures.append("%s: field %s is %r, vector says %r" % (v["name"], name, fields.get(name), v["fields"][name]))
        for name in v["absent"]:
            if name in fields:
                failures.append("%s: field %s should be absent" % (v["name"], name))
    for v in vectors["invalid"]:
        try:
            frame.decode(bytes.fromhex(v["hex"]), bytes.fromhex(v["key"]))
            failures.append("%s: decoded, expected %s" % (v["name"], v["error"]))
        except ProtocolError as exc:
            if exc.reason != v["error"]:
                failures.append("%s: error %s (%s), expected %s" % (v["name"], exc.reason, exc, v["error"]))
    for name in ("rounding", "replay", "downlink", "commands", "state"):
        failures += CHECKS[name](vectors, vectors[name])
    return failures


def raw_field(data, ftype, field):
    offset = const.HEADER_SIZE
    for spec in frame.fields(ftype):
        if spec[0] == field:
            return struct.unpack_from(">" + spec[1], data, offset)[0]
        offset += struct.calcsize(spec[1])
    raise KeyError(field)


def check_rounding(vectors, cases):
    failures = []
    valid = dict((v["name"], v) for v in vectors["valid"])
    for r in cases:
        v = valid[r["type"]]
        h = v["header"]
        values = dict(v["fields"])
        values[r["field"]] = r["value"]
        data = frame.encode(bytes.fromhex(v["key"]), v["type"], v["node"], h["boot"], h["seq"], h["time_us"],
                            h["clock_source"], h["clock_error_us"], values)
        got = raw_field(data, v["type"], r["field"])
        if got != r["raw"] or data.hex() != r["hex"]:
            failures.append("rounding %s=%r: raw %d, vector says %d" % (r["field"], r["value"], got, r["raw"]))
    return failures


def check_replay(vectors, cases):
    failures = []
    for case in cases:
        guard = replay.ReplayGuard(4)
        for i, step in enumerate(case["steps"]):
            kind = step[0]
            if kind == "lost":
                guard.forget(0x0102, step[1], step[2], step[3])
                continue
            if kind == "ack":
                got = guard.contiguous(0x0102, step[1])
                want = step[2]
            else:
                got = guard.admit_frame(0x0102, KINDS[kind], step[1], step[2])[0]
                want = step[3]
            if got != want:
                failures.append("replay %r step %d %r: got %r" % (case["name"], i, step, got))
    return failures


def check_downlink(vectors, steps):
    # the node's rule: each kind against the last of its own kind, boot first, then seq
    failures = []
    last = {"ack": (0, 0), "command": (0, 0)}
    for i, (kind, boot, seq, want) in enumerate(steps):
        ok = replay.newer(boot, seq, last[kind][0], last[kind][1])
        if ok:
            last[kind] = (boot, seq)
        got = ("take" if kind == "ack" else "apply") if ok else ("ignore" if kind == "ack" else "refuse")
        if got != want:
            failures.append("downlink step %d %r: %s" % (i, [kind, boot, seq, want], got))
    return failures


def check_commands(vectors, cases):
    failures = []
    key = bytes.fromhex(vectors["valid"][0]["key"])
    for case in cases:
        fields = frame.decode(bytes.fromhex(case["hex"]), key).fields()
        for name in case["applies"]:
            if fields[name] != case["applies"][name]:
                failures.append("command %r: %s is %r" % (case["name"], name, fields[name]))
    return failures


def check_state(vectors, cases):
    failures = []
    key = hostauth.derive_node_key(bytes.fromhex(vectors["master_key"]), 0)
    for case in cases:
        f = frame.decode(bytes.fromhex(case["hex"]), key)
        if (f.node, f.boot, f.seq, f.field("state")) != (0, case["boot"], case["seq"], case["state"]):
            failures.append("state %r decoded differently" % case["what"])
    return failures


CHECKS = {"rounding": check_rounding, "replay": check_replay, "downlink": check_downlink,
          "commands": check_commands, "state": check_state}


def main(path):
    with open(path) as f:
        vectors = json.load(f)
    failures = check(vectors)
    for line in failures:
        print("FAIL", line)
    print("checked %d valid and %d invalid vectors, %d rounding, %d replay cases, %d downlink steps,"
          " %d failures" % (len(vectors["valid"]), len(vectors["invalid"]), len(vectors["rounding"]),
                            len(vectors["replay"]), len(vectors["downlink"]), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
