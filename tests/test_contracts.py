"""The hardware edges and optional capabilities are declared (typing.Protocol), and the real
backends have what their contract names; nothing probes for a capability by name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from drivers.display import Display, FramebufferDisplay, NullDisplay, PngSink, SpiPanel
from drivers.gpio import Gpio
from drivers.keypad import ButtonKeypad, KeyboardKeypad, Keypad, MatrixKeypad, NoKeypad
from drivers.nfc import CardReader, Reader
from drivers.printer import FilePrinter, Printer, SerialPrinter
from firmware.host.acquirer import Acquirer, OwnConnections
from firmware.host.iso8583_acquirer import Iso8583Acquirer

ROOT = Path(__file__).resolve().parent.parent


def _members(protocol: type) -> set[str]:
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {n for n, v in vars(protocol).items()
              if not n.startswith("_") and (callable(v) or isinstance(v, property))}
    return names


@pytest.mark.parametrize(("protocol", "backends"), [
    (Display, [PngSink, NullDisplay, SpiPanel, FramebufferDisplay]),
    (Keypad, [MatrixKeypad, ButtonKeypad, KeyboardKeypad, NoKeypad]),
    (Printer, [FilePrinter, SerialPrinter]),
    (CardReader, [Reader]),
], ids=lambda p: getattr(p, "__name__", ""))
def test_backends_have_what_their_contract_names(protocol: type, backends: list[type]) -> None:
    wanted = _members(protocol) - {"width", "height"}  # set in __init__ (instance attributes)
    assert wanted
    for backend in backends:
        missing = [m for m in wanted if not hasattr(backend, m)]
        assert missing == [], f"{backend.__name__} lacks {missing}"


def test_the_gpio_fake_has_the_gpio_contract() -> None:
    from simulators.gpio_fake import FakeGPIO

    assert [m for m in _members(Gpio) if not hasattr(FakeGPIO, m)] == []


def test_own_connections_is_a_declared_optional_capability() -> None:
    assert issubclass(Iso8583Acquirer, OwnConnections)

    class Minimal:  # an acquirer plug-in with only the required methods
        def authorize(self, request: object) -> object: ...

    assert not isinstance(Minimal(), OwnConnections)
    assert "companion" not in _members(Acquirer)  # optional: not part of the required contract


def test_no_capability_is_probed_by_name() -> None:
    probes = []
    terminal = ("firmware", "drivers", "ui")
    for path in sorted(p for top in terminal for p in (ROOT / top).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant)
                    and node.args[1].value in ("companion", "gpio", "writebytes2", "close")):
                probes.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert probes == []


def test_no_public_signature_of_the_terminal_takes_or_returns_any() -> None:
    # a parsed TOML table (dict[str, Any]) is the one exception: its values are what the file has
    found = []
    terminal = ("firmware", "drivers", "ui")
    for path in sorted(p for top in terminal for p in (ROOT / top).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or (
                    node.name.startswith("_") and node.name != "__init__"):
                continue
            a = node.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, (a.vararg, a.kwarg))]
            annotations = [p.annotation for p in params if p.annotation] + [node.returns]
            for annotation in filter(None, annotations):
                text = re.sub(r"dict\[str, (typing\.)?Any\]", "", ast.unparse(annotation))
                if re.search(r"\bAny\b", text):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert found == []
