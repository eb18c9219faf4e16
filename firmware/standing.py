"""Whether an approval still stands in the open batch: the one check a void, a tip adjustment and
a pre-authorization's increment, completion or release make before acting, with no tap, on a
payment the journal holds (firmware.void, firmware.tips, firmware.preauth).

`standing_approval` walks the ladder once, in this order: unknown, paid by UPI, another kind of
payment, voided (or its void queued), refunded (in full or in part), stored (not yet forwarded
to the bank), not approved, settled (its batch closed), in another currency than the terminal
settles. The first rung that fails raises the caller's own refusal (a `Refused`: VoidRefused,
TipRefused, HoldRefused): each says it in its own one line (a template per rung) with its own
problem code for the screens. Nothing is written or sent either way. It reads the journal only;
it knows nothing of the host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TypeVar

from firmware.errors import PitapError
from firmware.journal import Journal, Payment, UnknownPayment
from firmware.money import Currency, UnknownCurrency
from firmware.money import currency as currency_of
from firmware.payment import STANDING, PaymentState, Tender, TxnType

__all__ = ["Refused", "Standing", "standing_approval"]

P = TypeVar("P")  # the caller's problem codes (VoidProblem, TipProblem, HoldProblem)


class Refused(PitapError, ValueError):
    """A command refused before anything was sent or written: its one line, and `why`, the
    problem as a code the screens translate (the caller's vocabulary: VoidProblem, ...)."""

    def __init__(self, message: str, why: StrEnum) -> None:
        super().__init__(message)
        self.why = why


class Standing(StrEnum):
    """The rung of the ladder a payment failed: why its approval does not stand (here)."""

    UNKNOWN = "unknown"
    OTHER_KIND = "other_kind"
    UPI = "upi"  # paid by UPI: the acquirer never saw it (firmware.upi)
    VOID_QUEUED = "void_queued"
    VOIDED = "voided"
    REFUNDED = "refunded"
    STORED = "stored"
    NOT_APPROVED = "not_approved"
    SETTLED = "settled"
    OTHER_CURRENCY = "other_currency"


def standing_approval(journal: Journal, payment_id: int, settles_in: Currency,
                      say: Mapping[Standing, tuple[str, P]],
                      refused: Callable[[str, P], Exception], *,
                      kind: TxnType | frozenset[TxnType],
                      states: frozenset[PaymentState] = STANDING,
                      open_batch: bool = True) -> Payment:
    """The payment `payment_id`, when it is a `kind` (or one of them), approved and still
    standing (its state one of `states`), not refunded, in the currency the terminal settles and
    (with `open_batch`) in the open batch. Else `refused(line, problem)` is raised for the first
    rung it fails, its line and the caller's problem code from `say[rung]`: a template that may
    name {id}, {kind} (the payment's type), {state}, {paid_in} (its currency) and {settles} (the
    terminal's)."""
    p: Payment | None = None

    def refuse(why: Standing) -> Exception:
        template, problem = say[why]
        paid_in = ""
        if p is not None:
            try:
                paid_in = str(currency_of(p.currency))
            except UnknownCurrency:
                paid_in = f"currency {p.currency}"
        return refused(template.format(id=payment_id, kind=p.txn_type.value if p else "",
                                       state=p.state.value if p else "", paid_in=paid_in,
                                       settles=settles_in), problem)

    try:
        p = journal.payment(payment_id)
    except UnknownPayment:
        raise refuse(Standing.UNKNOWN) from None
    if p.tender is Tender.UPI:
        raise refuse(Standing.UPI)
    if p.txn_type not in (kind if isinstance(kind, frozenset) else {kind}):
        raise refuse(Standing.OTHER_KIND)
    if p.state is PaymentState.VOID_QUEUED:
        raise refuse(Standing.VOID_QUEUED)
    if p.state is PaymentState.VOIDED:
        raise refuse(Standing.VOIDED)
    if p.state is PaymentState.REFUNDED or journal.refunded_amount(payment_id):
        raise refuse(Standing.REFUNDED)
    if p.state is PaymentState.STORED:
        raise refuse(Standing.STORED)
    if not p.charged or p.state not in states:
        raise refuse(Standing.NOT_APPROVED)
    if open_batch and p.batch != journal.open_batch():
        raise refuse(Standing.SETTLED)
    if p.currency != settles_in.numeric:
        raise refuse(Standing.OTHER_CURRENCY)
    return p
