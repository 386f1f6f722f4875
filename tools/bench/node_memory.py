"""Peak heap of the node firmware on the MicroPython unix port: 10 minutes of simulated audio.

Runs the `unix` build (the same .mpy files a board gets) on a fast-playing sample file with
impulses, no broker reachable (the queue fills as in an outage), and prints, side by side:
the heap the code takes once imported, the peak live heap at quiet points (after gc.collect),
and for each heap size tried whether the 10 minutes ran without a MemoryError.
Goal (issue 3): peak < 64 KB with a 128 KB heap. `python -m lwtools.bench.node_memory`
"""
from __future__ import annotations

import json
import math
import random
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from linewatch.testing import micropython as mp
from lwtools.build import build

RATE = 16000
HEAPS = ("128K", "144K", "160K", "192K")
CODE_PROBE = """
import gc
gc.collect(); base = gc.mem_alloc()
from lwnode import config, node, bootcount, store, detector, mqtt, clock
from lwnode.hal import unix
gc.collect(); print("CODE", gc.mem_alloc() - base)
"""


def sample_file(path: Path, seconds: int = 20) -> None:
    rnd = random.Random(7)
    n = seconds * RATE
    samples = [int(rnd.gauss(0, 60)) for _ in range(n)]
    for at in (5.0, 12.0):
        k = int(at * RATE)
        for i in range(2400):
            samples[k + i] += int(22000 * math.exp(-i / 500) * math.sin(2 * math.pi * 150 * i / RATE))
    path.write_bytes(struct.pack("<%dh" % n, *(max(-32768, min(32767, s)) for s in samples)))


def write_config(work: Path, storage: str, plays: int) -> Path:
    """The node's config for these benches: no broker reachable (port 9), so the queue fills
    as in an outage; the sample file played `plays` times as fast as the node takes it."""
    cfg = {"node": 0x0102, "segment": 3, "key": "ab" * 32, "board": "unix",
           "position": {"lat": 48.0, "lon": 37.7}, "broker": {"host": "127.0.0.1", "port": 9},
           "heartbeat_s": 10, "storage": str(work / storage),
           "feed": {"audio": str(work / "audio.raw"), "realtime": False, "plays": plays,
                    "exit_at_end": True}}
    path = work / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def run(build_dir: Path, work: Path, heap: str, minutes: int = 10) -> str:
    write_config(work, "flash-" + heap, minutes * 3)
    result = subprocess.run(mp.command(build_dir / "main.py", str(work / "config.json"), heap=heap),
                            capture_output=True, text=True, timeout=600,
                            env=mp.environment(build_dir / "lib"))
    out = result.stdout + result.stderr
    ended = re.search(r"audio feed ended after \d+ samples \((\d+) s\); heap peak (\d+)", out)
    if "MemoryError" in out or not ended:
        return "%-6s  failed: %s" % (heap, (out.strip().splitlines() or ["?"])[-1][:90])
    return "%-6s  ran %s s of audio, peak live heap %6d bytes (%.0f KB)" % (
        heap, ended.group(1), int(ended.group(2)), int(ended.group(2)) / 1024)


def main() -> int:
    try:
        mp.find_micropython()
    except mp.MicroPythonMissing as exc:
        print("node_memory: %s" % exc)
        return 1
    with tempfile.TemporaryDirectory(prefix="lw-node-memory-") as tmp:
        work = Path(tmp)
        build_dir = work / "build"
        build("unix", build_dir, progress=lambda line: None)
        sample_file(work / "audio.raw")
        probe = work / "probe.py"
        probe.write_text(CODE_PROBE)
        code = subprocess.run(mp.command(probe, heap="1M"), capture_output=True, text=True,
                              env=mp.environment(build_dir / "lib"), timeout=60).stdout.strip()
        print("node memory on the MicroPython unix port (64-bit), 10 min of 16 kHz audio, broker down")
        print("code once imported: %s bytes" % code.replace("CODE ", ""))
        for heap in sys.argv[1:] or HEAPS:      # heap sizes to try: all of HEAPS by default
            print(run(build_dir, work, heap))
    print("goal: peak < 64 KB within a 128 KB heap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
