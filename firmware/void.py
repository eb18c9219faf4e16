"""Voiding a payment: cancel an approval of the open batch before settlement, with no tap.

What a void does depends on what the host knows of the payment:
- approved online (the host booked it): a reversal (QueueKind.VOID: 0400, field 25 the dialect's
  `void_reason`) is queued in the journal ("void_queued") before anything is sent, then sent
  through store-and-forward; the host's 0410 records "voided". A kill in between leaves the void
  queued: the next store-and-forward round or `pitap settle` sends it (a repeat is 0401; the host
  undoes a charge once), so nothing is lost and nothing doubled;
- approved offline, advice not yet sent: the advice is dropped and the payment "voided" in one
  journal transaction; nothing is sent;
- approved offline and advised: the advice is reversed (0400 naming 0220 in field 90), as above;
- the host refuses the reversal because it has settled the payment already (its batch closed
  there, e.g. a settlement whose answer the terminal lost): the void is over, the approval stands
  again in the journal, its reason saying so, and VoidRefused says "refund it instead".

A purchase, a refund (in the open batch: the refund's own reversal, processing code 20; a refund
that had refunded its purchase in full gives the purchase back its approval) and a hold's
completion (a sale: its 0220 is dropped before it went, else reversed, 0400 naming 0220; the
hold stands again) are voided. Refused (VoidRefused, one line, nothing sent or written): an
unknown payment, a UPI payment (the acquirer never saw it: refund it through the PSP), a hold
(release it) or an increment, one not approved, already voided (or its void queued), refunded in
full or in part, settled (its batch closed: refund it instead), or in another currency than the
terminal settles.
A voided payment counts in no settlement total and is listed as voided on the Z-report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from firmware.host.saf import StoreAndForward
from firmware.journal import Journal, Payment
from firmware.money import Currency, Money, UnknownCurrency
from firmware.money import currency as currency_of
from firmware.payment import PaymentState, QueueKind, TxnType
from firmware.standing import Refused, Standing, standing_approval
from ui.money import operator_text

__all__ = ["VoidProblem", "VoidRefused", "VoidResult", "check_voidable", "void_payment"]

log = logging.getLogger(__name__)


class VoidProblem(StrEnum):
    """Why a void is refused (the screens' key `void_refused_<value>`)."""

    UNKNOWN = "unknown"
    NOT_PURCHASE = "not_purchase"
    ALREADY_VOIDED = "already_voided"
    REFUNDED = "refunded"
    NOT_APPROVED = "not_approved"
    SETTLED = "settled"
    OTHER_CURRENCY = "other_currency"
    UPI = "upi"  # paid by UPI: the acquirer never saw it, the PSP refunds it


class VoidRefused(Refused):
    """A void refused before anything was sent or written (unknown, refunded, settled...), or
    by the host (it had settled the payment: `pitap void` raises it with VoidResult.line());
    `why` says which, as a code the screens translate."""

    why: VoidProblem


@dataclass(frozen=True)
class VoidResult:
    """How a void ended: `voided` once the host acknowledged it (or nothing needed sending),
    else queued with the reason it is not yet acknowledged (sent again with the queue)."""

    payment: Payment
    voided: bool
    sent: bool  # a reversal went (or goes) to the host; False: the advice was dropped
    pending: str = ""  # why the host has not acknowledged it yet

    def line(self) -> str:
        p = self.payment
        amount = _amount(p)
        if not self.voided:
            return (f"#{p.id} {amount} void queued: the host has not acknowledged it yet "
                    f"({self.pending}); it is sent again with the queue, and `pitap settle` "
                    "sends it before closing the batch")
        how = "reversal acknowledged by the host" if self.sent else "its advice was never sent"
        return f"#{p.id} {amount} voided ({how})"


# What a void cancels: a sale (a completion captured a hold: a sale too) or a refund; a hold
# itself is released (firmware.preauth), an increment goes with it.
VOIDABLE = frozenset({TxnType.PURCHASE, TxnType.REFUND, TxnType.COMPLETION})

def _amount(p: Payment) -> str:
    try:
        return operator_text(Money(p.amount, currency_of(p.currency)))
    except UnknownCurrency:
        return f"{p.amount} ({p.currency})"


_SAY: dict[Standing, tuple[str, VoidProblem]] = {
    Standing.UNKNOWN: ("no payment {id} in the journal", VoidProblem.UNKNOWN),
    Standing.UPI: ("payment {id}: UPI: refund it instead", VoidProblem.UPI),
    Standing.OTHER_KIND: ("payment {id} is a {kind}: a purchase, a refund or a completion is "
                          "voided (a hold is released)", VoidProblem.NOT_PURCHASE),
    Standing.VOIDED: ("payment {id} is already voided", VoidProblem.ALREADY_VOIDED),
    Standing.VOID_QUEUED: ("payment {id} is already voided (its reversal is queued for the "
                           "host)", VoidProblem.ALREADY_VOIDED),
    Standing.REFUNDED: ("payment {id} is refunded: a void cancels an untouched approval",
                        VoidProblem.REFUNDED),
    Standing.STORED: ("payment {id} was not approved ({state}): nothing to void",
                      VoidProblem.NOT_APPROVED),
    Standing.NOT_APPROVED: ("payment {id} was not approved ({state}): nothing to void",
                            VoidProblem.NOT_APPROVED),
    Standing.SETTLED: ("payment {id} is settled: refund it instead", VoidProblem.SETTLED),
    Standing.OTHER_CURRENCY: ("payment {id} is in {paid_in}, this terminal settles {settles}: "
                              "refund it instead", VoidProblem.OTHER_CURRENCY),
}


def check_voidable(journal: Journal, payment_id: int, settles_in: Currency) -> Payment:
    """The payment, when it may be voided (a purchase, a refund or a hold's completion whose
    approval stands in the open batch, firmware.standing); VoidRefused (one line) saying why
    not."""
    return standing_approval(journal, payment_id, settles_in, _SAY, VoidRefused,
                             kind=VOIDABLE)


def void_payment(journal: Journal, saf: StoreAndForward, payment_id: int,
                 settles_in: Currency) -> VoidResult:
    """Void `payment_id` (see the module's docstring). Store-and-forward is held meanwhile, so
    that a queued advice is never sent while the void decides to drop it."""
    with saf.held():
        p = check_voidable(journal, payment_id, settles_in)
        # a completion is an advice too (0220): not yet sent, the host never saw it
        advice = p.offline or p.txn_type is TxnType.COMPLETION
        if advice and p.state is not PaymentState.ADVISED:
            if p.state is PaymentState.APPROVED:  # no advice queued yet: the host never saw it
                journal.record(payment_id, PaymentState.VOIDED, reason="voided; never advised")
                dropped = True
            else:
                dropped = journal.drop_advice(payment_id, "voided; its advice was never sent")
            if dropped:
                log.info("payment %d voided: advice dropped", payment_id)
                return VoidResult(journal.payment(payment_id), voided=True, sent=False)
        # The host knows it: queue the reversal durably first, then send (with the queue).
        journal.enqueue(QueueKind.VOID, payment_id)
        report = saf.drain(include_not_due=True)
        done = journal.payment(payment_id)
        voided = done.state is PaymentState.VOIDED
        if payment_id in report.void_refused:  # the host had settled it: the approval stands
            log.warning("payment %d: %s", payment_id, done.reason)
            raise VoidRefused(f"payment {payment_id} ({_amount(done)}) stands: {done.reason}",
                              VoidProblem.SETTLED)
        log.info("payment %d void %s", payment_id, "acknowledged" if voided else "queued")
        return VoidResult(done, voided=voided, sent=True,
                          pending="" if voided else report.failed or "not sent yet")
