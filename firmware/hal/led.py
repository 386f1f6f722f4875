# The board's LED before any config is read: the fault blink of a node that cannot read one
# (lwnode.fault, the only user; loaded only when the boot fails).
import sys


class StatusLed:
    """Just enough of a board for the fault blink."""
    name = "led"

    def __init__(self, pin):
        self.pin = pin

    def led(self, on):
        self.pin.value(1 if on else 0)


def find():
    """The board's LED, or None off-board."""
    if sys.platform not in ("esp32", "rp2"):
        return None
    try:
        import machine
        return StatusLed(machine.Pin("LED" if sys.platform == "rp2" else 2, machine.Pin.OUT))
    except Exception:   # no such pin on this board variant: the console line must do
        return None
