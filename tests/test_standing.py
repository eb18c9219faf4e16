"""The one "approval still standing" check (firmware.standing): every caller words every rung of
the ladder, so that no refusal can end in a KeyError instead of its one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware import preauth, tips, void
from firmware.config import TipsSection
from firmware.journal import Journal
from firmware.money import CURRENCIES
from firmware.payment import PaymentState, Tender
from firmware.standing import Standing


@pytest.mark.parametrize("caller", [void, tips, preauth], ids=lambda m: m.__name__)
def test_every_rung_is_worded_by_every_caller(caller: object) -> None:
    say = caller._SAY  # type: ignore[attr-defined]
    assert set(say) == set(Standing)
    for template, _problem in say.values():
        assert "\n" not in template and template.format(
            id=7, kind="refund", state="declined", paid_in="JPY", settles="EUR")


def test_a_upi_payment_is_refused_by_every_no_tap_action(tmp_path: Path) -> None:
    """The acquirer never saw a UPI payment: a void, a tip adjustment or a hold's action on it
    would send the host a message about money it never moved. Each is refused, in its own
    line, before anything is written."""
    inr = CURRENCIES["INR"]
    journal = Journal.open(tmp_path / "journal.sqlite", tmp_path / "journal.key")
    try:
        pid = journal.new_payment("purchase", 25000, inr.numeric, "PITAP001", tender=Tender.UPI,
                                  upi_reference="PITAP001AB12CD34EF56")
        journal.record(pid, PaymentState.UPI_PENDING)
        journal.record(pid, PaymentState.APPROVED, psp_reference="633600000001")
        history = journal.history(pid)
        with pytest.raises(void.VoidRefused, match="UPI: refund it instead"):
            void.check_voidable(journal, pid, inr)
        with pytest.raises(tips.TipRefused, match="paid by UPI"):
            tips.check_adjustable(journal, pid, 1000, TipsSection(mode="adjust"), inr)
        with pytest.raises(preauth.HoldRefused, match="paid by UPI"):
            preauth.check_hold(journal, pid, inr)
        assert journal.history(pid) == history
        assert journal.payment(pid).state is PaymentState.APPROVED
    finally:
        journal.close()
