"""UPI from the keypad (`pitap run`'s service): with the shop's currency INR and UPI at hand,
f2 (B on the membrane keypad, s on a keyboard) with an amount keyed takes it by UPI; a card the
issuer declines for a PIN is followed by "Pay by UPI instead?", and f2 then shows the QR for
the same amount. The real terminal loop (a phone on nfcpy's udp: link, the host simulator),
the real PSP simulator over HTTP, a real journal."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator

import pytest

from drivers.keypad import KeyboardKeypad
from firmware.money import CURRENCIES
from firmware.payment import PaymentState, Tender
from firmware.reasons import Reason
from firmware.service import TerminalService
from firmware.terminal import Terminal
from firmware.upi.config import UpiSection
from firmware.upi.psp import connect_psp
from firmware.upi.tender import UpiTender
from simulators.upi.psp import PspSimulator

INR = CURRENCIES["INR"]


@pytest.fixture(scope="module")
def psp_sim() -> Iterator[PspSimulator]:
    with PspSimulator(pay_delay_s=0.3) as sim:
        yield sim


def upi_for(terminal: Terminal, url: str) -> UpiTender:
    settings = UpiSection(payee_vpa="pitapdemo@okaxis", mcc="5411", psp_url=url,
                          poll_interval_s=0.2, request_expiry_s=30)
    return UpiTender(terminal.journal, connect_psp(settings), terminal.feedback, settings,
                     terminal.cfg.terminal.terminal_id, terminal.cfg.terminal.merchant_name)


def screens_shown(terminal: Terminal) -> list[str]:
    return [s.name for s in terminal.feedback.recent]


def test_f2_with_an_amount_takes_it_by_upi(make_config, host_sim, psp_sim) -> None:
    terminal = Terminal.from_config(make_config(host_sim.port))
    try:
        service = TerminalService(terminal, KeyboardKeypad(io.StringIO("25000s")),
                                  currency=INR, result_hold_s=0,
                                  upi=upi_for(terminal, psp_sim.url))
        assert service.run() == 1
        (result,) = service.results
        p = terminal.journal.payment(result.id)
        shown = screens_shown(terminal)
    finally:
        terminal.close()
    assert (p.tender, p.state, p.amount, p.currency) == (Tender.UPI, PaymentState.APPROVED,
                                                         25000, 356)
    assert "upi_qr" in shown and "present_card" not in shown


def test_without_upi_f2_with_an_amount_does_nothing(make_config, host_sim) -> None:
    terminal = Terminal.from_config(make_config(host_sim.port))
    try:
        service = TerminalService(terminal, KeyboardKeypad(io.StringIO("25000s")),
                                  currency=INR, result_hold_s=0)
        assert service.run() == 0
        assert terminal.journal.payments() == []
    finally:
        terminal.close()


def test_a_card_that_needs_a_pin_is_offered_upi(make_config, host_sim, phone, psp_sim) -> None:
    cfg = make_config(host_sim.port)
    phone("rupay-online", cfg.reader.path)
    terminal = Terminal.from_config(dataclasses.replace(cfg))
    try:
        service = TerminalService(terminal, KeyboardKeypad(io.StringIO("4065\ns")),
                                  currency=INR, result_hold_s=0, upi=upi_for(terminal, psp_sim.url))
        service.run()
        card, upi = service.results
        paid = terminal.journal.payment(upi.id)
        shown = screens_shown(terminal)
    finally:
        terminal.close()
    assert card.outcome == "declined" and card.decline is Reason.PIN_NEEDED
    assert (paid.tender, paid.state, paid.amount) == (Tender.UPI, PaymentState.APPROVED, 4065)
    assert shown.index("declined") < shown.index("upi_offer") < shown.index("upi_qr")
