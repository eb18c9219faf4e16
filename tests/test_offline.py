"""[offline]: keep selling while the acquirer is unreachable, within the merchant's limits.

Real parts: nfcpy's udp: link with a simulated phone, the kernel, the host simulator on
127.0.0.1 switched off (it stops listening: connects are refused) and on again, the journal's
SQLite file. What a shopkeeper relies on: a stored payment says Approved and waits, encrypted,
until the host answers; then it goes once, and what the host declines later is reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest

from firmware.config import Config
from firmware.payment import PaymentState
from firmware.reasons import Reason
from firmware.terminal import Terminal

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


@pytest.fixture
def offline_terminal(make_config) -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_(host_port: int, response_timeout_s: float = 10.0, **limits: object) -> Terminal:
        cfg: Config = make_config(host_port, response_timeout_s=response_timeout_s)
        cfg = dataclasses.replace(cfg, offline=dataclasses.replace(
            cfg.offline, enabled=True, **limits))
        t = Terminal.from_config(cfg)
        opened.append(t)
        return t

    yield open_
    for t in opened:
        t.close()


def ledger_rows(host_sim, stan: int) -> list[dict[str, object]]:
    return [r for r in host_sim.ledger.transactions() if int(str(r["stan"])) == stan]


def test_a_payment_is_stored_while_the_host_is_down_then_forwarded_once(
        host_sim, offline_terminal, phone) -> None:
    term = offline_terminal(host_sim.port)
    host_sim.go_down()
    phone("visa-online", term.cfg.reader.path)
    result = term.pay(1250)
    assert (result.outcome, result.stored) == ("approved", True), result.reason
    p = term.journal.payment(result.id)
    assert p.state is PaymentState.STORED and p.card_data_kept
    assert term.feedback.last_screen is not None
    assert any(s.name == "approved" for s in term.feedback.recent)
    stored = term.stored()
    assert (stored.count, stored.amount, stored.run) == (1, 1250, 1)
    term.feedback.ready(stored.count, result.money)  # the shopkeeper's ready screen
    assert term.feedback.last_screen.shows("Stored for the bank: 1 · €12.50")
    assert host_sim.ledger.transactions() == []

    host_sim.come_up()
    report = term.saf.drain(include_not_due=True)
    assert report.complete and not report.declined_late, report
    p = term.journal.payment(result.id)
    assert p.state is PaymentState.FORWARDED and p.outcome == "approved"
    assert len(p.auth_code) == 6 and not p.card_data_kept
    (row,) = ledger_rows(host_sim, result.stan)
    assert row["mti"] == "0200" and row["approved"] and row["amount"] == 1250
    assert term.stored().count == 0
    # Sent again (an answer lost, a kill before the journal recorded it): booked once.
    term.saf.drain(include_not_due=True)
    assert len(ledger_rows(host_sim, result.stan)) == 1


def test_a_stored_payment_the_host_declines_later_is_declined_after_the_fact(
        host_sim, offline_terminal, phone) -> None:
    term = offline_terminal(host_sim.port)
    host_sim.go_down()
    phone("visa-online", term.cfg.reader.path)
    result = term.pay(1051)  # ...51: the simulator declines, insufficient funds
    assert result.stored
    host_sim.come_up()
    report = term.saf.drain(include_not_due=True)
    assert report.declined_late == [result.id]
    p = term.journal.payment(result.id)
    assert p.state is PaymentState.DECLINED_LATE and p.outcome == "declined"
    assert p.response_code == "51" and "declined after the fact" in p.reason
    assert not p.card_data_kept
    totals = term.journal.batch_totals(p.batch, term.cfg.currency)
    assert totals.sales_count == 0  # not charged: not in the totals
    assert term.journal.queue() == []  # never retried
    shown = term.stored()
    assert (shown.count, shown.declined_late) == (0, 1)
    term.feedback.ready(shown.count, None, shown.declined_late)  # what `pitap run` shows
    assert term.feedback.last_screen.shows("Declined after the fact: 1")


@pytest.mark.parametrize(("limits", "amount", "named"), [
    ({"max_amount": 1000}, 1250, "offline.max_amount"),
    ({"max_total": 1200}, 1250, "offline.max_total"),
    ({"schemes": ["mastercard"]}, 1250, "offline.schemes"),
])
def test_over_a_limit_is_refused_with_the_limit_named(host_sim, offline_terminal, phone,
                                                      limits, amount, named) -> None:
    term = offline_terminal(host_sim.port, **limits)
    host_sim.go_down()
    phone("visa-online", term.cfg.reader.path)
    result = term.pay(amount)
    assert result.outcome == "declined" and not result.stored
    assert named in result.reason
    assert result.decline is Reason.OFFLINE_LIMIT
    p = term.journal.payment(result.id)
    assert p.state is PaymentState.DECLINED and not p.card_data_kept
    assert term.journal.queue() == []
    screen = term.feedback.last_screen
    assert screen is not None and screen.name == "not_charged"


def test_the_count_and_same_card_limits_hold_across_payments(host_sim, offline_terminal,
                                                            phone) -> None:
    term = offline_terminal(host_sim.port, max_count=2, max_same_card=1)
    host_sim.go_down()
    phone("visa-online", term.cfg.reader.path, taps=2)
    first = term.pay(500)
    again = term.pay(600)  # the same token
    assert first.stored and not again.stored
    assert "offline.max_same_card" in again.reason
    phone("mastercard-online", term.cfg.reader.path, taps=2)
    second = term.pay(700)
    third = term.pay(800)
    assert second.stored and not third.stored
    assert "offline.max_count" in third.reason
    assert (term.stored().count, term.stored().amount) == (2, 1200)


def test_no_reply_is_never_stored_it_is_reversed(host_sim, offline_terminal, phone) -> None:
    term = offline_terminal(host_sim.port, response_timeout_s=1.0)
    phone("visa-online", term.cfg.reader.path)
    result = term.pay(1296)  # ...96: booked, never answered: outcome unknown
    assert result.outcome == "error" and not result.stored
    assert term.journal.queue("deferred") == []
    assert [q.kind.value for q in term.journal.queue()] in (["reversal"], [])


def test_a_refund_is_never_stored(host_sim, offline_terminal, phone) -> None:
    term = offline_terminal(host_sim.port)
    host_sim.go_down()
    phone("visa-online", term.cfg.reader.path)
    result = term.refund(500)
    assert result.outcome == "error" and not result.stored
    assert result.decline is Reason.HOST_UNAVAILABLE


def test_a_stored_payment_is_refunded_only_once_the_bank_approved_it(
        host_sim, offline_terminal, phone) -> None:
    from firmware.terminal import RefundRefused

    term = offline_terminal(host_sim.port)
    host_sim.go_down()
    phone("visa-online", term.cfg.reader.path)
    paid = term.pay(1250)
    assert paid.stored
    with pytest.raises(RefundRefused, match="stored, not yet forwarded"):
        term.refund(1250, of_payment=paid.id)
    host_sim.come_up()
    term.saf.drain(include_not_due=True)
    phone("visa-online", term.cfg.reader.path)
    refund = term.refund(1250, of_payment=paid.id)
    assert refund.outcome == "approved", refund.reason
    assert term.journal.payment(paid.id).state is PaymentState.REFUNDED
