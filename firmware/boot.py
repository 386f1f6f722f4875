# The node's boot: main.py (the board's entry, kept tiny because a board compiles it from
# source into RAM) calls start(), which returns the node that passed its self-test and unloads
# this module: its code is needed once per boot, and RAM is the board's scarcest resource.
# Its names stay interned for good (firmware/README.md "Memory"), so its steps are few
# functions, and a failed boot's LED blink is in lwnode.fault, loaded only then.
#
# Order: config (a bad one stops here with one clear line), board, boot counter, node,
# self-test line. The config checks and the boot counter are unloaded before the node's code
# comes in.
import gc
import sys


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


def unload(*names):
    """Forget boot-only lwnode modules so a collection frees their code."""
    from lwnode import unload
    for name in names:
        unload(name)
    gc.collect()


def boot(config_path):
    """(config, board, boot number); stops with a clear line when any of them fails."""
    from lwnode import config
    try:
        cfg = config.load(config_path)
    except config.ConfigError as exc:
        from lwnode import fault
        fault.stop(str(exc))
    try:
        board = board_module(cfg.board).Board(cfg)
    except Exception as exc:   # a missing sensor or bad pin: say which, do not loop
        from lwnode import fault
        fault.stop("linewatch node %s: board %s failed to start: %r"
                   % (cfg.name(), cfg.board or sys.platform, exc))
    from lwnode import bootcount
    number, note = bootcount.bump("%s/bootcount" % board.storage_dir().rstrip("/"))
    if note:
        board.log("boot counter: %s" % note)
    return cfg, board, number


def start(config_path="config.json"):
    """The node, booted and self-tested (main.py runs it); stops with a clear line if not.

    First the build of this boot (firmware/README.md "Updates over the air"), chosen by the
    factory build's boot (/lib goes first until then): a trial left over from the last boot
    (fw/trying: it never committed) is dropped (fw/failed), a staged build (fw/next) is tried
    once, else the committed one (fw/current) runs; that build's own boot then starts the
    node. Here and not in main.py: a board compiles main.py from source and keeps its code
    in RAM while the node runs, this module leaves RAM once the node is made."""
    import os
    fw = "fw/trying fw/failed fw/next fw/current".split()   # one text: no interned names
    if not sys.path[0].startswith("fw/"):
        for old, new in ((fw[0], fw[1]), (fw[2], fw[0])):
            try:
                os.stat(old)
                try:
                    os.remove(new)   # FAT's rename does not replace
                except OSError:
                    pass
                os.rename(old, new)
            except OSError:
                pass
        for name in (fw[0], fw[3]):
            try:
                with open(name) as f:
                    sys.path.insert(0, f.read().strip() + "/lib")
            except OSError:
                continue
            sys.modules.pop("lwnode.boot")   # this boot and its package leave for the build's
            sys.modules.pop("lwnode")
            from lwnode import boot as chosen
            return chosen.start(config_path)
    cfg, board, number = boot(config_path)
    unload("config", "bootcount")
    try:
        # the long-lived buffers first (the durable queue, the detector chain), while the heap
        # is still in one piece: loading code leaves small holes that a 1 KB array may not fit
        # in afterwards
        from lwnode.store import FrameQueue
        queue = FrameQueue("%s/queue" % board.storage_dir().rstrip("/"), cfg.queue["records"])
        unload("storeload")
        from lwnode.detector import DetectorChain
        detector = DetectorChain(cfg.audio["rate_hz"], cfg.audio["block"])
        unload("dronesetup")
        from lwnode.node import Node
        node = Node(cfg, board, number, queue, detector)
    except Exception as exc:
        from lwnode import fault
        fault.stop("linewatch node %s self-test FAILED: %r" % (cfg.name(), exc), board)
    trying, failed = fw[0], fw[1]
    try:
        os.stat(trying)              # a staged build is booted once: this one is on trial
        node._power[7] = 0
    except OSError:
        pass
    try:
        with open(failed) as f:
            board.log("update: the build in %s failed its trial; running the previous build"
                      % f.read().strip())
        os.remove(failed)
    except OSError:
        pass
    ok, line = self_test(node)
    print(line)
    if not ok:
        from lwnode import fault
        fault.stop(line, board)
    unload("boot")
    return node


def self_test(node):
    """(ok, line): the console line the flash tool and the hil tests wait for. Here, not in
    Node: it runs once per boot, and this module leaves RAM afterwards (the emulator's virtual
    nodes call it too)."""
    from lwproto import const as c
    from lwproto import frame
    from lwproto.version import RELEASE
    cfg = node.config
    board = node.board
    name = "linewatch node %s" % cfg.name()
    # the deep sleep this boot woke from (node.sleep() left a record: when it began, how long)
    import os
    path = "%s/%s" % (node.storage.rstrip("/"), "sleep")
    try:
        with open(path) as f:
            began, planned = [int(v) for v in f.read().split()]
        os.remove(path)
        now = node.clock.now_us() // 1000000
        node._power[1] = now - began if node.clock.quality()[0] and now > began else planned
    except (OSError, ValueError):
        pass
    try:
        probe = frame.encode(node.key, c.DEATH, cfg.node, node.boot, 1, 0, 0, 0, (c.DEATH_LOST,))
        frame.decode(probe, node.key)
    except Exception as exc:
        return False, "%s self-test FAILED: frame authentication: %r" % (name, exc)
    try:
        board.mic_start(node.rate, cfg.audio["block"])
    except Exception as exc:
        return False, "%s self-test FAILED: microphone: %r" % (name, exc)
    try:
        accel = board.accel_read()
    except Exception as exc:
        return False, "%s self-test FAILED: accelerometer: %r" % (name, exc)
    source, error_us = node.clock.quality()
    return True, ("%s self-test ok (board %s, fw %s, boot %d, %d Hz, accel %s, queue %d/%d, "
                  "clock %s +-%d us)" % (name, board.name, RELEASE, node.boot, node.rate,
                                         "yes" if accel is not None else "no", node.queue.depth,
                                         cfg.queue["records"], c.CLOCK_NAMES[source], error_us))
