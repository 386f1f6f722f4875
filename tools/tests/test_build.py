"""`linewatch build`: every target compiles the real firmware and protocol; the manifest is honest."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lwtools import build
from lwtools.build import BuildError, Package

LINEWATCH = str(Path(sys.executable).parent / "linewatch")


@pytest.mark.parametrize("target", ["esp32", "rp2"])
def test_the_real_tree_compiles_for_each_board(tmp_path, target):
    manifest = build.build(target, out=tmp_path / target, progress=lambda *_: None)
    paths = {f["path"] for f in manifest["files"]}
    assert "lib/lwproto/frame.mpy" in paths and "lib/lwnode/mqtt.mpy" in paths
    assert not any("/tests/" in p or p.endswith(".py") and p != "main.py" for p in paths)
    assert not any(p.startswith("lib/lwnode/hal/sim") or p.startswith("lib/lwnode/hal/unix") for p in paths)
    assert manifest["arch"] == build.TARGETS[target]
    on_disk = json.loads((tmp_path / target / "manifest.json").read_text())
    assert on_disk == manifest
    for f in manifest["files"]:
        data = (tmp_path / target / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["size"]


def fake_firmware(root, body="X = 1\n"):
    fw = root / "fw"
    (fw / "hal").mkdir(parents=True)
    (fw / "tests").mkdir()
    (fw / "__init__.py").write_text("")
    (fw / "core.py").write_text(body)
    (fw / "hal" / "__init__.py").write_text("")
    for board in ("esp32", "rp2", "unix", "sim"):
        (fw / "hal" / f"{board}.py").write_text(f"NAME = {board!r}\n")
    (fw / "tests" / "test_core.py").write_text("def test(): pass\n")
    (fw / "main.py").write_text("import lwnode.core\n")
    return fw


def test_only_the_targets_hal_goes_in_and_main_stays_source(tmp_path):
    fw = fake_firmware(tmp_path)
    manifest = build.build("rp2", out=tmp_path / "out", packages=(Package("lwnode", fw),),
                           main=fw / "main.py", progress=lambda *_: None)
    assert sorted(f["path"] for f in manifest["files"]) == [
        "lib/lwnode/__init__.mpy", "lib/lwnode/core.mpy", "lib/lwnode/hal/__init__.mpy",
        "lib/lwnode/hal/rp2.mpy", "main.py"]
    assert (tmp_path / "out" / "main.py").read_text() == "import lwnode.core\n"


def test_a_compile_error_names_the_file_and_the_message(tmp_path):
    fw = fake_firmware(tmp_path, body="def broken(:\n")
    with pytest.raises(BuildError, match=r"core\.py: mpy-cross failed: line 1: SyntaxError: invalid syntax$"):
        build.build("esp32", out=tmp_path / "out", packages=(Package("lwnode", fw),), progress=lambda *_: None)


def test_viper_code_carries_the_targets_architecture(tmp_path):
    fw = fake_firmware(tmp_path, body="import micropython\n@micropython.viper\ndef f(x: int) -> int:\n    return x + 1\n")
    manifest = build.build("esp32", out=tmp_path / "out", packages=(Package("lwnode", fw),), progress=lambda *_: None)
    header = (tmp_path / "out" / "lib/lwnode/core.mpy").read_bytes()[:4]
    assert header[0] == ord("M") and header[2] >> 2 == build.ARCH_CODES["xtensawin"] == manifest["arch_code"]


def test_the_build_command_writes_under_the_current_folder(tmp_path):
    """One rule for every command: default paths are relative to the current folder (flash
    looks for build/esp32 there; provision writes provisioned/ there)."""
    result = subprocess.run([LINEWATCH, "build", "--target", "esp32"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert build.load_manifest(tmp_path / "build" / "esp32")["target"] == "esp32"
    bad = subprocess.run([LINEWATCH, "build", "--target", "avr"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_a_missing_build_is_a_clear_error(tmp_path):
    with pytest.raises(BuildError, match="no build here"):
        build.load_manifest(tmp_path)


def test_the_update_image_carries_lib_and_the_release_being_built(tmp_path):
    fw = fake_firmware(tmp_path)
    proto = tmp_path / "proto"
    proto.mkdir()
    (proto / "version.py").write_text('RELEASE = "0.7.3"\n')
    build.build("rp2", out=tmp_path / "out", packages=(Package("lwnode", fw), Package("lwproto", proto)),
                main=fw / "main.py", progress=lambda *_: None)
    from lwproto.hostupdate import unpack_image
    data, release, arch = build.update_image(tmp_path / "out")
    files = unpack_image(data)
    assert sorted(files) == ["lib/lwnode/__init__.mpy", "lib/lwnode/core.mpy", "lib/lwnode/hal/__init__.mpy",
                             "lib/lwnode/hal/rp2.mpy", "lib/lwproto/version.mpy"]
    assert files["lib/lwnode/core.mpy"] == (tmp_path / "out" / "lib/lwnode/core.mpy").read_bytes()
    assert release == (0, 7, 3) and arch == build.ARCH_CODES["armv6m"]
