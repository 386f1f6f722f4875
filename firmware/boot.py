# The node's boot: main.py (the board's entry, kept tiny because a board compiles it from
# source into RAM) calls start(), which returns the node that passed its self-test and unloads
# this module: its code is needed once per boot, and RAM is the board's scarcest resource.
#
# Order: config (a bad one stops here with one clear line), board, boot counter, node,
# self-test line. The config checks and the boot counter are unloaded before the node's code
# comes in.
import gc
import sys

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_FAULT_BLINK_MS = const(100)


def board_module(name):
    """hal module for a config "board" value, or from the platform when it is not set."""
    if name is None:
        name = {"esp32": "esp32", "rp2": "rp2"}.get(sys.platform)
        if name is None:
            name = "unix" if sys.implementation.name == "micropython" else "sim"
    if name == "esp32":
        from lwnode.hal import esp32
        return esp32
    if name == "rp2":
        from lwnode.hal import rp2
        return rp2
    if name == "unix":
        from lwnode.hal import unix
        return unix
    from lwnode.hal import sim
    return sim


def fault(message, board=None):
    """Stop with the reason on the console and a fast LED blink; never a traceback loop.
    Virtual boards have no LED to watch: they exit with status 2 instead."""
    print(message)
    if board is None or board.name in ("unix", "sim"):
        sys.exit(2)
    import time
    on = True
    while True:
        board.led(on)
        on = not on
        time.sleep_ms(_FAULT_BLINK_MS)


def _boot_counter(board):
    from lwnode import bootcount
    path = "%s/bootcount" % board.storage_dir().rstrip("/")
    boot, note = bootcount.bump(path)
    if note:
        board.log("boot counter: %s" % note)
    return boot


def unload(*names):
    """Forget boot-only lwnode modules so a collection frees their code."""
    import lwnode
    for name in names:
        sys.modules.pop("lwnode." + name, None)
        try:
            delattr(lwnode, name)
        except AttributeError:
            pass
    gc.collect()


def boot(config_path):
    """(config, board, boot number); stops with a clear line when any of them fails."""
    from lwnode import config
    try:
        cfg = config.load(config_path)
    except config.ConfigError as exc:
        fault(str(exc), _fault_board())
    try:
        board = board_module(cfg.board).Board(cfg)
    except Exception as exc:   # a missing sensor or bad pin: say which, do not loop
        fault("linewatch node %s: board %s failed to start: %r"
              % (cfg.name(), cfg.board or sys.platform, exc), _fault_board())
    return cfg, board, _boot_counter(board)


def buffers(cfg, board):
    """The node's durable queue and detector chain (Node makes them itself when not given)."""
    from lwnode.store import FrameQueue
    queue = FrameQueue("%s/queue" % board.storage_dir().rstrip("/"), cfg.queue["records"])
    from lwnode.detector import DetectorChain
    return queue, DetectorChain(cfg.audio["rate_hz"], cfg.audio["block"])


def start(config_path="config.json"):
    """The node, booted and self-tested (main.py runs it); stops with a clear line if not."""
    cfg, board, boot_number = boot(config_path)
    unload("config", "bootcount")
    try:
        # the long-lived buffers first, while the heap is still in one piece: loading code
        # leaves small holes that a 1 KB array may not fit in afterwards
        queue, detector = buffers(cfg, board)
        from lwnode.node import Node
        node = Node(cfg, board, boot_number, queue, detector)
    except Exception as exc:
        fault("linewatch node %s self-test FAILED: %r" % (cfg.name(), exc), board)
    ok, line = node.self_test()
    print(line)
    if not ok:
        fault(line, board)
    unload("boot")
    return node


class _Led:
    """A board's LED without its config: the fault blink of a node that cannot read one."""
    name = "led"

    def __init__(self, pin):
        self.pin = pin

    def led(self, on):
        self.pin.value(1 if on else 0)


def _fault_board():
    from lwnode.hal import status_led
    pin = status_led()
    return _Led(pin) if pin is not None else None

