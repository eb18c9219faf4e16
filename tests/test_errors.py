"""One error root: every exception class of the terminal derives from PitapError, and `pitap`
ends each one the way firmware.cli.EXIT_CODES says (one line, an exit code, no traceback)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from firmware.cli import EXIT_CODES, exit_for
from firmware.errors import PitapError


def _terminal_modules() -> list[str]:
    names = []
    for pkg in ("firmware", "drivers", "ui"):
        root = importlib.import_module(pkg)
        names.append(pkg)
        names += [n for _, n, _ in pkgutil.walk_packages(root.__path__, f"{pkg}.")
                  if not n.endswith("__main__")]
    return names


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for name in _terminal_modules():
        module = importlib.import_module(name)
        found += [v for v in vars(module).values()
                  if inspect.isclass(v) and issubclass(v, BaseException) and v.__module__ == name]
    return found


def test_every_exception_of_the_terminal_derives_from_the_root() -> None:
    classes = _exception_classes()
    assert len(classes) > 30  # the walk found them (firmware, drivers, ui)
    strays = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, PitapError)]
    assert strays == []


def test_old_bases_still_catch() -> None:
    from drivers.display import DisplayError
    from firmware.config import ConfigError
    from firmware.journal import JournalBusy

    assert issubclass(ConfigError, ValueError) and issubclass(DisplayError, RuntimeError)
    assert issubclass(JournalBusy, ConfigError)


def test_every_table_entry_names_a_pitap_error() -> None:
    for dotted in EXIT_CODES:
        module, _, name = dotted.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, PitapError), dotted
        # named where it is defined: exit_for() matches the class's own module, not a re-export
        assert f"{cls.__module__}.{cls.__qualname__}" == dotted


@pytest.mark.parametrize(("module", "name", "code", "line"), [
    ("firmware.config", "ConfigError", 2, "pitap: configuration error: boom"),
    ("firmware.journal", "JournalBusy", 2, "pitap pay: boom"),  # more specific than ConfigError
    ("firmware.commands", "UsageError", 2, "pitap pay: boom"),
    ("firmware.terminal", "RefundRefused", 2, "pitap: pay refused: boom"),
    ("firmware.provision.flash", "FlashFailed", 1, "pitap: flash FAILED: boom"),
    ("firmware.provision.mbr", "BadImage", 2, "pitap pay: boom"),  # through ProvisionError
    ("firmware.host.acquirer", "NoReply", 1, "pitap pay: boom"),  # the root catches the rest
])
def test_exit_code_table(module: str, name: str, code: int, line: str) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert exit_for(cls("boom"), "pay") == (code, line)


def test_an_error_outside_the_root_is_not_in_the_table() -> None:
    assert exit_for(KeyError("x"), "pay") is None


def test_cli_ends_a_pitap_error_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from firmware import cli
    from firmware.host.acquirer import HostUnavailable

    def fail(_args: object) -> int:
        raise HostUnavailable("connection refused")

    parser = cli.build_parser()
    args = parser.parse_args(["journal"])
    args.func = fail
    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {
        "parse_args": staticmethod(lambda argv: args)})())
    assert cli.main(["journal"]) == 1
    assert capsys.readouterr().err == "pitap journal: connection refused\n"
