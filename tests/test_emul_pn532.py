"""The emulated PN532 driven by nfcpy's own pn532 driver over a pty, through drivers.nfc.

These run the exact code a Pi runs for `tty:AMA0:pn532` (nfcpy's TTY transport on pyserial, its
pn532/pn53x chip driver, its Type4Tag ISO-DEP) against the chip emulated at the wire.
"""

from __future__ import annotations

import time
from pathlib import Path

from emul_support import NO_HANG_S, PPSE_FCI, SELECT_PPSE, TAP_S, TinyApplet, long_echo

from drivers.nfc import Reader


def test_nfcpy_initialises_the_chip_as_on_a_pi(emu, reader) -> None:
    assert "PN532v1.6" in reader.description
    seen = emu.chip.commands_seen
    # nfcpy's pn532.init and Device.__init__: version, SAM normal mode, the faster UART, the
    # line test (an extended frame both ways), no automatic RATS, RF timings and analog settings.
    for command in (
        "GetFirmwareVersion",
        "SAMConfiguration",
        "SetSerialBaudRate",
        "Diagnose",
        "SetParameters",
        "RFConfiguration",
    ):
        assert seen.get(command), command
    assert emu.chip.sam_mode == 1
    assert emu.baud == 921600
    assert emu.chip.parameters == 0  # nfcpy does RATS and ISO-DEP itself
    assert emu.chip.analog[0x0A] == bytes.fromhex("59F43F114D85616F266287")
    assert emu.stats.bad_frames == []


def test_an_empty_field_yields_no_card(emu, reader) -> None:
    started = time.monotonic()
    assert reader.wait_for_card(0.2) is None
    assert time.monotonic() - started < 0.2 + NO_HANG_S  # it gives up: a bound, not a speed
    assert emu.chip.commands_seen["InListPassiveTarget"] >= 1  # it did poll


def test_a_phone_in_the_field_is_activated_and_answers_apdus(emu, reader) -> None:
    applet = TinyApplet()
    phone = emu.place_phone(applet)
    card = reader.wait_for_card(TAP_S)
    assert card is not None
    assert card.uid == phone.uid and phone.uid[0] == 0x08
    assert phone.state == "protocol"  # nfcpy sent RATS through InCommunicateThru
    assert card.transceive(SELECT_PPSE) == PPSE_FCI
    assert applet.apdus == [SELECT_PPSE]
    assert card.apdus == 1 and card.bytes_received == len(PPSE_FCI)


def test_long_commands_and_responses_are_chained_both_ways(emu, reader) -> None:
    applet = TinyApplet()
    phone = emu.place_phone(applet, ats=bytes.fromhex("0575807002"))  # FSC 64
    card = reader.wait_for_card(TAP_S)
    assert card is not None
    command = long_echo(200)  # 205 bytes > FSC 64: nfcpy chains it
    assert card.transceive(command) == command[5:] + b"\x90\x00"
    assert applet.apdus[-1] == command  # the phone put the chain back together
    assert card.transceive(b"\x80\xee\x00\x00\x00") == bytes(range(256)) + b"\x90\x00"
    assert phone.apdus == 2


def test_a_slow_phone_asks_for_more_time_and_nfcpy_grants_it(emu, reader) -> None:
    applet = TinyApplet(delay=0.25)  # > FWT (77 ms): covered by S(WTX)
    emu.place_phone(applet)
    card = reader.wait_for_card(TAP_S)
    assert card is not None
    started = time.monotonic()
    assert card.transceive(SELECT_PPSE) == PPSE_FCI
    assert time.monotonic() - started >= 0.2


def test_release_switches_the_field_off_and_the_next_tap_is_a_fresh_one(emu, reader) -> None:
    applet = TinyApplet()
    phone = emu.place_phone(applet)
    card = reader.wait_for_card(TAP_S)
    assert card is not None
    resets = applet.resets
    reader.release()
    assert not emu.field.carrier and phone.state == "off"
    card = reader.wait_for_card(TAP_S)
    assert card is not None and card.transceive(SELECT_PPSE) == PPSE_FCI
    assert applet.resets == resets + 1


def test_queued_taps_come_and_go_like_a_customer(emu, reader) -> None:
    applet = TinyApplet()
    now = [0.0]
    emu.field.clock = lambda: now[0]  # the customer's pace: the gap passes when the test says
    emu.queue_taps(applet, taps=2, gap=0.1)
    first = reader.wait_for_card(TAP_S)
    assert first is not None and first.transceive(SELECT_PPSE) == PPSE_FCI
    reader.release()  # tap 1 over: the phone leaves
    assert reader.wait_for_card(0.05) is None
    now[0] += 0.1  # ...and comes back
    second = reader.wait_for_card(TAP_S)
    assert second is not None and second.transceive(SELECT_PPSE) == PPSE_FCI
    reader.release()
    assert emu.field.taps_done == 2
    assert reader.wait_for_card(0.3) is None


def test_the_reader_can_be_closed_and_opened_again(emu) -> None:
    first = Reader(emu.nfcpy_path)
    first.close()
    assert emu.asleep and emu.baud == 115200  # nfcpy put the chip back to 115200 and to sleep
    emu.place_phone(TinyApplet())
    again = Reader(emu.nfcpy_path)
    try:
        card = again.wait_for_card(TAP_S)
        assert card is not None and card.transceive(SELECT_PPSE) == PPSE_FCI
    finally:
        again.close()


def test_without_root_a_com_link_in_the_working_directory_opens_as_well(
    tmp_path: Path, monkeypatch
) -> None:
    from simulators.pn532.emulator import Pn532Emulator

    monkeypatch.chdir(tmp_path)  # nfcpy opens com:COM7 as the relative path COM7
    with Pn532Emulator(link=tmp_path / "COM7") as emu:
        assert emu.nfcpy_path == "com:COM7:pn532"
        emu.place_phone(TinyApplet())
        reader = Reader(emu.nfcpy_path)
        try:
            card = reader.wait_for_card(TAP_S)
            assert card is not None and card.transceive(SELECT_PPSE) == PPSE_FCI
        finally:
            reader.close()
    assert not (tmp_path / "COM7").exists()
