"""UPI in the journal (schema v8): its own tender with our reference, the payer's VPA masked and
the PSP's reference; upi_pending until the PSP's answer; in no card total (so never in a batch
upload to the acquirer) and counted apart for the Z-report. A real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from journal_support import walk_to

from firmware.journal import SCHEMA_VERSION, IllegalTransition, Journal
from firmware.money import CURRENCIES
from firmware.payment import PaymentState, Tender

INR = CURRENCIES["INR"]


@pytest.fixture()
def journal(tmp_path: Path) -> Journal:
    j = Journal.open(tmp_path / "journal.sqlite", tmp_path / "journal.key")
    yield j
    j.close()


def upi(j: Journal, amount: int, reference: str, state: str, **fields: object) -> int:
    pid = j.new_payment("purchase", amount, 356, "PITAP001", tender=Tender.UPI,
                        upi_reference=reference)
    j.record(pid, PaymentState.UPI_PENDING)
    if state != "upi_pending":
        j.record(pid, state, **fields)
    return pid


def test_schema_v8_keeps_a_upi_payment(journal: Journal) -> None:
    assert journal.schema_version() == SCHEMA_VERSION >= 8
    pid = upi(journal, 25000, "PITAP001AB12CD34EF56", "approved",
              payer_vpa="te***********@okicici", psp_reference="633600000001",
              reason="UPI: paid")
    p = journal.payment(pid)
    assert (p.tender, p.upi_reference, p.payer_vpa, p.psp_reference, p.state) == (
        Tender.UPI, "PITAP001AB12CD34EF56", "te***********@okicici", "633600000001",
        PaymentState.APPROVED)
    assert p.as_dict()["tender"] == "upi"
    assert journal.upi_payment("PITAP001AB12CD34EF56") == p
    assert [h.state for h in journal.history(pid)] == ["started", "upi_pending", "approved"]


def test_a_reference_is_used_once(journal: Journal) -> None:
    upi(journal, 100, "REF1", "upi_pending")
    with pytest.raises(Exception, match="UNIQUE|cannot write"):
        upi(journal, 100, "REF1", "upi_pending")


def test_the_payer_vpa_is_kept_masked_only(journal: Journal) -> None:
    pid = upi(journal, 100, "REF2", "upi_pending")
    with pytest.raises(ValueError, match="masked VPA"):
        journal.record(pid, "approved", payer_vpa="testpayer.rahul@okicici")
    assert journal.payment(pid).state is PaymentState.UPI_PENDING


def test_card_and_upi_states_do_not_mix(journal: Journal) -> None:
    card = journal.new_payment("purchase", 100, 356, "PITAP001")
    with pytest.raises(IllegalTransition):
        journal.record(card, PaymentState.UPI_PENDING)
    pid = journal.new_payment("purchase", 100, 356, "PITAP001", tender=Tender.UPI,
                              upi_reference="REF3")
    with pytest.raises(IllegalTransition):
        journal.record(pid, PaymentState.CARD_READ)
    with pytest.raises(ValueError, match="reference"):
        journal.new_payment("purchase", 100, 356, "PITAP001", tender=Tender.UPI)
    journal.record(pid, PaymentState.UPI_PENDING)
    with pytest.raises(IllegalTransition):  # only the PSP's answer ends it
        journal.record(pid, PaymentState.REFUNDED)


def test_upi_is_in_no_card_total_and_counted_apart(journal: Journal) -> None:
    card = journal.new_payment("purchase", 75000, 356, "PITAP001")
    walk_to(journal, card, "approved", scheme="rupay", masked_pan="608326******0010", stan=1)
    paid = upi(journal, 25000, "REF4", "approved", psp_reference="1")
    upi(journal, 25005, "REF5", "declined", reason="payer declined")
    upi(journal, 30000, "REF6", "upi_pending")
    batch = journal.open_batch()
    cards = journal.batch_totals(batch, INR)
    assert (cards.sales_count, cards.sales_amount) == (1, 75000)
    assert [p.id for p in journal.charged_payments(batch)] == [card]  # the batch upload's items
    assert set(journal.scheme_totals(batch, INR)) == {"rupay"}
    assert journal.outcome_counts(batch) == {"approved": 1}
    assert journal.outcome_counts(batch, Tender.UPI) == {"approved": 1, "declined": 1,
                                                         "upi_pending": 1}
    (totals,) = journal.upi_totals(batch).values()
    assert (totals.currency, totals.sales_count, totals.sales_amount) == (INR, 1, 25000)
    assert journal.payment(paid).charged
