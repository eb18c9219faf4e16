"""The terminal's packages import one way: no cycle in the import graph of firmware/, drivers/
and ui/, counting every import (module level, inside functions, and under `if TYPE_CHECKING:`),
read with ast; the arrows run firmware -> ui and firmware -> drivers, never back nor between
ui and drivers (but for the one error root, drivers.errors). And the payment vocabulary
(firmware.payment) imports nothing of the terminal."""

from __future__ import annotations

import ast
from pathlib import Path

import firmware

ROOT = Path(firmware.__file__).parent
# the terminal's packages: what `pip install .` installs (setup.py), the SD image carries
TERMINAL = tuple(ROOT.parent / name for name in ("firmware", "drivers", "ui"))


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph(*roots: Path) -> dict[str, set[str]]:
    """module -> the modules of the `roots`' packages (default: the terminal's) it imports,
    anywhere in its source."""
    modules = {_module_name(p, root): p for root in roots or TERMINAL for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):  # every scope, every branch
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}".rstrip(".")
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)  # submodules
        # An import of a.b.c also runs a and a.b: the edge goes to the deepest module named.
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (as a path that returns to its start), or []."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_the_journal_and_the_acquirer_link_do_not_import_each_other() -> None:
    graph = _graph()
    journal = {m for m in graph if m == "firmware.journal" or m.startswith("firmware.journal.")}
    host = {m for m in graph if m == "firmware.host" or m.startswith("firmware.host.")}
    assert journal, "no firmware.journal package found"
    assert not {(a, b) for a in journal for b in graph[a] if b in host}
    assert not {(a, b) for a in host for b in graph[a] if b in journal}


def test_the_payment_vocabulary_imports_nothing_of_the_terminal() -> None:
    assert _graph()["firmware.payment"] == set()


def test_no_import_cycle_in_the_terminal() -> None:
    graph = _graph()
    assert {m.partition(".")[0] for m in graph} == {"firmware", "drivers", "ui"}
    cycle = _cycle(graph)
    assert cycle == [], " -> ".join(cycle)


def test_the_arrows_run_from_firmware_to_ui_and_drivers_only() -> None:
    # ui and drivers import nothing of each other or of firmware, but the one error root
    # (drivers.errors, at the lowest layer so that every package can derive from it)
    below = {"firmware": {"ui", "drivers"}, "ui": set(), "drivers": set()}
    against = sorted(f"{a} -> {b}" for a, targets in _graph().items() for b in targets
                     if (top := b.partition(".")[0]) != a.partition(".")[0]
                     and top not in below[a.partition(".")[0]] and b != "drivers.errors")
    assert against == []


def test_the_checker_finds_cycles_through_functions_and_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "shop"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ledger.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from shop.till import Till\n"
    )
    (pkg / "till.py").write_text("def total():\n    from . import ledger\n")
    (pkg / "clock.py").write_text("import shop.till\n")
    graph = _graph(pkg)
    assert graph["shop.ledger"] == {"shop.till"} and "shop.ledger" in graph["shop.till"]
    assert set(_cycle(graph)) == {"shop.ledger", "shop.till"}
    (pkg / "ledger.py").write_text("VALUE = 1\n")
    assert _cycle(_graph(pkg)) == []
