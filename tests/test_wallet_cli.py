"""`pitap wallet`: the list a developer reads, errors as one line + exit 2, and a real tap."""

from __future__ import annotations

import queue
import socket
import threading

import pytest
from run_support import start_pitap
from wallet_helpers import PPSE

from drivers.nfc import Reader
from firmware.cli import main
from firmware.emv.outcome import mask_pan
from simulators.demo import free_port
from simulators.wallet.phone import get_profile, profile_names

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning"
)

REQUIRED = [
    "visa-online",
    "visa-offline",
    "mastercard-online",
    "mastercard-see-phone",
    "rupay-online",
    "bad-signature",
    "expired-cert",
    "malformed-tlv",
    "wrong-sw",
    "leaves-field",
    "slow-wtx",
    "unknown-aid",
]


def test_list_shows_every_profile_with_masked_token(capsys):
    assert main(["wallet", "--list"]) == 0
    out = capsys.readouterr().out
    for name in REQUIRED:
        assert name in out
        token = get_profile(name).token
        assert token not in out  # never the whole token
        assert mask_pan(token) in out  # first 6 / last 4, as everywhere
    assert set(REQUIRED) <= set(profile_names())


@pytest.mark.parametrize(
    "argv",
    [
        ["wallet", "--profile", "no-such-phone", "--reader", "udp:127.0.0.1:9"],
        ["wallet", "--profile", "visa-online", "--reader", "tty:AMA0:pn532"],
        ["wallet"],
        ["wallet", "--profile", "visa-online", "--taps", "0"],
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pitap wallet:")


def test_wallet_command_answers_a_tap(capsys):
    path = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    result: list[int] = []
    argv = ["wallet", "--profile", "visa-online", "--reader", path, "--timeout", "60"]
    thread = threading.Thread(target=lambda: result.append(main(argv)))
    thread.start()
    reader = Reader(path)
    try:
        card = reader.wait_for_card(30)
        assert card is not None
        assert card.transceive(PPSE)[-2:] == b"\x90\x00"
    finally:
        reader.release()
        reader.close()
        thread.join(60)
    assert result == [0]
    assert "1 of 1 tap(s) answered" in capsys.readouterr().out


def test_each_line_reaches_a_pipe_as_it_happens(tmp_path):
    """Redirected (a log file, `| tee`), each tap's line is there while the wallet still runs."""
    path = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    proc = start_pitap("wallet", "--profile", "visa-online", "--reader", path, "--taps", "2",
                       "--timeout", "240", cwd=tmp_path)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=120).startswith("visa-online: waiting for 2 tap(s) on udp:")
        reader = Reader(path)
        try:
            card = reader.wait_for_card(120)
            assert card is not None
            assert card.transceive(PPSE)[-2:] == b"\x90\x00"
        finally:
            reader.release()
            reader.close()
        assert lines.get(timeout=120).startswith("tap 1: 1 APDUs, ended by ")
        assert proc.poll() is None  # still waiting for the second tap
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
