"""What the journal hands out: frozen records, never its rows. No clear card data in any of them.
A batch's totals are firmware.money's BatchTotals, the one type from the journal to the wire and
the screen; a settlement run keeps them as JSON (`totals_as_dict`).

`as_dict()` gives the plain JSON-ready shape (`pitap journal --json`, the receipt, the API):
enums as their strings, no outcome as "".
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from firmware.money import BatchTotals, currency
from firmware.payment import (
    PaymentOutcome,
    PaymentState,
    QueueKind,
    SettlementState,
    Tender,
    TxnType,
)

__all__ = [
    "HistoryEntry", "Payment", "QueueItem", "Settlement", "StoredTotals", "totals_as_dict",
    "totals_from_json",
]


@dataclass(frozen=True)
class Payment:
    """One payment (or refund) as the journal knows it now."""

    id: int
    created_at: str  # ISO 8601, UTC
    updated_at: str
    txn_type: TxnType
    amount: int  # minor units
    currency: int  # ISO 4217 numeric
    terminal_id: str
    batch: int
    state: PaymentState
    outcome: PaymentOutcome | None  # None while the payment has none
    scheme: str = ""
    masked_pan: str = ""  # first 6 / last 4 at most
    stan: int | None = None
    rrn: str = ""
    auth_code: str = ""
    response_code: str = ""
    reason: str = ""
    card_in_field_ms: float | None = None
    offline: bool = False
    refund_of: int | None = None  # a refund: the payment it refunds
    application_label: str = ""  # the card's name for itself (50 / 9F12), printed on receipts
    aid: str = ""  # the application identifier, hex
    cvm: str = ""  # how the cardholder was verified (firmware.emv CvmMethod value), "" unknown
    part_of: int | None = None  # the rest of a partially approved purchase: its first part
    hold_of: int | None = None  # an increment or a completion: its hold (pre-authorization)
    expires_at: str = ""  # a hold: when it expires (ISO 8601, UTC)
    tip: int = 0  # minor units: the part of `amount` that is a tip (firmware.tips)
    tender: Tender = Tender.CARD  # card, or UPI (firmware.upi.tender)
    upi_reference: str = ""  # UPI: our transaction reference `tr`
    payer_vpa: str = ""  # UPI: the payer's VPA, masked
    psp_reference: str = ""  # UPI: the PSP's reference of the payment
    card_data_kept: bool = False  # encrypted card data still in the vault

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Payment:
        d = dict(row)
        keys = row.keys()
        return cls(
            id=int(d["id"]), created_at=d["created_at"], updated_at=d["updated_at"],
            txn_type=TxnType(d["txn_type"]), amount=int(d["amount"]),
            currency=int(d["currency"]), terminal_id=d["terminal_id"], batch=int(d["batch"]),
            state=PaymentState(d["state"]),
            outcome=PaymentOutcome(d["outcome"]) if d["outcome"] else None,
            scheme=d["scheme"], masked_pan=d["masked_pan"], stan=d["stan"], rrn=d["rrn"],
            auth_code=d["auth_code"], response_code=d["response_code"], reason=d["reason"],
            card_in_field_ms=d["card_in_field_ms"], offline=bool(d["offline"]),
            refund_of=d["refund_of"], application_label=d["application_label"], aid=d["aid"],
            cvm=d["cvm"], part_of=d["part_of"], hold_of=d.get("hold_of"),
            expires_at=d.get("expires_at") or "", tip=int(d["tip"]) if "tip" in keys else 0,
            tender=Tender(d.get("tender") or "card"), upi_reference=d.get("upi_reference") or "",
            payer_vpa=d.get("payer_vpa") or "", psp_reference=d.get("psp_reference") or "",
            card_data_kept=bool(d["card_data_kept"]) if "card_data_kept" in keys else False,
        )

    @property
    def charged(self) -> bool:
        """Approved and not voided (and so charged, unless reversed since: see
        Journal.charged_payments)."""
        return self.outcome is PaymentOutcome.APPROVED and not self.voided

    @property
    def base(self) -> int:
        """The amount before the tip (minor units): `amount` is the total charged."""
        return self.amount - self.tip

    @property
    def voided(self) -> bool:
        """Voided by the shopkeeper, or its void waiting for the host."""
        return self.state in (PaymentState.VOID_QUEUED, PaymentState.VOIDED)

    def as_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["txn_type"], d["state"] = self.txn_type.value, self.state.value
        d["tender"] = self.tender.value
        d["outcome"] = self.outcome.value if self.outcome else ""
        return d


@dataclass(frozen=True)
class HistoryEntry:
    """One state change of a payment, with the fields recorded with it."""

    at: str
    state: PaymentState
    fields: Mapping[str, object]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> HistoryEntry:
        return cls(row["at"], PaymentState(row["state"]),
                   MappingProxyType(json.loads(row["fields"])))

    def get(self, name: str, default: object = None) -> object:
        return self.fields.get(name, default)

    def as_dict(self) -> dict[str, object]:
        return {"at": self.at, "state": self.state.value, **self.fields}


@dataclass(frozen=True)
class QueueItem:
    """One reversal or advice waiting to be sent (store-and-forward), in queue order."""

    id: int
    kind: QueueKind
    payment_id: int
    created_at: str
    attempts: int  # failed attempts so far
    next_attempt_at: float  # unix time; 0 = now
    last_error: str
    amount: int | None = None  # a tip adjustment: the tip it sets (minor units)
    stan: int | None = None  # a tip adjustment: the STAN of its own message

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> QueueItem:
        keys = row.keys()
        return cls(
            id=int(row["id"]), kind=QueueKind(row["kind"]), payment_id=int(row["payment_id"]),
            created_at=row["created_at"], attempts=int(row["attempts"]),
            next_attempt_at=float(row["next_attempt_at"]), last_error=row["last_error"],
            amount=row["amount"] if "amount" in keys else None,
            stan=row["stan"] if "stan" in keys else None,
        )

    def due(self, now: float | None = None) -> bool:
        return self.next_attempt_at <= (time.time() if now is None else now)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self) | {"kind": self.kind.value}


@dataclass(frozen=True)
class Settlement:
    """One settlement run of a batch (resumed with the same totals after a power cut)."""

    id: int
    batch: int
    state: SettlementState
    totals: BatchTotals
    started_at: str
    finished_at: str | None
    response_code: str
    message: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Settlement:
        batch = int(row["batch"])
        return cls(
            id=int(row["id"]), batch=batch, state=SettlementState(row["state"]),
            totals=totals_from_json(batch, row["totals"]),
            started_at=row["started_at"], finished_at=row["finished_at"],
            response_code=row["response_code"], message=row["message"],
        )

    def as_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["state"], d["totals"] = self.state.value, totals_as_dict(self.totals)
        return d


def totals_as_dict(totals: BatchTotals) -> dict[str, int]:
    """A batch's totals as the journal keeps them (the settlements table's JSON): the
    currency by its number, the batch, the four figures."""
    return {"currency": totals.currency.numeric, "batch_number": totals.batch,
            **totals.counts()}


def totals_from_json(batch: int, text: str) -> BatchTotals:
    """The totals a settlement run recorded (totals_as_dict's shape, as JSON)."""
    d = json.loads(text)
    return BatchTotals.from_counts(batch, currency(int(d["currency"])), d)


@dataclass(frozen=True)
class StoredTotals:
    """What is stored for forwarding ([offline]): payments accepted while the acquirer was
    unreachable that the host has not answered yet, in one currency."""

    currency: int
    count: int = 0
    amount: int = 0  # minor units
    oldest: str = ""  # created_at of the oldest (ISO 8601, UTC); "" when none
    run: int = 0  # consecutive stored payments since the host last answered one
    declined_late: int = 0  # of the open batch: stored, then declined by the host

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)
