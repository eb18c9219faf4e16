"""First boot against a chroot-like folder: a good provisioning file ends as a loadable terminal
config with its secrets root-only and the clear copy gone; each mistake leaves the terminal
unprovisioned, the file in place, and the exact problem in the result file and on stderr."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_provision_site import CLIENT_KEY, JOURNAL_KEY, MISTAKES, site_text
from test_provision_wheelhouse import make_wheel

from firmware.config import load_config
from firmware.emv import capk
from firmware.provision.firstboot import RESULT_FILE_NAME, main, provision
from firmware.provision.site import SiteError, parse_site


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A terminal's filesystem as first boot sees it: /boot/firmware is the FAT partition."""
    r = tmp_path / "root"
    (r / "boot" / "firmware").mkdir(parents=True)
    (r / "etc").mkdir()
    return r


def drop_site(root: Path, text: str) -> Path:
    path = root / "boot" / "firmware" / "pitap-site.toml"
    path.write_text(text)
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_good_file_provisions_the_terminal(root: Path, capsys: pytest.CaptureFixture) -> None:
    site = drop_site(root, site_text())
    assert main(["--root", str(root), "--no-display"]) == 0
    assert "OK: terminal PITAP042 provisioned" in capsys.readouterr().out

    cfg = load_config(root / "etc" / "pitap" / "terminal.toml")
    assert cfg.terminal.terminal_id == "PITAP042" and cfg.mode == "production"
    secrets = root / "etc" / "pitap" / "secrets"
    assert mode(secrets) == 0o700
    assert (secrets / "client.key").read_text() == CLIENT_KEY
    key = base64.b64decode((secrets / "journal.key").read_bytes())  # the journal's key format
    assert key == bytes.fromhex(JOURNAL_KEY)
    assert mode(root / "etc" / "pitap" / "terminal.toml") == 0o600
    assert mode(root / "var" / "lib" / "pitap") == 0o700
    for f in secrets.iterdir():
        assert mode(f) == 0o600
    assert cfg.host.client_key == "/etc/pitap/secrets/client.key"
    assert (root / "etc" / "pitap" / "acquirer-ca.pem").read_text().startswith("-----BEGIN CERT")
    store = capk.load_file(root / "etc" / "pitap" / "capk.txt")  # the kernel's own loader
    assert len(store.keys) == 1 and store.refused == []
    assert cfg.kernel.capk_file == "/etc/pitap/capk.txt"
    # no secret outside the secrets directory, and the clear copy is gone from the boot partition
    for f in (root / "etc" / "pitap").glob("*"):
        if f.is_file():
            assert "PRIVATE KEY" not in f.read_text() and JOURNAL_KEY not in f.read_text()
    assert not site.exists()
    assert list((root / "boot" / "firmware").iterdir()) == [
        root / "boot" / "firmware" / RESULT_FILE_NAME
    ]
    assert (root / "boot" / "firmware" / RESULT_FILE_NAME).read_text().startswith("OK ")


@pytest.mark.parametrize(("change", "fragment"), MISTAKES)
def test_each_mistake_is_reported_and_nothing_applied(
    root: Path, change: dict[str, str], fragment: str, capsys: pytest.CaptureFixture
) -> None:
    text = site_text(**change)
    with pytest.raises(SiteError) as expected:
        parse_site(text, "pitap-site.toml")
    site = drop_site(root, text)
    assert main(["--root", str(root), "--no-display"]) == 1
    err = capsys.readouterr().err
    assert f"FAILED: {expected.value}" in err and fragment in err
    result = (root / "boot" / "firmware" / RESULT_FILE_NAME).read_text()
    assert result.startswith("FAILED ") and str(expected.value) in result
    assert site.read_text() == text  # left for the technician to fix
    assert not (root / "etc" / "pitap" / "terminal.toml").exists()
    assert not (root / "etc" / "pitap" / "secrets").exists()


def test_journal_key_is_made_on_the_terminal_when_the_file_has_none(root: Path) -> None:
    drop_site(root, site_text(journal_key=""))
    assert provision(root).ok
    key_file = root / "etc" / "pitap" / "secrets" / "journal.key"
    assert len(base64.b64decode(key_file.read_bytes())) == 32 and mode(key_file) == 0o600
    first = key_file.read_bytes()
    drop_site(root, site_text(journal_key=""))  # re-provisioning keeps the journal readable
    assert provision(root).ok and key_file.read_bytes() == first


def test_no_file_on_a_fresh_terminal_is_a_failure(root: Path) -> None:
    result = provision(root)
    assert not result.ok and "put pitap-site.toml on the boot partition" in result.message


def test_no_new_file_on_a_provisioned_terminal_is_fine(root: Path) -> None:
    drop_site(root, site_text())
    assert provision(root).ok
    again = provision(root)
    assert again.ok and "already provisioned" in again.message


def test_a_new_file_reprovisions(root: Path) -> None:
    drop_site(root, site_text())
    assert provision(root).ok
    drop_site(root, site_text(terminal_id='terminal_id = "PITAP043"'))
    assert provision(root).terminal_id == "PITAP043"
    assert load_config(root / "etc/pitap/terminal.toml").terminal.terminal_id == "PITAP043"


