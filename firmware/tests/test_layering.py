"""Nothing above firmware/hal/ may import machine or network (DESIGN.md: boards live in hal)."""
import ast
import pathlib

FIRMWARE = pathlib.Path(__file__).resolve().parents[1]
HARDWARE_MODULES = {"machine", "network", "esp32", "rp2", "esp", "ntptime", "bluetooth"}


def hardware_imports(source, filename):
    """(line, module) for each import of a hardware module, wherever it sits in the file."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in HARDWARE_MODULES:
                found.append((node.lineno, name))
    return found


def test_the_scanner_sees_every_form_of_import():
    source = ("import os\nimport machine\nfrom network import WLAN\n"
              "def f():\n    import esp32 as chip\n    from . import machine\n")
    assert hardware_imports(source, "x.py") == [(2, "machine"), (3, "network"), (5, "esp32")]


def test_board_independent_firmware_imports_no_hardware():
    modules = sorted(FIRMWARE.glob("*.py"))
    assert modules, "no firmware modules found next to tests/"
    offenders = []
    for path in modules:
        for line, name in hardware_imports(path.read_text(), str(path)):
            offenders.append("%s:%d imports %s" % (path.name, line, name))
    assert not offenders, ("move board access into firmware/hal/: " + "; ".join(offenders))
