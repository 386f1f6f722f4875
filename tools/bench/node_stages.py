"""Live heap of the node firmware at each stage of its boot, then over 20 s of audio.

The node_memory benchmark's peak varies ~3 KB from run to run (where a quiet point falls
against the uplink's reconnect loop); these figures do not: the unix build at
`-X heapsize=1M` (no fragmentation), gc.collect() then gc.mem_alloc() after each step of
`lwnode.boot.start`, the interned names (qstrs) and their pools at the end.
`python -m lwtools.bench.node_stages`
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from linewatch.testing import micropython as mp
from lwtools.bench.node_memory import sample_file, write_config
from lwtools.build import build

# boot.start() step by step (keep in step with firmware/boot.py)
STAGED = """
import gc, sys, micropython
try:
    import asyncio
except ImportError:
    import uasyncio as asyncio
def stage(name):
    gc.collect()
    print("STAGE %-34s %7d" % (name, gc.mem_alloc()))
stage("interpreter + asyncio")
from lwnode import boot
stage("lwnode.boot imported")
cfg, board, number = boot.boot(sys.argv[1])
stage("config, board, boot counter")
boot.unload("config", "bootcount")
stage("config/bootcount unloaded")
import lwnode.store
stage("store imported")
from lwnode.store import FrameQueue
queue = FrameQueue("%s/queue" % board.storage_dir().rstrip("/"), cfg.queue["records"])
boot.unload("storeload")
stage("queue made")
import lwnode.detector
stage("detector chain imported")
detector = lwnode.detector.DetectorChain(cfg.audio["rate_hz"], cfg.audio["block"])
boot.unload("dronesetup")
stage("detector chain made")
import lwnode.mqtt
stage("mqtt imported")
from lwnode.node import Node
stage("node imported")
node = Node(cfg, board, number, queue, detector)
ok, line = boot.self_test(node)
boot.unload("boot")
del boot
stage("Node made, boot unloaded")
asyncio.run(node.run())
stage("end of the run")
print("PEAK", node.heap_peak)
micropython.qstr_info()
"""


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m lwtools.bench.node_stages",
                            description="the node's live heap at each step of its boot, then over 20 s of audio"
                            ).parse_args(argv)
    try:
        mp.find_micropython()
    except mp.MicroPythonMissing as exc:
        print("node_stages: %s" % exc)
        return 1
    with tempfile.TemporaryDirectory(prefix="lw-node-stages-") as tmp:
        work = Path(tmp)
        build_dir = work / "build"
        build("unix", build_dir, progress=lambda line: None)
        sample_file(work / "audio.raw")
        write_config(work, "flash", 1)
        script = work / "staged.py"
        script.write_text(STAGED)
        result = subprocess.run(mp.command(script, str(work / "config.json"), heap="1M"),
                                capture_output=True, text=True, timeout=300,
                                env=mp.environment(build_dir / "lib"))
    lines = (result.stdout + result.stderr).splitlines()
    for line in lines:
        if line.startswith(("STAGE ", "PEAK ", "qstr pool")):
            print(line.replace("STAGE ", ""))
    if result.returncode != 0:
        print("node_stages: the run failed: %s" % (lines[-1] if lines else "?"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
