"""The payment loop end to end: nfcpy's udp: link, the kernel, a real TCP host, the journal.

Each test is one thing a shopkeeper relies on: a tap is approved or declined for the right reason,
nothing is charged twice or lost when the host or the phone misbehaves.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from run_support import wait_until

from firmware.terminal import Terminal


@pytest.fixture
def terminal_for(make_config):
    opened: list[Terminal] = []

    def open_(host_port: int, **kw: object) -> Terminal:
        t = Terminal.from_config(make_config(host_port, **kw))
        opened.append(t)
        return t

    yield open_
    for t in opened:
        t.close()


def test_visa_phone_is_approved_online(host_sim, terminal_for, phone, tmp_path: Path) -> None:
    term = terminal_for(host_sim.port)
    phone("visa-online", term.cfg.reader.path)
    result = term.pay(1250)
    assert result.outcome == "approved", result.reason
    assert result.scheme == "visa"
    assert len(result.auth_code) == 6
    assert 0 < result.card_in_field_ms < result.total_ms
    assert term.journal.payment(result.id)["outcome"] == "approved"
    # The customer never sees the full token: first 6 / last 4 at most.
    assert "*" in result.masked_pan and len(result.masked_pan.replace("*", "")) <= 10
    assert any(Path(term.cfg.display.directory).glob("*.png"))


def test_mastercard_phone_is_approved_online(host_sim, terminal_for, phone) -> None:
    term = terminal_for(host_sim.port)
    phone("mastercard-online", term.cfg.reader.path)
    result = term.pay(2399)
    assert (result.outcome, result.scheme) == ("approved", "mastercard"), result.reason


def test_issuer_decline_shows_the_reason(host_sim, terminal_for, phone) -> None:
    term = terminal_for(host_sim.port)
    phone("visa-online", term.cfg.reader.path)
    result = term.pay(4051)
    assert result.outcome == "declined"
    assert result.response_code == "51"
    assert "insufficient" in result.reason.lower()


def test_no_phone_ends_as_no_card(host_sim, terminal_for) -> None:
    term = terminal_for(host_sim.port, presentment_timeout_s=1.5)
    result = term.pay(990)
    assert result.outcome == "no_card"
    assert result.total_ms >= 1500


def test_host_not_listening_is_a_clean_error_with_nothing_to_reverse(
    terminal_for, phone, unused_tcp_port: int
) -> None:
    term = terminal_for(unused_tcp_port)  # nobody listens there
    phone("visa-online", term.cfg.reader.path)
    result = term.pay(1250)
    assert result.outcome == "error"
    assert "host unavailable" in result.reason
    assert term.journal.queue("reversal") == []
    assert term.journal.payment(result.id)["card_data_kept"] is False


def assert_reversed(term: Terminal, host_sim, payment_id: int, stan: int) -> None:
    """Store-and-forward delivers the reversal: the journal says reversed, the host's ledger
    no longer counts the charge, and nothing is left in the queue."""
    states = lambda: [h["state"] for h in term.journal.history(payment_id)]  # noqa: E731
    assert wait_until(lambda: "reversed" in states())
    rows = [r for r in host_sim.ledger.transactions() if int(str(r["stan"])) == stan]
    assert rows and all(r["reversed"] for r in rows if r["approved"])
    assert term.journal.queue("reversal") == []


def test_host_that_never_answers_gets_reversed(host_sim, terminal_for, phone) -> None:
    term = terminal_for(host_sim.port, response_timeout_s=1.0)
    phone("visa-online", term.cfg.reader.path)
    result = term.pay(1296)  # ...96: the simulator never answers
    assert result.outcome == "error"
    assert "reversal" in result.reason
    assert_reversed(term, host_sim, result.id, result.stan)


def test_phone_leaving_mid_flow_ends_as_try_again(host_sim, terminal_for, phone) -> None:
    term = terminal_for(host_sim.port, presentment_timeout_s=3.0)
    phone("leaves-field", term.cfg.reader.path)
    result = term.pay(1250)
    assert result.outcome == "try_again"
    assert result.taps >= 1


@pytest.mark.parametrize("profile", ["malformed-tlv", "unknown-aid", "wrong-sw"])
def test_phone_answering_garbage_is_declined_cleanly(host_sim, terminal_for, phone,
                                                     profile: str) -> None:
    term = terminal_for(host_sim.port)
    phone(profile, term.cfg.reader.path)
    result = term.pay(1250)
    assert result.outcome == "declined", (profile, result.reason)
    assert result.reason
    assert term.journal.queue("reversal") == []



def test_host_dying_between_payments_ends_cleanly(host_sim, terminal_for, phone) -> None:
    term = terminal_for(host_sim.port)
    phone("visa-online", term.cfg.reader.path, taps=2)
    assert term.pay(1250).outcome == "approved"
    host_sim.stop()
    result = term.pay(1250)
    assert result.outcome == "error"
    if "reversal" in result.reason:  # the kept connection took the request before failing
        assert [item.payment_id for item in term.journal.queue("reversal")] == [result.id]
    else:
        assert "host unavailable" in result.reason
        assert term.journal.queue("reversal") == []
    assert term.journal.payment(result.id)["outcome"] == "error"


def test_connection_dropped_mid_authorization_is_reversed(host_sim, terminal_for, phone) -> None:
    term = terminal_for(host_sim.port, response_timeout_s=2.0)
    phone("mastercard-online", term.cfg.reader.path)
    result = term.pay(1297)  # ...97: the simulator drops the connection instead of answering
    assert result.outcome == "error"
    assert_reversed(term, host_sim, result.id, result.stan)


def test_refund_of_a_payment_goes_to_the_same_card(host_sim, terminal_for, phone) -> None:
    term = terminal_for(host_sim.port)
    phone("visa-online", term.cfg.reader.path, taps=2)
    sale = term.pay(2000)
    assert sale.outcome == "approved"
    refund = term.refund(1500, of_payment=sale.id)
    assert refund.outcome == "approved", refund.reason
    assert refund.txn_type == "refund"
    assert term.journal.payment(refund.id)["refund_of"] == sale.id
    kinds = [r["kind"] for r in host_sim.ledger.transactions() if r["approved"]]
    assert kinds == ["sale", "refund"]
    assert term.journal.payment(sale.id)["state"] != "refunded"  # 5.00 of it is still paid


def test_refund_to_another_card_is_declined_and_not_sent(host_sim, terminal_for, phone) -> None:
    term = terminal_for(host_sim.port)
    phone("mastercard-online", term.cfg.reader.path)
    sale = term.pay(2000)
    assert sale.outcome == "approved"
    phone("visa-online", term.cfg.reader.path)  # somebody else's phone
    refund = term.refund(2000, of_payment=sale.id)
    assert refund.outcome == "declined"
    assert "not the card that paid" in refund.reason
    assert [r["kind"] for r in host_sim.ledger.transactions()] == ["sale"]


def test_refund_beyond_what_was_paid_is_refused_before_any_tap(host_sim, terminal_for,
                                                                phone) -> None:
    term = terminal_for(host_sim.port)
    phone("visa-online", term.cfg.reader.path)
    sale = term.pay(1000)
    before = len(term.journal.payments())
    with pytest.raises(ValueError, match="left to refund"):
        term.refund(1001, of_payment=sale.id)
    with pytest.raises(ValueError, match="no payment"):
        term.refund(100, of_payment=sale.id + 99)
    assert len(term.journal.payments()) == before
