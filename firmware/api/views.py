"""A payment as the API shows it: amounts as decimal strings in major units (and in minor
units), the currency's code, the card as first 6 / last 4 at most (the journal's masked PAN;
nothing else of a card is ever in an answer or an event), the till's reference. A UPI payment
(tender "upi") has our reference `tr`, and once the PSP said paid, its reference and the
payer's VPA masked (as the journal keeps it); null for a card."""

from __future__ import annotations

from firmware.journal import Payment, scrub
from firmware.money import currency as currency_of
from firmware.payment import PaymentState
from ui.money import number

__all__ = ["RUNNING", "decimal", "payment_view"]

# The states of a payment still running: every other state is an end (or after one).
RUNNING = (PaymentState.STARTED, PaymentState.TRY_AGAIN, PaymentState.CARD_READ,
           PaymentState.AWAITING_REPLY, PaymentState.UPI_PENDING)


def decimal(minor: int, exponent: int) -> str:
    """1250, 2 -> '12.50': the API's amounts (what `pitap pay` takes)."""
    return number(minor, exponent, None)


def payment_view(p: Payment, reference: str = "") -> dict[str, object]:
    cur = currency_of(p.currency)
    return {
        "id": p.id,
        "type": p.txn_type.value,
        "state": p.state.value,
        "finished": p.state not in RUNNING,
        "outcome": p.outcome.value if p.outcome else None,
        "amount": decimal(p.amount, cur.exponent),
        "amount_minor": p.amount,
        "tip": decimal(p.tip, cur.exponent),
        "currency": cur.alpha,
        "reference": reference,
        "scheme": p.scheme,
        "masked_pan": p.masked_pan,
        "auth_code": p.auth_code,
        "rrn": p.rrn,
        "stan": p.stan,
        "response_code": p.response_code,
        "reason": scrub(p.reason),
        "offline": p.offline,
        "refund_of": p.refund_of,
        "tender": p.tender.value,
        "upi_reference": p.upi_reference or None,
        "psp_reference": p.psp_reference or None,
        "payer_vpa": p.payer_vpa or None,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }
