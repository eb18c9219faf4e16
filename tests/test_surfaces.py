"""Declared package surfaces: each package of the terminal lists in `__all__` what the rest of
the terminal may import from it, and the terminal's own code imports nothing else across a
package boundary (the tests may reach in; the simulators may import anything)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("firmware.emv", "firmware.host", "drivers", "ui", "firmware")


def _surface(package: str) -> list[str]:
    names = importlib.import_module(package).__dict__.get("__all__")
    assert isinstance(names, list) and names, f"{package} declares no __all__"
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_every_declared_name_exists(package: str) -> None:
    module = importlib.import_module(package)
    for name in _surface(package):
        if not hasattr(module, name):
            importlib.import_module(f"{package}.{name}")  # a submodule


def _imports(path: Path) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
    return found


def _crossings() -> list[str]:
    """`module imports package.name` for each import across a package boundary that the
    package's __all__ does not declare."""
    surfaces = {p: set(_surface(p)) for p in PACKAGES}
    wrong = []
    for path in sorted(p for top in ("firmware", "drivers", "ui")
                       for p in (ROOT / top).rglob("*.py")):
        importer = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for module, name in _imports(path):
            for package in PACKAGES:  # innermost first
                if module != package and not module.startswith(package + "."):
                    continue
                if importer == package or importer.startswith(package + "."):
                    break  # inside the package: its own business
                used = module[len(package) + 1:].split(".")[0] if module != package else name
                if used not in surfaces[package]:
                    wrong.append(f"{importer} imports {package}.{used}")
                break
    return wrong


def test_the_terminal_imports_only_declared_surfaces() -> None:
    assert _crossings() == []
