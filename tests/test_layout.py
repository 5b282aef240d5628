"""The code's large-scale structure (docs/architecture.md): packages by role, no import
cycles, no module importing its own package's __init__, and a wheel without the fake Close.

The allowed directions between packages are import-linter's contracts (pyproject.toml,
run by `python3 dev.py lint`); these tests hold what those contracts cannot say.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

from tests.conftest import REPO

SERVICE = REPO / "service"
# The top of service/ holds packages; a loose module there is a role nobody named. web.py
# stays for `gunicorn "service.web:create_app()"`, which deployments use.
MAX_TOP_LEVEL_MODULES = 6


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    """(dotted name, path) of every module under `root`, a package of the checkout."""
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


@pytest.mark.parametrize("package", ["service", "fakeclose"])
def test_no_module_takes_part_in_an_import_cycle(package: str) -> None:
    """Type-checking imports count: a cycle hidden behind TYPE_CHECKING is still one."""
    graph = grimp.build_graph(package, cache_dir=None)

    assert [] == import_cycles(graph)


def own_package_imports(module: str, path: Path) -> list[str]:
    """`from P import NAME` in a module of package P, where NAME is not a submodule of P:
    a name taken from P's __init__, which imports its submodules (a cycle, and the order
    of imports deciding whether it works)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    package_dir = REPO.joinpath(*package.split("."))
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == package and not node.level:
            for alias in node.names:
                submodule = package_dir / alias.name
                if not (submodule.with_suffix(".py").exists() or submodule.is_dir()):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {alias.name}")
        if isinstance(node, ast.Import) and any(a.name == package for a in node.names):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: import {package}")
    return found


def test_no_module_imports_a_name_from_its_own_package() -> None:
    found = [
        line
        for root in (SERVICE, REPO / "fakeclose")
        for module, path in modules(root)
        if path.name != "__init__.py"
        for line in own_package_imports(module, path)
    ]

    assert [] == found


def test_the_service_top_level_holds_packages_and_few_modules() -> None:
    loose = sorted(p.name for p in SERVICE.glob("*.py") if p.stem not in ("__init__", "__main__"))

    assert len(loose) <= MAX_TOP_LEVEL_MODULES, loose


def test_every_package_says_what_it_holds() -> None:
    """A docstring in every package's __init__ (what it holds, what it may import)."""
    silent = [
        str(init.relative_to(REPO))
        for init in sorted(SERVICE.rglob("__init__.py"))
        if not ast.get_docstring(ast.parse(init.read_text()))
    ]

    assert [] == silent


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The files of the wheel the Dockerfile installs, built from a copy of what it copies
    (pyproject.toml, README.md, service/) plus the fake Close, which must stay out."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("service", "fakeclose"):
        shutil.copytree(
            REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    subprocess.run(
        [*build, "--no-build-isolation", "--wheel-dir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("dealkeeper-*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_the_wheel_carries_the_service_and_no_fake_close(wheel_files: list[str]) -> None:
    shipped = {name.split("/", 1)[0] for name in wheel_files if not name.startswith("dealkeeper-")}

    assert {"service"} == shipped
    assert "service/intake/app.py" in wheel_files
    # The console's templates and stylesheet are not Python: only package-data ships them.
    assert "service/console/templates/console/base.html" in wheel_files
    assert "service/console/static/console.css" in wheel_files
    assert [] == [name for name in wheel_files if "fakeclose" in name]


def test_the_image_copies_no_fake_close() -> None:
    copied = [
        line.split()[1]
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
    ]

    assert "fakeclose" not in " ".join(copied)
    assert "service" in copied
