"""No import cycles inside ``xnatnode`` or ``xnatsim``, counting every import statement: at module
level, lazy inside functions and under ``TYPE_CHECKING`` (a cycle hidden in any of them still ties
the modules together). ``from pkg import name`` counts as importing ``pkg`` and, when ``name`` is a
module, ``pkg.name``; only modules of the package itself are nodes."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"xnatnode": ROOT / "shared_lib", "xnatsim": ROOT / "xnatsim"}


def modules(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ``src``."""
    found = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path) -> set[str]:
    """Every module name an import statement anywhere in ``path`` (module ``name``) may load."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def graph(src: Path, package: str) -> dict[str, set[str]]:
    found = modules(src, package)
    return {name: (imported(name, path) & found.keys()) - {name} for name, path in found.items()}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycles(package: str) -> None:
    edges = graph(PACKAGES[package], package)
    assert len(edges) > 20, "the modules were found"
    assert sum(map(len, edges.values())) > 50, "their imports were read"
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle in {package}: {' -> '.join(exc.args[1])}")


def test_the_check_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import X\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    edges = graph(tmp_path, "pkg")
    assert edges == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg", "pkg.a"}, "pkg.c": {"pkg.a"}}
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(edges).prepare()
