"""The contracts are checked: `make test` runs mypy over the terminal's packages and the
simulators, strict on the kernel and the acquirer link, and mypy finds nothing there."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _make_target(name: str) -> list[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{name}:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert match, f"no {name} target"
    return [line.strip() for line in match.group(1).splitlines()]


def test_make_test_runs_mypy_before_pytest() -> None:
    steps = _make_target("test")
    mypy = [i for i, s in enumerate(steps) if "-m mypy" in s]
    pytest_ = [i for i, s in enumerate(steps) if "-m pytest" in s]
    assert mypy and pytest_ and mypy[0] < pytest_[0]


def test_mypy_covers_the_terminal_and_the_simulators_strict_on_kernel_and_link() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert set(cfg["files"]) == {"firmware", "drivers", "ui", "simulators"}
    assert not [o for o in cfg["overrides"] if o.get("follow_imports") == "skip"]
    strict = [o for o in cfg["overrides"] if o.get("disallow_untyped_defs")]
    modules = {m for o in strict for m in o["module"]}
    assert {"firmware.emv.*", "firmware.host.link"} <= modules
    flags = strict[0]
    for flag in ("disallow_any_generics", "warn_return_any", "disallow_untyped_calls",
                 "disallow_incomplete_defs"):
        assert flags.get(flag) is True, flag


def test_mypy_is_a_dev_dependency() -> None:
    assert '"mypy>=' in (ROOT / "setup.py").read_text(encoding="utf-8")
