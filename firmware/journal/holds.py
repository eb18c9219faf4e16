"""Pre-authorization holds as the journal knows them: a hold is an approved `preauth` payment;
its increments and its completion are payments naming it (`hold_of`). What is held, whether it
is open, completed, released or expired are SQL questions answered here; so is the one write a
completion needs (approved and its 0220 advice queued in one transaction, the reference to the
hold kept in the vault until the host acknowledged it).

No clear card data: a hold's token was forgotten when it was approved; an increment or a
completion travels with the hold's references (STAN, RRN, field 90) only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from firmware.journal.outbox import Outbox
from firmware.journal.payments import PaymentStore, clean_fields
from firmware.journal.records import Payment
from firmware.journal.store import Store
from firmware.payment import PaymentState, QueueKind, TxnType

__all__ = ["Hold", "HoldStatus", "HoldStore"]

_WITH_VAULT = (
    "SELECT p.*, EXISTS (SELECT 1 FROM card_data d WHERE d.payment_id = p.id) AS card_data_kept"
    " FROM payments p"
)


class HoldStatus(StrEnum):
    """Where a hold is: open (funds held), completed (captured), released (its reversal
    acknowledged, or queued: `release_queued`), expired (open past its expiry)."""

    OPEN = "open"
    EXPIRED = "expired"
    COMPLETED = "completed"
    RELEASE_QUEUED = "release_queued"
    RELEASED = "released"


@dataclass(frozen=True)
class Hold:
    """One approved pre-authorization: the payment, what it holds now (its amount plus its
    approved increments), and the completion that captured it, if any."""

    payment: Payment
    held: int  # minor units: the hold's amount plus its approved increments
    increments: int  # approved increments
    completed_by: Payment | None

    @property
    def id(self) -> int:
        return self.payment.id

    def status(self, now: dt.datetime) -> HoldStatus:
        p = self.payment
        if p.state is PaymentState.VOIDED:
            return HoldStatus.RELEASED
        if p.state is PaymentState.VOID_QUEUED:
            return HoldStatus.RELEASE_QUEUED
        if self.completed_by is not None:
            return HoldStatus.COMPLETED
        if p.expires_at and dt.datetime.fromisoformat(p.expires_at) <= now:
            return HoldStatus.EXPIRED
        return HoldStatus.OPEN

    def as_dict(self, now: dt.datetime) -> dict[str, object]:
        return {"id": self.id, "amount": self.payment.amount, "held": self.held,
                "increments": self.increments, "currency": self.payment.currency,
                "expires_at": self.payment.expires_at, "status": self.status(now).value,
                "completed_by": self.completed_by.id if self.completed_by else None,
                "completed": self.completed_by.amount if self.completed_by else 0,
                "masked_pan": self.payment.masked_pan, "scheme": self.payment.scheme,
                "stan": self.payment.stan, "rrn": self.payment.rrn}


class HoldStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _hold(self, p: Payment) -> Hold:
        row = self._store.read_one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(amount), 0) AS total FROM payments"
            " WHERE hold_of = ? AND txn_type = ? AND outcome = 'approved'",
            (p.id, TxnType.INCREMENT.value))
        assert row is not None
        done = self._store.read_one(
            f"{_WITH_VAULT} WHERE p.hold_of = ? AND p.txn_type = ? AND p.outcome = 'approved'"
            " AND p.state NOT IN (?, ?) ORDER BY p.id LIMIT 1",  # a voided one: held again
            (p.id, TxnType.COMPLETION.value, PaymentState.VOID_QUEUED.value,
             PaymentState.VOIDED.value))
        return Hold(p, p.amount + int(row["total"]), int(row["n"]),
                    Payment.from_row(done) if done is not None else None)

    def get(self, payment_id: int) -> Hold | None:
        """The hold `payment_id` is, when it is an approved pre-authorization; else None."""
        row = self._store.read_one(
            f"{_WITH_VAULT} WHERE p.id = ? AND p.txn_type = ? AND p.outcome = 'approved'",
            (payment_id, TxnType.PREAUTH.value))
        return None if row is None else self._hold(Payment.from_row(row))

    def all(self) -> list[Hold]:
        """Every approved pre-authorization, oldest first."""
        rows = self._store.read(
            f"{_WITH_VAULT} WHERE p.txn_type = ? AND p.outcome = 'approved' ORDER BY p.id",
            (TxnType.PREAUTH.value,))
        return [self._hold(Payment.from_row(r)) for r in rows]

    def open_totals(self, currency: int, now: dt.datetime) -> tuple[int, int]:
        """(count, held total) of the holds still open in `currency` at `now`."""
        open_ = [h for h in self.all()
                 if h.payment.currency == currency and h.status(now) is HoldStatus.OPEN]
        return len(open_), sum(h.held for h in open_)

    def approve_completion(self, payment_id: int, **fields: object) -> int:
        """A completion the terminal decided (within the held total plus the tolerance):
        "approved" with `fields` and its 0220 advice queued, one transaction (the vault keeps
        what the advice sends until the host acknowledged it). Returns the queue item id."""
        clean = clean_fields(fields | {"outcome": "approved"})
        with self._store.write() as c:
            PaymentStore.transition(c, payment_id, PaymentState.APPROVED, clean)
            return Outbox.enqueue_in(c, QueueKind.ADVICE, payment_id)
