"""First boot on the terminal: apply the provisioning file from the boot partition.

Validates `pitap-site.toml`, writes /etc/pitap/terminal.toml (settings, secrets by path only),
the acquirer certificates to /etc/pitap and the secrets to /etc/pitap/secrets (root only, 0600),
then overwrites and deletes the clear copy on the boot partition. The result (success or the
exact problem) goes to the display, to stdout (the systemd journal and console), and to
`pitap-provision-result.txt` on the boot partition, where a technician can read it from a PC.
Everything is relative to `--root` so that it can run against a chroot-like folder.

Run: `python -m firmware.provision.firstboot [--root /]`; exit 0 when provisioned, 1 if not.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from firmware.config import ConfigError, read_text_file
from firmware.journal import JournalError, load_or_create_key
from firmware.provision.site import (
    FIELD_CHECK_FILE,
    SITE_FILE_NAME,
    SiteError,
    TerminalPaths,
    field_check_toml,
    parse_site,
    public_files,
    secret_files,
    terminal_toml,
)

log = logging.getLogger(__name__)

RESULT_FILE_NAME = "pitap-provision-result.txt"


@dataclass(frozen=True)
class FirstBootResult:
    ok: bool
    message: str
    terminal_id: str = ""


def boot_dir(root: Path) -> Path:
    """The boot partition as mounted on Raspberry Pi OS: /boot/firmware (Bookworm) or /boot."""
    firmware = root / "boot" / "firmware"
    return firmware if firmware.is_dir() else root / "boot"


def _under(root: Path, absolute: str) -> Path:
    return root / absolute.lstrip("/")


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with `mode` from the start (never world-readable, even briefly)."""
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    if os.geteuid() == 0:
        os.chown(tmp, 0, 0)
    os.replace(tmp, path)


def _make_dir(path: Path, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if os.geteuid() == 0:
        os.chown(path, 0, 0)


def shred_and_delete(path: Path) -> None:
    """Overwrite the file with zeros, then delete it. On flash media (wear levelling) the old
    blocks may survive in the card; the file is gone from the filesystem either way."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(bytes(size))
        f.flush()
        os.fsync(f.fileno())
    path.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def provision(root: Path, paths: TerminalPaths | None = None) -> FirstBootResult:
    """Apply the provisioning file under `root`; never raises for a bad file."""
    paths = paths or TerminalPaths()
    boot = boot_dir(root)
    site_path = boot / SITE_FILE_NAME
    config_file = _under(root, paths.terminal_toml)
    if not site_path.is_file():
        if config_file.is_file():
            return FirstBootResult(True, "already provisioned; no new provisioning file")
        return FirstBootResult(
            False, f"no provisioning file: put {SITE_FILE_NAME} on the boot partition"
        )
    try:
        site = parse_site(read_text_file(site_path, "provisioning file"), SITE_FILE_NAME)
    except (SiteError, ConfigError) as exc:
        return FirstBootResult(False, str(exc))
    except Exception as exc:  # noqa: BLE001 - the result must reach the technician, not a trace
        log.exception("checking %s failed", SITE_FILE_NAME)
        return FirstBootResult(False, f"{SITE_FILE_NAME}: could not be checked: {exc!r}")
    try:
        _make_dir(_under(root, paths.config_dir), 0o755)
        secrets_dir = _under(root, paths.secrets_dir)
        _make_dir(secrets_dir, 0o700)
        _make_dir(_under(root, paths.state_dir), 0o700)
        for name, data in sorted(secret_files(site).items()):
            _write_private(secrets_dir / name, data, 0o600)
        # Production journals never create their own key: make one here, on the terminal, when
        # the site file brought none (kept when the terminal is provisioned again).
        load_or_create_key(secrets_dir / "journal.key", create=True)
        for name, data in sorted(public_files(site).items()):
            _write_private(_under(root, paths.config_dir) / name, data, 0o644)
        # the journal's start-up check wants the configuration private to the service user
        _write_private(config_file, terminal_toml(site, paths).encode(), 0o600)
        # a test-mode site's field check (tests/field/) turns its units on; any other site off
        field_check = _under(root, paths.config_dir) / FIELD_CHECK_FILE
        check_text = field_check_toml(site)
        if check_text is None:
            field_check.unlink(missing_ok=True)
        else:
            _write_private(field_check, check_text.encode(), 0o644)
        shred_and_delete(site_path)
    except (OSError, JournalError) as exc:
        return FirstBootResult(False, f"cannot write the terminal configuration: {exc}")
    tid = site.terminal["terminal_id"]
    return FirstBootResult(True, f"terminal {tid} provisioned", terminal_id=tid)


def write_result_file(root: Path, result: FirstBootResult) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    status = "OK" if result.ok else "FAILED"
    try:
        (boot_dir(root) / RESULT_FILE_NAME).write_text(f"{status} {stamp}: {result.message}\n")
    except OSError as exc:
        log.warning("cannot write %s: %s", RESULT_FILE_NAME, exc)


def _display_settings(root: Path, paths: TerminalPaths) -> str:
    """terminal.toml text for showing the result: the provisioned configuration, else the
    display and GPIO backends the site file names (when they are valid words), else none."""
    config_file = _under(root, paths.terminal_toml)
    if config_file.is_file():
        return config_file.read_text()
    try:
        hardware = tomllib.loads((boot_dir(root) / SITE_FILE_NAME).read_text()).get("hardware", {})
    except (OSError, ValueError):
        hardware = {}
    if not isinstance(hardware, dict):
        hardware = {}
    display = hardware.get("display")
    gpio = hardware.get("gpio")
    display = display if display in ("png", "st7789", "ili9341", "framebuffer") else "none"
    gpio = gpio if gpio in ("rpi", "sim") else "sim"
    return (f'[terminal]\nstate_dir = "{paths.state_dir}"\n[display]\nbackend = "{display}"\n'
            f'[gpio]\nbackend = "{gpio}"\n')


def show_on_display(root: Path, result: FirstBootResult, paths: TerminalPaths) -> None:
    """Best effort: the display may be the broken part; the result file and journal remain."""
    try:
        from firmware.config import parse_config
        from firmware.feedback import Feedback

        cfg = parse_config(_display_settings(root, paths), Path("terminal.toml"))
        # state (a PNG display's frames) under --root, like everything else here
        state_dir = str(_under(root, str(cfg.state_dir)))
        cfg = dataclasses.replace(
            cfg, terminal=dataclasses.replace(cfg.terminal, state_dir=state_dir)
        )
        feedback = Feedback.from_config(cfg)
        try:
            if result.ok:
                feedback.ready()
            else:
                feedback.message("out_of_service", result.message)
        finally:
            feedback.close()
    except Exception as exc:  # noqa: BLE001 - never let the display hide the result
        log.warning("result not shown on the display: %s", exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pitap-firstboot", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/"), help="root of the terminal fs")
    parser.add_argument("--no-display", action="store_true", help="do not use the display")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="pitap-firstboot: %(message)s")
    paths = TerminalPaths()
    result = provision(args.root, paths)
    write_result_file(args.root, result)
    if not args.no_display:
        show_on_display(args.root, result, paths)
    stream = sys.stdout if result.ok else sys.stderr
    print(f"pitap-firstboot: {'OK' if result.ok else 'FAILED'}: {result.message}", file=stream)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
