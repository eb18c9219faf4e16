"""Where state lives and how it is made: a relative `terminal.state_dir` is relative to the
configuration file (never the current directory), a command that needs the journal refuses to
start a new one (and sends nothing), the state is private whatever the umask, and a state
directory that cannot be written is one line."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_support import run_pitap

from firmware.config import load_config, shipped_config_dir
from firmware.journal import Journal
from firmware.private_files import make_private_dir
from simulators.demo import free_port


@pytest.fixture
def listening_host() -> Iterator[socket.socket]:
    """A TCP port on 127.0.0.1 that listens and never answers: what connected stays queued."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def nobody_connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except BlockingIOError:
        return True
    return False


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_relative_state_dir_is_next_to_the_config_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "site.toml").write_text("[terminal]\nstate_dir = 'var'\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config("shop/site.toml")
    assert cfg.state_dir == tmp_path / "shop" / "var"
    assert cfg.state_path(cfg.journal.file) == tmp_path / "shop" / "var" / "journal.sqlite"
    assert load_config().state_dir == shipped_config_dir().resolve() / "var"
    (tmp_path / "shop" / "abs.toml").write_text("[terminal]\nstate_dir = '/var/lib/pitap'\n")
    assert load_config("shop/abs.toml").state_dir == Path("/var/lib/pitap")


def test_a_provisioned_terminal_keeps_state_in_var_lib_pitap(tmp_path: Path) -> None:
    from test_provision_site import site_text

    from firmware.provision.firstboot import provision

    root = tmp_path / "root"
    (root / "boot" / "firmware").mkdir(parents=True)
    (root / "boot" / "firmware" / "pitap-site.toml").write_text(site_text())
    assert provision(root).ok
    cfg = load_config(root / "etc" / "pitap" / "terminal.toml")
    assert cfg.terminal.state_dir == "/var/lib/pitap"
    assert cfg.state_dir == Path("/var/lib/pitap")


@pytest.mark.parametrize("args", [["settle"], ["settle", "--json"], ["journal"],
                                  ["refund", "1.00", "--of", "1"]])
def test_no_journal_is_one_line_and_nothing_is_sent(
        tmp_path: Path, listening_host: socket.socket, args: list[str]) -> None:
    """The trap: `pitap settle` in another folder used to open a new, empty journal there and
    send a 0500 of zeros, which closed the host's batch with the day's sales in it."""
    shop, elsewhere = tmp_path / "shop", tmp_path / "elsewhere"
    shop.mkdir()
    elsewhere.mkdir()
    port = listening_host.getsockname()[1]
    (shop / "site.toml").write_text(
        f"[terminal]\nstate_dir = 'var'\n[host]\nport = {port}\nconnect_timeout_s = 1.0\n")
    run = run_pitap(*args, "--config", str(shop / "site.toml"), cwd=elsewhere)
    assert run.returncode == 2
    line = one_line(run.stderr)
    assert f"no journal at {shop / 'var' / 'journal.sqlite'}" in line
    assert run.stdout == ""
    assert nobody_connected(listening_host)
    assert list(elsewhere.iterdir()) == [] and not (shop / "var").exists()


def test_settle_from_another_folder_uses_the_terminals_journal(tmp_path: Path) -> None:
    shop, elsewhere = tmp_path / "shop", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (shop / "var").mkdir(parents=True)
    journal = Journal.open(shop / "var" / "journal.sqlite", shop / "var" / "journal.key")
    journal.new_payment("purchase", 1250, 978, "PITAP001")
    journal.close()
    (shop / "site.toml").write_text(
        f"[terminal]\nstate_dir = 'var'\n[host]\nport = {free_port()}\nconnect_timeout_s = 1.0\n")
    run = run_pitap("journal", "--config", str(shop / "site.toml"), cwd=elsewhere)
    assert run.returncode == 0, run.stderr
    assert "12.50 EUR" in run.stdout
    run = run_pitap("settle", "--config", str(shop / "site.toml"), cwd=elsewhere)
    assert run.returncode == 1 and "acquirer did not answer" in run.stderr  # nobody listens
    assert list(elsewhere.iterdir()) == []


def modes_under(top: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(top.stat().st_mode)}
    for path in top.rglob("*"):
        found[str(path.relative_to(top))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_state_is_private_whatever_the_umask(tmp_path: Path) -> None:
    state = tmp_path / "a" / "b" / "state"  # missing parents are made private too
    site = tmp_path / "site.toml"
    site.write_text(f"[terminal]\nstate_dir = '{state}'\npresentment_timeout_s = 1.0\n"
                    f"[reader]\npath = 'udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}'\n"
                    f"[host]\nport = {free_port()}\nconnect_timeout_s = 1.0\n"
                    "[printer]\nbackend = 'file'\npath = 'paper/receipts.bin'\n")
    old = os.umask(0)
    try:
        run = run_pitap("pay", "1.00", "--config", str(site))  # nobody taps: no_card, exit 1
    finally:
        os.umask(old)
    assert run.returncode == 1, run.stderr
    found = modes_under(tmp_path / "a")
    assert {"b/state/journal.sqlite", "b/state/journal.key", "b/state/paper"} <= found.keys()
    assert any(name.startswith("b/state/screens/") for name in found), found
    for name, mode in found.items():
        is_dir = (tmp_path / "a" / name).is_dir()
        assert mode == (0o700 if is_dir else 0o600), (name, oct(mode))


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_make_private_dir(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        make_private_dir(tmp_path / "x" / "y" / "z")
    finally:
        os.umask(old)
    for path in (tmp_path / "x", tmp_path / "x" / "y", tmp_path / "x" / "y" / "z"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    (tmp_path / "x" / "y").chmod(0o755)  # an existing directory is the start-up check's business
    make_private_dir(tmp_path / "x" / "y" / "z")
    assert stat.S_IMODE((tmp_path / "x" / "y").stat().st_mode) == 0o755


@pytest.mark.parametrize("state_dir", ["/proc/1", "/proc/1/pitap", "/dev/null/pitap"])
def test_unwritable_state_dir_is_one_line(tmp_path: Path, state_dir: str) -> None:
    site = tmp_path / "site.toml"
    site.write_text(f"[terminal]\nstate_dir = '{state_dir}'\n")
    run = run_pitap("pay", "1.00", "--config", str(site))
    assert run.returncode == 2
    line = one_line(run.stderr)
    assert str(site) in line and "terminal.state_dir" in line and state_dir in line
