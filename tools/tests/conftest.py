"""The virtual board for the flash tests: the MicroPython unix port behind a pseudo-terminal
(`socat`), driven by the real `mpremote` like a board on a serial port. Its filesystem is a
temporary folder (the interpreter's working folder); MICROPYPATH points at its lib/, like a
board's /lib. Always torn down, by the process group this fixture started."""
from __future__ import annotations

import shutil

import pytest

from lwtools.virtual_board import VirtualBoard


@pytest.fixture
def virtual_board_with_heap(tmp_path, micropython):
    """A factory: `virtual_board_with_heap("256K")` -> a started VirtualBoard, stopped afterwards."""
    if not shutil.which("socat"):
        pytest.skip("socat not installed (tools/setup.sh test installs it)")
    boards: list[VirtualBoard] = []

    def make(heap: str = "2M") -> VirtualBoard:
        board = VirtualBoard(tmp_path / ("board-%d" % len(boards) if boards else "board"), heap,
                             micropython.find_micropython())
        boards.append(board)
        return board.start()

    try:
        yield make
    finally:
        for board in boards:
            board.stop()


@pytest.fixture
def virtual_board(virtual_board_with_heap):
    return virtual_board_with_heap()
