# Checks protocol/vectors/v1.json against lwproto; runs unchanged under CPython and
# MicroPython (the test suite runs it on both). Prints one line per failure, then a summary.
import json
import sys

from lwproto import frame, hostauth
from lwproto.errors import ProtocolError


def close(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) < 1e-6
    return a == b


def check(vectors):
    failures = []
    master = bytes.fromhex(vectors["master_key"])
    for v in vectors["valid"]:
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
    for v in vectors["invalid"]:
        try:
            frame.decode(bytes.fromhex(v["hex"]), bytes.fromhex(v["key"]))
            failures.append("%s: decoded, expected %s" % (v["name"], v["error"]))
        except ProtocolError as exc:
            if exc.reason != v["error"]:
                failures.append("%s: error %s (%s), expected %s" % (v["name"], exc.reason, exc, v["error"]))
    return failures


def main(path):
    with open(path) as f:
        vectors = json.load(f)
    failures = check(vectors)
    for line in failures:
        print("FAIL", line)
    print("checked %d valid and %d invalid vectors, %d failures"
          % (len(vectors["valid"]), len(vectors["invalid"]), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
