"""Two cards or phones in the field at once, on the emulated PN532 through nfcpy's pn532 driver.

EMV: a terminal that finds more than one card shows "Present one card only", reads neither, and
waits until one card is there. The chip lists up to two targets (InListPassiveTarget MaxTg 2,
NbTg in its answer); drivers.nfc asks it once per sensed card and raises MoreThanOneCard.
"""

from __future__ import annotations

import dataclasses
import socket
import threading

import pytest
from emul_support import PPSE_FCI, SELECT_PPSE, TAP_S, TinyApplet

from drivers.nfc import LIST_TWO_AT_106A, MoreThanOneCard, Reader
from firmware.journal import Journal
from firmware.terminal import Terminal
from simulators.demo import free_port
from simulators.wallet.phone import CardApplet

IN_LIST_PASSIVE_TARGET = 0x4A


def list_targets(reader, max_tg: int) -> bytearray:
    """InListPassiveTarget at 106A straight through nfcpy's chipset, as drivers.nfc sends it."""
    chipset = reader.clf.device.chipset
    return chipset.command(IN_LIST_PASSIVE_TARGET, bytearray([max_tg, 0x00]), TAP_S)


def test_the_chip_answers_as_many_targets_as_asked_for_and_present(emu, reader) -> None:
    first = emu.place_phone(TinyApplet())
    second = emu.add_phone(TinyApplet())
    assert list_targets(reader, 1)[0] == 1
    both = list_targets(reader, 2)
    assert both[0] == 2  # NbTg
    assert first.uid in both and second.uid in both
    assert both[1] == 1 and both[1 + 1 + 2 + 1 + 1 + 4] == 2  # Tg 1 then Tg 2
    emu.remove_phone(second)
    assert list_targets(reader, 2)[0] == 1
    assert bytes(LIST_TWO_AT_106A) == bytes([2, 0])


def test_two_phones_in_the_field_are_refused_and_neither_is_activated(emu, reader) -> None:
    applets = (TinyApplet(), TinyApplet())
    phones = (emu.place_phone(applets[0]), emu.add_phone(applets[1]))
    assert reader.counts_cards
    with pytest.raises(MoreThanOneCard):
        reader.wait_for_card(TAP_S)
    assert not emu.field.carrier  # the reader switched its field off
    assert all(phone.state == "off" for phone in phones)  # no RATS reached either phone
    assert all(applet.apdus == [] for applet in applets)
    assert "InCommunicateThru" not in emu.chip.commands_seen


def test_once_one_phone_is_taken_away_the_other_is_read(emu, reader) -> None:
    applet = TinyApplet()
    phone = emu.place_phone(applet)
    other = emu.add_phone(TinyApplet())
    with pytest.raises(MoreThanOneCard):
        reader.wait_for_card(TAP_S)
    emu.remove_phone(other)
    card = reader.wait_for_card(TAP_S)
    assert card is not None and card.uid == phone.uid
    assert card.transceive(SELECT_PPSE) == PPSE_FCI
    assert applet.apdus == [SELECT_PPSE]


def test_one_phone_costs_one_extra_command_before_activation(emu, reader) -> None:
    emu.place_phone(TinyApplet())
    listed_before = emu.chip.commands_seen.get("InListPassiveTarget", 0)
    card = reader.wait_for_card(TAP_S)
    assert card is not None
    # nfcpy's sense (MaxTg 1) and the count (MaxTg 2): the phone was there at the first poll
    assert emu.chip.commands_seen["InListPassiveTarget"] - listed_before == 2


def test_a_reader_that_cannot_count_targets_says_so() -> None:
    reader = Reader(f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}")
    try:
        assert not reader.counts_cards  # nfcpy's udp driver has no chip to ask
        assert reader.count_targets() == 1  # so a sensed card is taken as the only one
    finally:
        reader.close()


@pytest.fixture
def terminal_on(make_config):
    """A Terminal on the emulated PN532, with the host simulator on loopback."""
    terminals: list[Terminal] = []

    def make(emu, host_port: int, presentment_timeout_s: float) -> Terminal:
        cfg = make_config(host_port, presentment_timeout_s=presentment_timeout_s)
        cfg = dataclasses.replace(cfg, reader=dataclasses.replace(cfg.reader, path=emu.nfcpy_path))
        terminal = Terminal.from_config(cfg)
        terminals.append(terminal)
        return terminal

    yield make
    for terminal in terminals:
        terminal.close()


def journal_of(terminal: Terminal) -> Journal:
    cfg = terminal.cfg
    return Journal.open(cfg.state_path(cfg.journal.file), cfg.state_path(cfg.journal.key_file))


def test_two_phones_until_the_timeout_show_one_card_only_and_charge_nothing(
    emu, host_sim, terminal_on
) -> None:
    phones = (emu.place_phone(CardApplet("visa-online")),
              emu.add_phone(CardApplet("mastercard-online")))
    terminal = terminal_on(emu, host_sim.port, presentment_timeout_s=1.5)
    result = terminal.pay(1250)
    assert result.outcome == "no_card"
    assert "more than one card" in result.reason
    assert result.taps == 0 and not result.auth_code
    names = [screen.name for screen in terminal.feedback.recent]
    assert names.count("one_card_only") == 1  # shown once, not once a poll
    assert names.index("present_card") < names.index("one_card_only")
    assert "processing" not in names and "approved" not in names
    assert all(phone.apdus == 0 for phone in phones)  # not one APDU reached a phone
    journal = journal_of(terminal)
    try:
        assert [p.outcome for p in journal.payments()] == ["no_card"]
        states = [h.state for h in journal.history(result.id)]
        assert "try_again" in states and "awaiting_reply" not in states
        assert journal.queue() == []
    finally:
        journal.close()


def test_when_one_of_two_phones_is_taken_away_the_payment_goes_through(
    emu, host_sim, terminal_on
) -> None:
    emu.place_phone(CardApplet("visa-online"))
    second = emu.add_phone(CardApplet("mastercard-online"))
    terminal = terminal_on(emu, host_sim.port, presentment_timeout_s=15.0)
    shown = threading.Event()
    message = terminal.feedback.message

    def message_and_take_away(kind: str, detail: str = "") -> None:
        message(kind, detail)
        if kind == "one_card_only":  # the customer sees the screen and takes one phone back
            shown.set()
            threading.Timer(0.3, emu.remove_phone, args=(second,)).start()

    terminal.feedback.message = message_and_take_away  # type: ignore[method-assign]
    result = terminal.pay(1250)
    assert shown.is_set()
    assert (result.outcome, result.scheme) == ("approved", "visa"), result.reason
    assert result.taps == 1 and second.apdus == 0
    names = [screen.name for screen in terminal.feedback.recent]
    assert names.index("one_card_only") < names.index("processing") < names.index("approved")
    journal = journal_of(terminal)
    try:
        assert [p.outcome for p in journal.payments()] == ["approved"]
    finally:
        journal.close()
