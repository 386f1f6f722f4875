"""The board's console over serial (pyserial): reset the board and read it line by line.

A Pico W's USB serial port vanishes while the board reboots and comes back under the same
name; the reader keeps trying to open it until its deadline.
"""
from __future__ import annotations

import time
from typing import Iterator


class SerialConsole:
    def __init__(self, port: str, baudrate: int = 115200):
        self.port = port
        self.baudrate = baudrate

    def lines(self, timeout: float, start: bytes = b"") -> Iterator[str | None]:
        """Console lines until `timeout`; None about once a second while the board is silent.
        `start` is typed first on the same connection (the reset): opening a port discards
        what the board printed before, so the reset must come after the console is open."""
        import serial
        deadline = time.monotonic() + timeout
        link = None
        while link is None:
            try:
                link = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=1.0)
            except (serial.SerialException, OSError):
                if time.monotonic() > deadline:
                    raise
                yield None
                time.sleep(0.5)
        pending = b""
        if start:
            link.write(start)
            link.flush()
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = link.read(link.in_waiting or 1)
                except (serial.SerialException, OSError):
                    yield None       # the port went away during the reset; it comes back
                    link.close()
                    link = self._reopen(deadline)
                    continue
                if not chunk:
                    yield None
                    continue
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    yield line.rstrip(b"\r").decode("utf-8", "replace")
        finally:
            if link is not None:
                link.close()

    def _reopen(self, deadline: float):
        import serial
        while True:
            try:
                return serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=1.0)
            except (serial.SerialException, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
