"""`linewatch virtual-board FOLDER`: a virtual board to flash, until Ctrl-C (or SIGTERM)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

HEAP = "192K"


def register(sub) -> None:
    p = sub.add_parser("virtual-board",
                       help="run the MicroPython unix port behind a pseudo-terminal, a board to flash with"
                            " `linewatch flash --port FOLDER/tty --virtual` (needs the test extra and socat)")
    p.add_argument("folder", type=Path, help="the board's folder: FOLDER/tty is its serial port, FOLDER/fs its"
                                             " filesystem (created if missing)")
    p.add_argument("--heap", default=HEAP, help="MicroPython heap (default %s: a node over TLS needs ~160K, plus"
                                                 " what the REPL that flash drives keeps)" % HEAP)
    p.set_defaults(func=run)


def run(args) -> int:
    from lwtools.virtual_board import BoardError, MicroPythonMissing, VirtualBoard
    try:
        board = VirtualBoard(args.folder, args.heap).start()
    except (BoardError, MicroPythonMissing, OSError) as exc:
        print(f"linewatch virtual-board: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"virtual board on {board.port} (filesystem {board.fs}, heap {args.heap});"
              " Ctrl-C stops it", flush=True)
        while board.alive():
            time.sleep(0.5)
        print("linewatch virtual-board: the unix port ended (the firmware exited?)", file=sys.stderr)
        return 1
    finally:
        board.stop()
