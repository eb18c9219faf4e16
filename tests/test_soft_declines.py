"""SCA soft declines through the real stack (a phone on nfcpy's udp: driver, the host simulator
on 127.0.0.1, the journal): the issuer wants the card's PIN (Mastercard 65, Visa 70 and 1A), which
a phone-only terminal cannot take, so the screen says what works, and never "insert card"."""

from __future__ import annotations

import pytest

from firmware.reasons import Reason
from firmware.terminal import Terminal
from ui.lang import available, load

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


@pytest.mark.parametrize(("profile", "amount", "code"), [
    ("mastercard-online", 4065, "65"),
    ("visa-online", 4070, "70"),
    ("visa-online", 4071, "1A"),
])
def test_an_sca_soft_decline_says_pay_with_the_phone_wallet(
        host_sim, make_config, phone, profile: str, amount: int, code: str) -> None:
    term = Terminal.from_config(make_config(host_sim.port))
    try:
        phone(profile, term.cfg.reader.path)
        result = term.pay(amount)
        payment = term.journal.payment(result.id)
        shown = [s for s in term.feedback.recent if s.name == "declined"]
    finally:
        term.close()
    assert (result.outcome, result.response_code, result.decline) == (
        "declined", code, Reason.PIN_NEEDED)
    assert (payment.outcome, payment.response_code) == ("declined", code)
    (screen,) = shown
    assert screen.shows("This card needs a PIN here: pay with your phone wallet")
    assert not any("insert" in text.lower() for text in screen.strings)


@pytest.mark.parametrize("code", available())
def test_no_language_tells_a_phone_only_customer_to_insert_a_card(code: str) -> None:
    words = load(code).t("reason_pin_needed").lower()
    assert "insert" not in words and "inserisci" not in words and "डालें" not in words
