"""The contract between the terminal and an acquirer, and the data that crosses it.

An Acquirer is found by name in the `pitap.acquirers` entry point group; the ISO 8583 link is one
implementation. Payments cross as plain dataclasses; the acquirer decides the wire format.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from firmware.money import BatchTotals


class HostUnavailable(Exception):
    """The request never left: refused, unreachable, TLS failure. Nothing to reverse."""


class NoReply(Exception):
    """The request may have reached the host but no usable reply came: outcome unknown.

    The caller must queue a reversal."""


@dataclass(frozen=True)
class AuthRequest:
    """One authorization (or financial) request for a sale or a refund."""

    stan: int  # field 11, 1..999999
    amount: int  # minor units
    currency: int  # ISO 4217 numeric
    txn_type: str  # "purchase" | "refund"
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


@dataclass(frozen=True)
class AuthResponse:
    approved: bool
    response_code: str  # field 39, e.g. "00", "05", "51", "91"
    message: str  # what the shopkeeper sees: "Approved", "Insufficient funds", ...
    auth_code: str = ""  # field 38
    rrn: str = ""  # field 37
    issuer_data: bytes = b""  # field 55 from the host (91 ARPC, 71/72 scripts)


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
        """Reverse an authorization; True once the host acknowledged it. `repeat`: sent before
        (ISO 8583 0401); an acquirer without repeat messages may ignore it."""
        ...

    def advise(self, request: AuthRequest, repeat: bool = False) -> bool:
        """Send an advice of an offline approval; True once acknowledged (`repeat`: 0221)."""
        ...

    def settle(self, totals: BatchTotals, batch: list[AuthRequest]) -> SettlementResult: ...

    def echo(self) -> bool: ...

    def close(self) -> None: ...
