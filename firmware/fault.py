# A node that cannot start stops with the reason on the console and a fast LED blink, never a
# traceback loop. Virtual boards have no LED to watch: they exit with status 2 instead.
# Loaded only when the boot fails (with hal/led.py): every name a loaded module holds stays
# interned in RAM for good (firmware/README.md "Memory").
import sys

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_BLINK_MS = const(100)


def stop(message, board=None):
    """Print `message` and never return: blink `board`'s LED (or, with no board, the LED a
    board has before any config is read), or exit 2 where there is none to blink."""
    print(message)
    import os
    try:
        os.stat("fw/trying fw/next".split()[0])   # a build on trial that cannot start: back to the last
        if board is not None:
            print("update: the build on trial failed; rebooting into the previous build")
            board.reset()
    except OSError:
        pass
    if board is None:
        from .hal import led
        board = led.find()
    if board is None or board.name in ("unix", "sim"):
        sys.exit(2)
    import time
    on = True
    while True:
        board.led(on)
        on = not on
        time.sleep_ms(_BLINK_MS)
