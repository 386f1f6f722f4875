# The node's entry: the board's /main.py (copied as source by `linewatch build`; everything it
# imports is compiled under /lib/lwnode and /lib/lwproto). On the unix port:
#     micropython -X heapsize=128K main.py path/to/config.json
# Kept to a few lines: a board compiles this file from source and its code stays in RAM while
# the node runs, so the boot lives in lwnode.boot, which unloads itself once the node is made.
import sys

try:
    import asyncio
except ImportError:  # MicroPython builds before asyncio was renamed
    import uasyncio as asyncio

from lwnode import boot

node = boot.start(sys.argv[1] if len(sys.argv) > 1 else "config.json")
del boot
asyncio.run(node.run())
