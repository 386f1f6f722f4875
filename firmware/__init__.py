# lwnode: the node firmware (firmware/README.md).


def unload(name):
    """Forget the module lwnode.<name> so a collection frees its code: rare work (the boot, a
    command, deep sleep, a connect) is loaded for its call only. Its names stay interned."""
    import sys
    sys.modules.pop("lwnode." + name, None)
    globals().pop(name, None)
