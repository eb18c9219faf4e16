"""What the journal hands out: frozen records, never its rows. No clear card data in any of them.

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

from firmware.payment import PaymentOutcome, PaymentState, QueueKind, SettlementState, TxnType

__all__ = ["BatchTotals", "HistoryEntry", "Payment", "QueueItem", "SchemeTotals", "Settlement"]


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
            cvm=d["cvm"], part_of=d["part_of"],
            card_data_kept=bool(d["card_data_kept"]) if "card_data_kept" in keys else False,
        )

    @property
    def charged(self) -> bool:
        """Approved and not voided (and so charged, unless reversed since: see
        Journal.charged_payments)."""
        return self.outcome is PaymentOutcome.APPROVED and not self.voided

    @property
    def voided(self) -> bool:
        """Voided by the shopkeeper, or its void waiting for the host."""
        return self.state in (PaymentState.VOID_QUEUED, PaymentState.VOIDED)

    def as_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["txn_type"], d["state"] = self.txn_type.value, self.state.value
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

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> QueueItem:
        return cls(
            id=int(row["id"]), kind=QueueKind(row["kind"]), payment_id=int(row["payment_id"]),
            created_at=row["created_at"], attempts=int(row["attempts"]),
            next_attempt_at=float(row["next_attempt_at"]), last_error=row["last_error"],
        )

    def due(self, now: float | None = None) -> bool:
        return self.next_attempt_at <= (time.time() if now is None else now)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self) | {"kind": self.kind.value}


@dataclass(frozen=True)
class BatchTotals:
    """Count and sum of a batch's charged purchases ("sales") and refunds, in one currency."""

    currency: int
    batch_number: int
    sales_count: int = 0
    sales_amount: int = 0
    refunds_count: int = 0
    refunds_amount: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, int]) -> BatchTotals:
        return cls(**{f.name: int(d.get(f.name, 0)) for f in dataclasses.fields(cls)})

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SchemeTotals:
    """A batch's charged payments of one scheme (the Z-report's lines)."""

    sales_count: int = 0
    sales_amount: int = 0
    refunds_count: int = 0
    refunds_amount: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


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
        return cls(
            id=int(row["id"]), batch=int(row["batch"]), state=SettlementState(row["state"]),
            totals=BatchTotals.from_dict(json.loads(row["totals"])),
            started_at=row["started_at"], finished_at=row["finished_at"],
            response_code=row["response_code"], message=row["message"],
        )

    def as_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["state"] = self.state.value
        return d
