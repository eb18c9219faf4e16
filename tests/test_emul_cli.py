"""`pitap sim pn532`: the path it prints is one nfcpy opens; bad use ends in one line, exit 2."""

from __future__ import annotations

import os

import pytest
from emul_support import TAP_S
from run_support import start_pitap, wait_until

from drivers.nfc import Reader
from firmware.cli import main

needs_dev = pytest.mark.skipif(
    not os.access("/dev", os.W_OK), reason="the default link lives in /dev (needs root)"
)


@needs_dev
def test_the_printed_path_opens_as_an_nfcpy_reader() -> None:
    link = f"/dev/ttyPITAPcli{os.getpid()}"  # its own name: other test runs may be polling
    proc = start_pitap("sim", "pn532", "--link", link, "--seconds", "300")
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path == f"tty:{link[5:]}:pn532"
        reader = Reader(path)
        try:
            assert "PN532" in reader.description
            assert reader.wait_for_card(0.1) is None  # no --profile: an empty field
        finally:
            reader.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    wait_until(lambda: not os.path.lexists(link), seconds=30, every=0.05)
    assert not os.path.lexists(link)  # the emulator cleaned up after itself


@needs_dev
def test_a_wallet_profile_taps_and_the_command_ends_when_its_taps_are_done() -> None:
    link = f"/dev/ttyPITAPcli{os.getpid()}"
    proc = start_pitap("sim", "pn532", "--link", link, "--profile", "visa-online", "--taps", "1",
                       "--seconds", "300")
    try:
        assert proc.stdout is not None
        reader = Reader(proc.stdout.readline().strip())
        try:
            card = reader.wait_for_card(TAP_S)
            assert card is not None
            fci = card.transceive(bytes.fromhex("00A404000E325041592E5359532E444446303100"))
            assert fci[-2:] == b"\x90\x00" and b"2PAY.SYS.DDF01" in fci
            reader.release()  # the tap is over: the phone goes, the command ends
            assert proc.wait(timeout=60) == 0
        finally:
            reader.close()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


def test_an_unknown_profile_is_refused_in_one_line(capsys) -> None:
    assert main(["sim", "pn532", "--profile", "no-such-wallet", "--seconds", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "visa-online" in err[0]


def test_a_link_nfcpy_cannot_open_is_refused_in_one_line(tmp_path, capsys) -> None:
    assert main(["sim", "pn532", "--link", str(tmp_path / "pn532"), "--seconds", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nfcpy opens serial ports as" in err[0]


def test_sim_without_a_chip_is_a_usage_error(capsys) -> None:
    assert main(["sim"]) == 2
    assert "pn532" in capsys.readouterr().err


def test_negative_numbers_are_refused(capsys) -> None:
    assert main(["sim", "pn532", "--taps", "-1"]) == 2
    assert "must not be negative" in capsys.readouterr().err


def test_the_shipped_emulator_config_points_the_reader_at_the_first_link() -> None:
    from firmware.config import load_config, shipped_config_dir

    cfg = load_config(shipped_config_dir() / "pn532-sim.toml")
    assert cfg.reader.path == "tty:ttyPITAP0:pn532"
    assert cfg.data_path(cfg.kernel.aid_table).is_file()  # the shipped data still resolves