def test_older_layout_with_boot_partition_at_slash_boot(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    drop = root / "boot" / "pitap-site.toml"
    drop.write_text(site_text())
    assert provision(root).ok and not drop.exists()


def test_the_unit_script_applies_the_file_once_pitap_is_installed(root: Path) -> None:
    """config/systemd/pitap-firstboot, with PITAP_ROOT, on a root where pitap is installed."""
    venv_bin = root / "opt" / "pitap" / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "pitap").write_text("#!/bin/sh\n")
    (venv_bin / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for exe in venv_bin.iterdir():
        exe.chmod(0o755)
    site = drop_site(root, site_text())
    script = Path(__file__).resolve().parents[1] / "config" / "systemd" / "pitap-firstboot"
    env = {**os.environ, "PITAP_ROOT": str(root)}
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "OK: terminal PITAP042 provisioned" in done.stdout
    assert not site.exists() and (root / "etc" / "pitap" / "terminal.toml").is_file()


def test_the_unit_script_says_failed_when_the_offline_install_stops(root: Path) -> None:
    """A wheel needing what the wheelhouse lacks: pip stops, and the console says so in one line
    (before this, the field test's emulated machine waited 45 minutes for a power-off)."""
    wheels = root / "opt" / "pitap" / "wheelhouse"
    wheels.mkdir(parents=True)
    make_wheel(wheels, "pitap", "any", requires=["pitap-test-absent-dependency>=1"])
    drop_site(root, site_text())
    script = Path(__file__).resolve().parents[1] / "config" / "systemd" / "pitap-firstboot"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PITAP_ROOT=str(root), PIP_CONFIG_FILE=os.devnull)
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    said = done.stdout.splitlines()
    assert said[-1].startswith("pitap-firstboot: FAILED: the offline install stopped"), said[-3:]
    assert "pitap-test-absent-dependency" in done.stderr
    assert not (root / "etc" / "pitap" / "terminal.toml").exists()  # nothing provisioned


@pytest.mark.parametrize("good", [True, False])
def test_result_is_shown_on_the_display(root: Path, good: bool) -> None:
    hardware = 'display = "png"\ngpio = "sim"'
    text = site_text(display=hardware) if good else site_text(display=hardware, port="port = 0")
    drop_site(root, text)
    assert main(["--root", str(root)]) == (0 if good else 1)
    frames = sorted((root / "var" / "lib" / "pitap" / "screens").glob("*.png"))
    assert len(frames) == 1
    assert ("out_of_service" in frames[0].name) != good


def test_unit_file_is_valid_for_systemd(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    here = Path(__file__).resolve().parents[1] / "config" / "systemd"
    unit = (here / "pitap-firstboot.service").read_text()
    assert "ExecStart=/usr/local/sbin/pitap-firstboot\n" in unit
    # the script is installed at /usr/local/sbin by the image build; point at the shipped copy
    (tmp_path / "pitap-firstboot.service").write_text(
        unit.replace("/usr/local/sbin/pitap-firstboot", str(here / "pitap-firstboot"))
    )
    done = subprocess.run([analyze, "verify", str(tmp_path / "pitap-firstboot.service")],
                          capture_output=True, text=True, timeout=60)
    problems = [line for line in done.stderr.splitlines() if "pitap-firstboot" in line]
    assert done.returncode == 0 and problems == [], done.stderr


def test_field_check_is_turned_on_by_a_test_site_only_and_off_again(root: Path) -> None:
    marker = root / "etc/pitap/field-check.toml"
    extra = '[test]\nfield_check = true\nwallet = "visa-online"\namount = 1250\n'
    drop_site(root, site_text(mode='mode = "test"') + extra)
    assert provision(root).ok
    assert 'wallet = "visa-online"' in marker.read_text() and "amount = 1250" in marker.read_text()
    drop_site(root, site_text(mode='mode = "test"'))  # re-provisioned without the field check
    assert provision(root).ok
    assert not marker.exists()


def test_field_check_of_a_production_site_is_refused_before_anything_is_applied(
        root: Path) -> None:
    extra = '[test]\nfield_check = true\n'
    site = drop_site(root, site_text() + extra)
    result = provision(root)
    assert not result.ok and "'[test]' is only allowed with mode" in result.message
    assert site.exists() and not (root / "etc/pitap").exists()


@pytest.mark.parametrize("name", ["pitap-test-host.service", "pitap-field-check.service"])
def test_field_test_units_are_valid_and_need_the_field_check_file(
        tmp_path: Path, name: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    unit = (Path(__file__).resolve().parents[1] / "config" / "systemd" / name).read_text()
    # only a test-mode site file's [test] field_check makes this file (tests above)
    assert "ConditionPathExists=/etc/pitap/field-check.toml\n" in unit
    venv_bin = Path(sys.executable).parent
    (tmp_path / name).write_text(unit.replace("/opt/pitap/venv/bin/", f"{venv_bin}/"))
    done = subprocess.run([analyze, "verify", str(tmp_path / name)],
                          capture_output=True, text=True, timeout=60)
    problems = [line for line in done.stderr.splitlines() if name in line]
    assert done.returncode == 0 and problems == [], done.stderr
