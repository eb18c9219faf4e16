"""What a PSP's answer makes of a journalled UPI payment: the one place that turns a final
UpiPayment into the journal's outcome (approved only on SUCCESS), for the tender
(firmware.upi.tender) and for recovery at start (firmware.recovery), and that settles a UPI
refund with the PSP. Knows the journal and the Psp protocol only: no screens, no terminal.
"""

from __future__ import annotations

import logging

from firmware.journal import Journal
from firmware.payment import PaymentState
from firmware.upi.psp import (
    Psp,
    PspError,
    PspRejected,
    PspUnavailable,
    UpiPayment,
    UpiStatus,
)

log = logging.getLogger(__name__)

REFUND_TRIES = 3  # a refund without an answer is asked again (idempotent) this many times


def reason_text(payment: UpiPayment) -> str:
    """The journal's and the shopkeeper's words for what the PSP said."""
    if payment.status is UpiStatus.EXPIRED and payment.reason == "cancelled":
        return "UPI: request withdrawn, not paid"
    words = {UpiStatus.SUCCESS: "UPI: paid", UpiStatus.FAILURE: "UPI: payment failed",
             UpiStatus.EXPIRED: "UPI: request expired"}.get(payment.status, "UPI: pending")
    return words + (f" ({payment.reason})" if payment.reason else "")


def final_state(payment: UpiPayment) -> PaymentState:
    """The journal state a final PSP answer ends a UPI payment in: approved only on SUCCESS."""
    if payment.status is UpiStatus.SUCCESS:
        return PaymentState.APPROVED
    if payment.status is UpiStatus.EXPIRED and payment.reason == "cancelled":
        return PaymentState.CANCELLED
    return PaymentState.DECLINED


def record_answer(journal: Journal, payment_id: int, payment: UpiPayment) -> PaymentState:
    """Journal the PSP's final `payment` as the UPI payment's outcome (recovery uses it too)."""
    assert payment.status.final
    state = final_state(payment)
    fields: dict[str, object] = {"reason": reason_text(payment)}
    if state is PaymentState.APPROVED:
        fields |= {"psp_reference": payment.psp_reference, "payer_vpa": payment.payer}
    journal.record(payment_id, state, **fields)
    return state


def settle_refund(journal: Journal, psp: Psp, refund_id: int,
                  first_ask: bool = False) -> UpiPayment | None:
    """Ask the PSP for the UPI refund `refund_id` (journalled "upi_pending") and journal its
    answer: approved (the refunded payment "refunded" once refunded in full) or declined; None
    (still pending) when no answer came. Asking again is safe: the PSP answers a repeated refund
    as it did the first time. `first_ask`: nothing was sent before, so a PSP that could not
    be reached at all means nothing was created there (the refund ends "error")."""
    refund = journal.payment(refund_id)
    assert refund.refund_of is not None
    original = journal.payment(refund.refund_of)
    answer, maybe_sent, problem = None, not first_ask, ""
    for _ in range(REFUND_TRIES):
        try:
            answer = psp.refund(original.upi_reference, refund.upi_reference, refund.amount)
        except PspRejected as exc:
            journal.record(refund_id, PaymentState.DECLINED, reason=f"UPI: {exc}"[:200])
            return UpiPayment(refund.upi_reference, UpiStatus.FAILURE, refund.amount,
                              reason=str(exc)[:120])
        except PspError as exc:
            maybe_sent = maybe_sent or not isinstance(exc, PspUnavailable)
            problem = str(exc)
            log.warning("UPI refund %s: %s", refund.upi_reference, exc)
            continue
        if answer.status.final:
            break
    if answer is None and not maybe_sent:
        journal.record(refund_id, PaymentState.ERROR, reason=f"UPI: {problem}"[:200])
        return UpiPayment(refund.upi_reference, UpiStatus.FAILURE, refund.amount,
                          reason=problem[:120])
    if answer is None or not answer.status.final:
        return None
    ok = answer.status is UpiStatus.SUCCESS
    journal.record(refund_id, PaymentState.APPROVED if ok else PaymentState.DECLINED,
                   reason="UPI: refunded to the payer" if ok else reason_text(answer),
                   psp_reference=answer.psp_reference if ok else None)
    if ok and journal.refunded_amount(original.id) >= original.amount:
        journal.record(original.id, PaymentState.REFUNDED,
                       reason=f"refunded in full by UPI (#{refund_id})")
    return answer
