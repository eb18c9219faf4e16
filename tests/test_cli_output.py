"""What `pitap` prints at each verbosity: by default the command's own output and one sentence per
problem, no log line (ours or nfcpy's); `-v` shows the log from INFO, nfcpy's lines among them."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from journal_support import auth_request
from run_support import run_pitap, wait_until

from firmware.config import load_config
from firmware.journal import Journal
from simulators.demo import free_port

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR) ", re.M)


def site(tmp_path: Path, reader: str, host_port: int = 9, timeout_s: float = 60.0) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f'[terminal]\nstate_dir = "{tmp_path / "state"}"\n'
                    f"presentment_timeout_s = {timeout_s}\n"
                    f'[reader]\npath = "{reader}"\n[host]\nport = {host_port}\n'
                    "connect_timeout_s = 1.0\n")
    return path


@pytest.mark.parametrize(("command", "code"), [(("pay", "1.00"), 2), (("run",), 1)])
def test_missing_reader_is_one_line(tmp_path: Path, command: tuple[str, ...], code: int) -> None:
    cfg = site(tmp_path, "usb:ffff:ffff")
    done = run_pitap(*command, "--config", str(cfg), cwd=tmp_path)
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot open NFC reader 'usb:ffff:ffff'" in lines[0]
    assert lines[0].startswith("pitap: ") and not LOG_LINE.search(done.stderr)

    verbose = run_pitap("-v", *command, "--config", str(cfg), cwd=tmp_path)
    assert verbose.returncode == code
    assert "ERROR nfc.clf: no reader available on path usb:ffff:ffff" in verbose.stderr


@pytest.fixture
def leaving_phone() -> Iterator[Callable[[], str]]:
    """Start a phone that answers a few APDUs, then leaves the field mid-tap; returns its reader
    path once it listens (on a fresh port again if another program took the first one)."""
    from simulators.wallet.phone import SimulatedPhone

    phones: list[SimulatedPhone] = []

    def start() -> str:
        for _attempt in range(5):
            reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
            phone = SimulatedPhone("leaves-field", reader)
            phones.append(phone)
            thread = phone.start(taps=1, timeout=240)
            assert wait_until(lambda p=phone, t=thread: p.ready.is_set() or not t.is_alive(), 120)
            if phone.ready.is_set():
                return reader
        raise AssertionError("no free UDP port for the phone")

    yield start
    for phone in phones:
        phone.stop()


def test_phone_leaving_mid_tap_shows_nfcpy_lines_only_with_v(
    tmp_path: Path, host_sim: object, leaving_phone: Callable[[], str]
) -> None:
    cfg = site(tmp_path, leaving_phone(), host_sim.port)
    quiet = run_pitap("pay", "1.00", "--config", str(cfg), cwd=tmp_path)
    assert quiet.returncode == 1
    assert " try_again " in quiet.stdout and "card left the field" in quiet.stdout
    assert quiet.stderr == ""

    cfg = site(tmp_path, leaving_phone(), host_sim.port)
    verbose = run_pitap("-v", "pay", "1.00", "--config", str(cfg), cwd=tmp_path)
    assert verbose.returncode == 1 and " try_again " in verbose.stdout
    assert "WARNING nfc.tag.tt4: ISO-DEP timeout error" in verbose.stderr
    assert "INFO firmware.terminal: payment 2 tap 1: try_again" in verbose.stderr
    assert "DEBUG" not in verbose.stderr


def test_what_recovery_did_is_said_in_sentences(tmp_path: Path, host_sim: object) -> None:
    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    cfg = site(tmp_path, reader, host_sim.port, timeout_s=1.0)
    journal = Journal.from_config(load_config(cfg))
    sent = journal.new_payment("purchase", 1000, 978, "PITAP001")
    journal.record(sent, "card_read", scheme="visa", masked_pan="476173******0010")
    journal.keep_card_data(sent, auth_request(amount=1000))
    journal.record(sent, "awaiting_reply", stan=journal.next_stan())  # then the power went
    reading = journal.new_payment("purchase", 200, 978, "PITAP001")
    journal.record(reading, "card_read")
    journal.close()

    done = run_pitap("pay", "3.00", "--config", str(cfg), cwd=tmp_path)  # nobody taps
    assert done.returncode == 1 and " no_card " in done.stdout
    assert done.stderr.splitlines() == [
        f"pitap: payment {sent}: cut off while waiting for the host; a reversal is queued so "
        "that the host drops any charge",
        f"pitap: payment {reading}: interrupted before anything was sent; closed, nothing "
        "charged",
    ]
