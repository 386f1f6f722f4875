"""The boot counter: bumped once per boot, written atomically, restarts at 1 and says so."""
import os

import pytest

from lwnode import bootcount


def test_first_boot_starts_at_one_and_says_why(tmp_path):
    path = str(tmp_path / "boot")
    boot, note = bootcount.bump(path)
    assert boot == 1
    assert note == "boot counter %s missing: starting at 1" % path
    assert open(path, "rb").read() == b"BC\x00\x01\x15\x82\x4c\xa5"
    assert bootcount.read(path) == (1, None)


def test_every_boot_bumps_and_leaves_no_temp_file(tmp_path):
    path = str(tmp_path / "boot")
    assert [bootcount.bump(path)[0] for _ in range(4)] == [1, 2, 3, 4]
    assert bootcount.bump(path) == (5, None)
    assert os.listdir(tmp_path) == ["boot"]


def test_corrupt_file_restarts_at_one_and_says_so(tmp_path):
    path = tmp_path / "boot"
    bootcount.write(str(path), 41)
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01
    path.write_bytes(data)
    assert bootcount.bump(str(path)) == (1, "boot counter %s corrupt: starting at 1" % path)
    path.write_bytes(b"")
    assert bootcount.bump(str(path))[1].endswith("corrupt: starting at 1")


def test_wraps_after_65535_boots_and_says_so(tmp_path):
    path = str(tmp_path / "boot")
    bootcount.write(path, 0xFFFF)
    boot, note = bootcount.bump(path)
    assert boot == 1 and "wrapped after 65535 boots" in note


def test_rename_cut_short_on_fat_falls_back_on_the_temp_file(tmp_path):
    path = str(tmp_path / "boot")
    bootcount.write(path, 7)
    os.remove(path)  # FAT: old file removed, power lost before the rename
    with open(path + ".tmp", "wb") as f:
        f.write(bootcount.encode(8))
    assert bootcount.bump(path) == (9, None)


def test_fat_refusing_rename_over_a_file_still_writes(tmp_path, monkeypatch):
    path = str(tmp_path / "boot")
    bootcount.write(path, 3)
    real_rename = os.rename

    def fat_rename(src, dst):
        if os.path.exists(dst):
            raise OSError(17, "EEXIST")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", fat_rename)
    assert bootcount.bump(path) == (4, None)
    assert bootcount.read(path) == (4, None)


def test_encoding_is_exact():
    data = bootcount.encode(0x0102)
    assert data[:4] == b"BC\x01\x02" and len(data) == 8
    assert bootcount.decode(data) == 0x0102
    assert bootcount.decode(b"XX" + data[2:]) is None
    assert bootcount.decode(data[:7]) is None


def test_boot_counter_on_micropython(micropython, tmp_path):
    path = tmp_path / "boot"
    bootcount.write(str(path), 41)
    code = ("from lwnode import bootcount\n"
            "print(bootcount.bump(%r))\n"
            "print(bootcount.bump(%r))\n") % (str(path), str(tmp_path / "fresh"))
    result = micropython.run_code(code)
    assert result.returncode == 0, result.stdout
    assert result.stdout.split("\n")[:2] == [
        "(42, None)", "(1, 'boot counter %s missing: starting at 1')" % (tmp_path / "fresh")]
    assert bootcount.read(str(path)) == (42, None)
