"""What a terminal installs: the terminal's wheel (the one the SD image carries) holds no
simulator, no test private key and no test issuer master key; the simulators are their own
distribution, and the commands and backends that need them say so in one line without them."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from firmware.provision import ProvisionError
from firmware.provision.wheelhouse import build_pitap_wheel, from_directory

ROOT = Path(__file__).resolve().parents[1]
SIM_DATA = ROOT / "simulators" / "data"
# a PEM private key with a body (a commented placeholder "BEGIN PRIVATE KEY----- ..." is none)
PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\s*[A-Za-z0-9+/=\s]{64}")


@pytest.fixture(scope="module")
def terminal_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pitap's wheel built the way `pitap image build` builds it."""
    return build_pitap_wheel(tmp_path_factory.mktemp("wheel"), 1735689600)


def test_simulators_keep_their_test_secrets_in_their_own_data() -> None:
    # what the wheel test below looks for must exist, or it could not fail
    assert PEM_PRIVATE_KEY.search((SIM_DATA / "test-pki.toml").read_text())
    keys = tomllib.loads((SIM_DATA / "test-issuers.toml").read_text())["issuer"]
    assert keys and all(len(k["imk_ac"]) == 32 for k in keys)


def test_terminal_wheel_holds_no_simulator_and_no_test_secret(terminal_wheel: Path) -> None:
    # built from this checkout as it is: whatever a test or a developer left under config/
    # (a test host's TLS keys in config/var/, say) must not get in either
    imks = [k["imk_ac"].upper() for k in
            tomllib.loads((SIM_DATA / "test-issuers.toml").read_text())["issuer"]]
    with zipfile.ZipFile(terminal_wheel) as wheel:
        names = wheel.namelist()
        assert "firmware/cli.py" in names and any(n.endswith("config/terminal.toml")
                                                  for n in names)  # the terminal is there
        # the cashier page and the OpenAPI document are package data of the API
        assert {"firmware/api/openapi.json", "firmware/api/static/index.html",
                "firmware/api/static/app.js", "firmware/api/static/app.css"} <= set(names)
        sim_names = [n for n in names if re.search(r"(^|/)(simulators|sim)/|test-(pki|issuers)|"
                                                   r"gpio_fake|spi_panel|pn532/|testpki", n)]
        assert sim_names == []
        for name in names:
            text = wheel.read(name).decode("latin-1")
            assert not PEM_PRIVATE_KEY.search(text), name
            assert not [k for k in imks if k in text.upper()], name


def test_an_image_wheelhouse_with_the_simulators_is_refused(tmp_path: Path,
                                                            terminal_wheel: Path) -> None:
    house = tmp_path / "house"
    house.mkdir()
    (house / terminal_wheel.name).write_bytes(terminal_wheel.read_bytes())
    assert from_directory(house).pitap_wheel().name == terminal_wheel.name
    (house / "pitap_sim-0.1.0-py3-none-any.whl").write_bytes(b"PK")
    with pytest.raises(ProvisionError, match="simulators"):
        from_directory(house)
    # a test-mode site's field check runs the host simulator on the terminal: then, and only
    # then, `pitap image build` lets the simulators in
    assert len(from_directory(house, allow_simulators=True).wheels) == 2


WITHOUT_SIMULATORS = """
import importlib.abc, sys
class NoSimulators(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "simulators" or name.startswith("simulators."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoSimulators())
"""


def run_without_simulators(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Python as on a terminal: the simulators package cannot be imported."""
    script = tmp_path / "terminal.py"
    script.write_text(WITHOUT_SIMULATORS + code)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("argv", [["demo"], ["wallet", "--list"], ["host"],
                                  ["sim", "pn532", "--seconds", "0"]])
def test_development_commands_without_simulators_say_so_in_one_line(
        argv: list[str], tmp_path: Path) -> None:
    code = f"from firmware.cli import main\nraise SystemExit(main({argv!r}))"
    done = run_without_simulators(code, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "needs the simulators" in done.stderr, done.stderr
    assert "make install" in done.stderr


def test_sim_gpio_backend_without_simulators_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text('[gpio]\nbackend = "sim"\n[display]\nbackend = "none"\n')
    done = run_without_simulators(
        "from firmware.config import load_config\nfrom firmware.feedback import Feedback\n"
        "from firmware.config import ConfigError\n"
        f"try:\n    Feedback.from_config(load_config({str(config)!r}))\n"
        "except ConfigError as exc:\n    print(exc)\n    raise SystemExit(2)\n", tmp_path)
    assert done.returncode == 2, done.stderr
    assert "gpio" in done.stdout and "needs the simulators" in done.stdout


def test_the_phones_never_import_the_kernel() -> None:
    """The wallets' TLV and signing check the kernel's because they are written apart."""
    code = ("import sys, simulators.wallet.phone, simulators.pn532.emulator\n"
            "print(sorted(m for m in sys.modules if m.startswith('firmware.emv')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120, cwd=ROOT)
    assert done.stdout.strip() == "[]"


def test_a_wheel_is_built_from_the_sources_not_from_what_an_earlier_build_left(
        tmp_path: Path) -> None:
    # setuptools reuses build/lib as it finds it: a module deleted since (as drivers/sim/ was when
    # the simulators moved out) would otherwise still reach the wheel and the SD image
    from firmware.provision.wheelhouse import _build_wheel

    src = tmp_path / "proj"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "__init__.py").write_text("")
    (src / "setup.py").write_text("from setuptools import setup\n"
                                  "setup(name='proj', version='1', packages=['pkg'])\n")
    (src / "build" / "lib" / "pkg").mkdir(parents=True)
    (src / "build" / "lib" / "pkg" / "stale.py").write_text("LEFT = 'by an earlier build'\n")
    wheel = _build_wheel(src, tmp_path / "out", 1735689600, "the test wheel")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "pkg/__init__.py" in names and "pkg/stale.py" not in names
