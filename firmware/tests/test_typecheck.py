"""mypy checks the firmware against the MicroPython stubs: each board's hal against its own
stubs, the board-independent firmware and protocol against the ESP32 ones."""
import collections
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STUBS = ROOT / ".venv" / "stubs"
CONFIG = ROOT / "firmware" / "mypy.ini"
# hal modules that only the boards run, and what each board module pulls in
BOARD_SHARED = ("mcu", "i2s_mic", "wifi", "gps", "accel", "mpu6050", "adxl345", "pins", "sntp")
NOT_BOARD_CODE = ("sim",)       # hal/sim.py runs under CPython in the emulator only
# Board-independent modules that had mypy errors when this check arrived (mostly the CPython
# fallbacks under `except ImportError` and attributes set to None in __init__). Their owners
# fix them and delete the line; any other module must be clean.
KNOWN_DEBT = {
    "lwproto/const.py", "lwnode/clock.py", "lwnode/drone.py", "lwnode/main.py",
    "lwnode/mqtt.py", "lwnode/node.py", "lwnode/store.py", "lwnode/tamper.py",
    "lwnode/hal/unix.py",
}


def source_tree(tmp_path):
    """The import names a board sees (/lib/lwnode, /lib/lwproto) as symlinks."""
    tree = tmp_path / "lib"
    tree.mkdir()
    (tree / "lwnode").symlink_to(ROOT / "firmware")
    (tree / "lwproto").symlink_to(ROOT / "protocol")
    return tree


def board_files(board):
    return ["lwnode/hal/%s.py" % name for name in (board,) + BOARD_SHARED]


def independent_files():
    files = ["lwnode/%s" % p.name for p in sorted((ROOT / "firmware").glob("*.py"))]
    files += ["lwproto/%s" % p.name for p in sorted((ROOT / "protocol").glob("*.py"))]
    files.append("lwnode/hal/__init__.py")
    files += ["lwnode/hal/%s" % p.name for p in sorted((ROOT / "firmware" / "hal").glob("*.py"))
              if p.stem not in BOARD_SHARED + NOT_BOARD_CODE + ("esp32", "rp2", "__init__")]
    return files


def mypy(board, files, tree, tmp_path, *options):
    stubs = STUBS / board
    if not (stubs / "machine.pyi").exists():
        pytest.skip("%s stubs missing: run tools/setup.sh test (pip install --target "
                    ".venv/stubs/%s micropython-%s-stubs)" % (board, board, board))
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.skip("mypy not installed in the venv (it is in the dev extra)")
    env = dict(os.environ, MYPYPATH="%s%s%s" % (tree, os.pathsep, stubs))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(CONFIG),
         "--custom-typeshed-dir", str(stubs), "--cache-dir", str(tmp_path / ("cache-" + board)),
         "--no-error-summary", "--hide-error-context"] + list(options) + files,
        cwd=tree, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("board", ["esp32", "rp2"])
def test_board_hal_against_its_stubs(board, tmp_path):
    # modules outside hal are reported by the board-independent run, not twice here
    result = mypy(board, board_files(board), source_tree(tmp_path), tmp_path,
                  "--follow-imports=silent")
    assert result.returncode == 0, "mypy (%s stubs):\n%s%s" % (board, result.stdout,
                                                               result.stderr)


def test_board_independent_firmware_against_esp32_stubs(tmp_path):
    result = mypy("esp32", independent_files(), source_tree(tmp_path), tmp_path)
    assert not result.stderr.strip(), result.stderr
    errors = collections.defaultdict(list)
    for line in result.stdout.splitlines():
        path, _, rest = line.partition(":")
        if " error: " in rest:
            errors[path].append(line)
    new = sorted(path for path in errors if path not in KNOWN_DEBT)
    assert not new, "mypy (esp32 stubs) errors in:\n" + "\n".join(
        "\n".join(errors[path]) for path in new)


def test_a_planted_error_is_caught(tmp_path):
    tree = source_tree(tmp_path)
    planted = tree / "planted.py"
    planted.write_text("import machine\n\n\ndef start():\n"
                       "    machine.I2S(0, sck=machine.Pin(1), ws=machine.Pin(2), "
                       "sd=machine.Pin(3), mode=machine.I2S.RECEIVE, bits=32,\n"
                       "                format=machine.I2S.MONO, rate=16000, ibuf=4096)\n")
    result = mypy("rp2", ["planted.py"], tree, tmp_path)
    assert result.returncode != 0 and "RECEIVE" in result.stdout, result.stdout
