"""Faults on the serial line between the host and the emulated PN532, seen through drivers.nfc.

Every fault must end in a recovered exchange or a clear ReaderFault / CardRemoved within a bounded
time (never a hang, never another exception), and the reader must work again afterwards.
"""

from __future__ import annotations

import time

import pytest
from emul_support import NO_HANG_S, PPSE_FCI, SELECT_PPSE, TAP_S, TinyApplet

from drivers.nfc import CardRemoved, Reader, ReaderFault
from simulators.pn532.emulator import LineFault

GLITCHES = [f for f in LineFault if f is not LineFault.SILENCE]  # one-off: the line works again
IN_COMMUNICATE_THRU = 0x42
IN_LIST_PASSIVE_TARGET = 0x4A
RF_CONFIGURATION = 0x32
READ_REGISTER = 0x06
WRITE_REGISTER = 0x08


@pytest.fixture
def emu(emu):
    """The emulated PN532 (conftest) with a phone in its field."""
    emu.place_phone(TinyApplet())
    return emu


def works_again(reader: Reader) -> bool:
    """After a fault: a fresh tap reads the PPSE again."""
    reader.release()
    card = reader.wait_for_card(TAP_S)
    return card is not None and card.transceive(SELECT_PPSE) == PPSE_FCI


@pytest.mark.parametrize("fault", GLITCHES, ids=lambda f: f.name)
def test_a_line_fault_during_an_apdu_recovers_or_ends_as_card_removed(emu, reader, fault) -> None:
    card = reader.wait_for_card(TAP_S)
    assert card is not None
    emu.inject(fault, command=IN_COMMUNICATE_THRU)
    started = time.monotonic()
    try:
        response: bytes | None = card.transceive(SELECT_PPSE)  # nfcpy retried: recovered
    except CardRemoved:
        response = None  # the kernel turns this into "try again"
    assert response in (PPSE_FCI, None)
    assert time.monotonic() - started < NO_HANG_S
    assert works_again(reader)


@pytest.mark.parametrize(
    "command", [IN_LIST_PASSIVE_TARGET, RF_CONFIGURATION], ids=["InListPassiveTarget", "RFConfig"]
)
@pytest.mark.parametrize("fault", GLITCHES, ids=lambda f: f.name)
def test_a_line_fault_while_polling_finds_the_card_or_is_a_reader_fault(
    emu, reader, fault, command
) -> None:
    emu.inject(fault, command=command)
    started = time.monotonic()
    try:
        card = reader.wait_for_card(TAP_S)
        assert card is not None and card.transceive(SELECT_PPSE) == PPSE_FCI
    except ReaderFault as exc:
        assert "failed while polling" in str(exc)
    assert time.monotonic() - started < NO_HANG_S
    assert works_again(reader)


@pytest.mark.parametrize("command", [READ_REGISTER, WRITE_REGISTER], ids=["Read", "Write"])
def test_a_line_fault_during_activation_is_retried(emu, reader, command) -> None:
    emu.inject(LineFault.BAD_RESPONSE_CHECKSUM, command=command)
    card = reader.wait_for_card(TAP_S)
    assert card is not None and card.transceive(SELECT_PPSE) == PPSE_FCI


@pytest.mark.parametrize("command", [0x02, 0x00], ids=["GetFirmwareVersion", "Diagnose"])
@pytest.mark.parametrize("fault", GLITCHES, ids=lambda f: f.name)
def test_a_line_fault_while_opening_the_reader_opens_it_or_is_a_reader_fault(
    emu, fault, command
) -> None:
    emu.inject(fault, command=command)
    started = time.monotonic()
    try:
        reader = Reader(emu.nfcpy_path)
    except ReaderFault as exc:
        assert "cannot open NFC reader" in str(exc)
    else:
        try:
            card = reader.wait_for_card(TAP_S)
            assert card is not None and card.transceive(SELECT_PPSE) == PPSE_FCI
        finally:
            reader.close()
    assert time.monotonic() - started < NO_HANG_S


def test_a_chip_that_goes_silent_mid_payment_ends_as_card_removed(emu, reader) -> None:
    card = reader.wait_for_card(TAP_S)
    assert card is not None
    emu.go_silent()
    started = time.monotonic()
    with pytest.raises(CardRemoved):
        card.transceive(SELECT_PPSE)
    assert time.monotonic() - started < NO_HANG_S
    with pytest.raises(ReaderFault):
        reader.wait_for_card(1.0)
    emu.go_silent(False)
    assert works_again(reader)


def test_a_silent_chip_cannot_be_opened(emu) -> None:
    emu.go_silent()
    started = time.monotonic()
    with pytest.raises(ReaderFault, match="cannot open NFC reader"):
        Reader(emu.nfcpy_path)
    assert time.monotonic() - started < NO_HANG_S


def test_a_phone_taken_away_mid_exchange_ends_as_card_removed(emu, reader) -> None:
    card = reader.wait_for_card(TAP_S)
    assert card is not None
    assert card.transceive(SELECT_PPSE) == PPSE_FCI
    emu.remove_phone()
    started = time.monotonic()
    with pytest.raises(CardRemoved):
        card.transceive(SELECT_PPSE)
    assert time.monotonic() - started < NO_HANG_S
    assert reader.wait_for_card(0.2) is None


def test_a_terminal_that_died_leaves_the_chip_at_921600_baud_until_a_power_cycle(emu) -> None:
    crashed = Reader(emu.nfcpy_path)
    assert emu.baud == 921600
    crashed.clf.device.chipset.transport.tty.close()  # killed: no close(), no 115200, no sleep
    with pytest.raises(ReaderFault, match="cannot open NFC reader"):
        Reader(emu.nfcpy_path)  # nfcpy starts at 115200: the chip hears only noise
    assert emu.stats.garbled > 0
    emu.power_cycle()
    reader = Reader(emu.nfcpy_path)
    try:
        assert works_again(reader)
    finally:
        reader.close()


def test_line_faults_now_and_then_while_polling_do_not_add_up(emu, reader) -> None:
    """Over a long wait for a tap, a glitch now and then is retried: only faults in a row
    (a dead line) end the wait as a reader fault."""
    import threading

    emu.remove_phone()  # an empty field: the reader polls, and polls
    for after in (1, 4, 8):  # three glitches, each between polls that went well
        emu.inject(LineFault.BAD_RESPONSE_CHECKSUM, command=IN_LIST_PASSIVE_TARGET, after=after)
    stop = threading.Event()

    def tap_after_the_glitches() -> None:
        while emu.chip.commands_seen.get("InListPassiveTarget", 0) < 16 and not stop.is_set():
            stop.wait(0.01)
        emu.place_phone(TinyApplet())

    customer = threading.Thread(target=tap_after_the_glitches)
    customer.start()
    try:
        card = reader.wait_for_card(TAP_S)
    finally:
        stop.set()
        customer.join(5)
    assert card is not None and card.transceive(SELECT_PPSE) == PPSE_FCI
