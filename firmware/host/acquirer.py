"""The contract between the terminal and an acquirer, and the data that crosses it.

An Acquirer is found by name in the `pitap.acquirers` entry point group; the ISO 8583 link is one
implementation. Payments cross as plain dataclasses; the acquirer decides the wire format.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from firmware.errors import PitapError
from firmware.money import BatchTotals
from firmware.payment import TxnType


class HostUnavailable(PitapError):
    """The request never left: refused, unreachable, TLS failure. Nothing to reverse."""


class NoReply(PitapError):
    """The request may have reached the host but no usable reply came: outcome unknown.

    The caller must queue a reversal."""


class ReversalRefused(PitapError):
    """The host answered a void's reversal with a refusal: it has settled the original already
    (ISO 8583 12, invalid transaction), so the charge stands: refund it instead. Final, never
    sent again."""


class ReversalReason(StrEnum):
    """Why a reversal is sent (`Acquirer.reverse`'s `reason`): the terminal never learnt the
    outcome (no reply), or the shopkeeper voided a standing approval (`pitap void`). A str, so an
    acquirer plug-in may read it as one."""

    NO_REPLY = "no_reply"
    VOID = "void"


@dataclass(frozen=True)
class AuthRequest:
    """One authorization (or financial) request for a purchase or a refund.

    `bytes(request)` is what the journal's card vault keeps (encrypted); `from_bytes` reads it
    back; `from_payment` rebuilds one, without card data, from a journalled payment."""

    stan: int  # field 11, 1..999999
    amount: int  # minor units
    currency: int  # ISO 4217 numeric
    txn_type: TxnType
    pan: str = field(repr=False)  # token / PAN (field 2): sensitive
    pan_sequence: int | None
    expiry: str  # YYMM
    track2: bytes = field(repr=False)  # track 2 equivalent as read (field 35): sensitive
    icc_data: bytes = field(repr=False)  # field 55 BER-TLV
    terminal_id: str
    merchant_id: str
    when: dt.datetime
    offline_approved: bool = False  # for advices: the card approved offline (TC)
    auth_code: str = ""  # for advices/reversals: the original approval code
    rrn: str = ""
    deferred: bool = False  # a stored payment forwarded later ([offline]): the dialect's MTI/25
    # an increment or a completion: the hold it refers to, by its STAN and its moment (ISO
    # 8601, the hold's created_at); its RRN is `rrn`, its approval code `auth_code`
    original_stan: int = 0
    original_at: str = ""
    tip: int = 0  # the part of `amount` that is a tip (field 54 as the dialect says)

    def __post_init__(self) -> None:
        object.__setattr__(self, "txn_type", TxnType(self.txn_type))

    def __bytes__(self) -> bytes:
        """JSON: bytes as hex, datetimes as ISO 8601 (what the card vault keeps, encrypted)."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bytes):
                value = value.hex()
            elif isinstance(value, dt.datetime):
                value = value.isoformat()
            elif isinstance(value, TxnType):
                value = value.value
            out[f.name] = value
        return json.dumps(out, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> AuthRequest:
        """The inverse of `bytes(request)`; fields unknown to this version are ignored."""
        raw = json.loads(data)
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            if f.name not in raw:
                continue
            value = raw[f.name]
            hint = hints[f.name]
            if hint is bytes:
                value = bytes.fromhex(value)
            elif hint is dt.datetime:
                value = dt.datetime.fromisoformat(value)
            kwargs[f.name] = value
        return cls(**kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_payment(cls, payment: PaymentData, merchant_id: str = "") -> AuthRequest:
        """What a reversal, an advice or a batch upload sends when the card data is gone: the
        journalled payment's original data elements (STAN, amount, terminal, time, codes).
        A payment journalled without a STAN (none left the terminal) is numbered 1."""
        try:
            when = dt.datetime.fromisoformat(payment.created_at)
        except ValueError:
            when = dt.datetime.now(dt.UTC)
        return cls(
            stan=payment.stan or 1, amount=payment.amount, currency=payment.currency,
            txn_type=TxnType(payment.txn_type), pan="", pan_sequence=None, expiry="",
            track2=b"", icc_data=b"", terminal_id=payment.terminal_id, merchant_id=merchant_id,
            when=when, offline_approved=payment.offline, auth_code=payment.auth_code,
            rrn=payment.rrn, tip=int(getattr(payment, "tip", 0) or 0),
        )


class PaymentData(Protocol):
    """What the acquirer link reads of a journalled payment (firmware.journal.Payment is one)."""

    @property
    def stan(self) -> int | None: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> int: ...
    @property
    def txn_type(self) -> str: ...
    @property
    def terminal_id(self) -> str: ...
    @property
    def created_at(self) -> str: ...
    @property
    def offline(self) -> bool: ...
    @property
    def auth_code(self) -> str: ...
    @property
    def rrn(self) -> str: ...


@dataclass(frozen=True)
class AuthResponse:
    approved: bool
    response_code: str  # field 39, e.g. "00", "05", "51", "91"; "10" partially approved
    message: str  # what the shopkeeper sees: "Approved", "Insufficient funds", ...
    auth_code: str = ""  # field 38
    rrn: str = ""  # field 37
    issuer_data: bytes = b""  # field 55 from the host (91 ARPC, 71/72 scripts)
    # a partial approval: the smaller amount approved (field 4), more than 0 and less than asked
    approved_amount: int | None = None


@dataclass(frozen=True)
class SettlementResult:
    agreed: bool
    response_code: str
    message: str
    host_totals: BatchTotals | None = None
    extra: dict[str, str] = field(default_factory=dict)


class Acquirer(Protocol):
    """What the terminal needs of an acquirer. Every method may raise HostUnavailable/NoReply."""

    def authorize(self, request: AuthRequest) -> AuthResponse: ...

    def reverse(self, original: AuthRequest, reason: str, repeat: bool = False) -> bool:
        """Reverse an authorization (or, for a void of an offline approval the host was
        advised of, that advice); True once the host acknowledged it. `reason` is a
        ReversalReason. `repeat`: sent before (ISO 8583 0401); an acquirer without repeat
        messages may ignore it."""
        ...

    def advise(self, request: AuthRequest, repeat: bool = False) -> bool:
        """Send an advice of an offline approval; True once acknowledged (`repeat`: 0221)."""
        ...

    def settle(self, totals: BatchTotals, batch: list[AuthRequest]) -> SettlementResult: ...

    def echo(self) -> bool: ...

    def close(self) -> None: ...


@runtime_checkable
class TipAdjustments(Protocol):
    """An optional capability of an acquirer: tip adjustments (`pitap tip`). An acquirer
    without it takes tips only with the sale (`pitap pay --tip`)."""

    def adjust_tip(self, original: AuthRequest, tip: int, stan: int,
                   repeat: bool = False) -> AuthResponse:
        """Set the tip of the approved `original` (no card data: its references) to `tip`,
        its total to the amount before the tip plus `tip`; the message numbered `stan`.
        `approved` False: the host refused the adjustment (the payment stays as it was).
        HostUnavailable / NoReply as every call."""
        ...


@runtime_checkable
class OwnConnections(Protocol):
    """An optional capability of an acquirer: the same acquirer on a connection of its own
    (store-and-forward takes one, so that a queued reversal waiting for its answer never holds
    up a customer's authorization). An acquirer without it shares its one connection."""

    def companion(self) -> Acquirer: ...
