"""The kernel's shape: steps never import the kernel, and no function grows past 40 lines.

ruff holds the kernel's cyclomatic complexity (C901, max 15, scoped to firmware/emv in
pyproject.toml); these two rules it cannot say.
"""

from __future__ import annotations

import ast
from pathlib import Path

EMV = Path(__file__).resolve().parents[1] / "firmware" / "emv"
MAX_LINES = 40


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(EMV.glob("*.py"))}


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_kernel_module_imports_the_kernel() -> None:
    importers = [
        name
        for name, tree in _modules().items()
        if name != "kernel" and "firmware.emv.kernel" in _imports(tree)
    ]
    assert importers == []


def test_no_kernel_function_is_longer_than_40_lines() -> None:
    long = [
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert long == []
