"""The contract between the terminal and a UPI payment service provider (PSP), and the data
that crosses it.

A Psp is found by name in the `pitap.upi` entry point group (`connect_psp`); the HTTP JSON
client (firmware.upi.http_psp) is one implementation. The terminal asks the PSP to expect one
payment (a collect/intent request: amount, our reference `tr`), shows its QR, polls the status
until it is final, and cancels when the shopkeeper gives up; a paid one can be refunded to
its payer. Only SUCCESS from the PSP makes a
payment approved; an error never does.

Errors: PspUnavailable (the request never reached the PSP: nothing was created), PspNoReply
(it may have: ask the status again before anything else), PspRejected (the PSP refused the
request as malformed or conflicting; UnknownRequest: it knows no such reference).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

from firmware.errors import PitapError

if TYPE_CHECKING:
    from firmware.upi.config import UpiSection

ENTRY_POINT_GROUP = "pitap.upi"


class UpiStatus(enum.StrEnum):
    """Where a UPI payment request stands at the PSP. Only SUCCESS is money received."""

    SUCCESS = "SUCCESS"  # the payer paid: final
    FAILURE = "FAILURE"  # the payer declined or the payment failed: final
    PENDING = "PENDING"  # not paid yet: ask again
    EXPIRED = "EXPIRED"  # no longer payable (timed out, or cancelled by us): final

    @property
    def final(self) -> bool:
        return self is not UpiStatus.PENDING


class PspError(PitapError):
    """A PSP problem, with a one-line message for the shopkeeper's log."""


class PspUnavailable(PspError):
    """The request never reached the PSP (refused, unreachable): nothing was created there."""


class PspNoReply(PspError):
    """The request may have reached the PSP but no usable reply came (timeout, dropped,
    garbled, a server error): the outcome is unknown until a status query says it."""


class PspRejected(PspError):
    """The PSP answered and refused the request (malformed, or a reference reused for another
    payment)."""


class UnknownRequest(PspRejected):
    """The PSP knows no request with this reference: it was never created there."""


@dataclass(frozen=True)
class CollectRequest:
    """One payment the PSP is to expect: `amount` in paise, `reference` our unique `tr`."""

    reference: str
    amount: int
    payee_vpa: str
    payee_name: str
    mcc: str
    note: str = ""
    expires_in_s: int = 120  # after this the PSP ends it as EXPIRED


@dataclass(frozen=True)
class UpiPayment:
    """What the PSP says of one request. `payer` is the payer's VPA masked (ra****@okicici)."""

    reference: str
    status: UpiStatus
    amount: int  # paise, as the PSP has it
    psp_reference: str = ""  # the PSP's id of the payment (UPI RRN / txn id) once it has one
    payer: str = field(default="", repr=False)
    reason: str = ""  # why FAILURE / EXPIRED, free text for the log


class Psp(Protocol):
    """What the terminal needs of a UPI PSP. Every method may raise a PspError."""

    def create(self, request: CollectRequest) -> UpiPayment:
        """Ask the PSP to expect `request` (PENDING). Idempotent: the same request again
        returns the same payment; another payment under the same reference is PspRejected."""
        ...

    def status(self, reference: str) -> UpiPayment:
        """Where the request stands now (UnknownRequest if the PSP never got it)."""
        ...

    def cancel(self, reference: str) -> UpiPayment:
        """Withdraw a pending request. Returns its final state: EXPIRED when withdrawn, SUCCESS
        when the payer paid first (then the money is received and must be honoured)."""
        ...

    def refund(self, reference: str, refund_reference: str, amount: int) -> UpiPayment:
        """Send `amount` (paise) of the paid request `reference` back to its payer, under our
        `refund_reference`. Idempotent: the same refund again returns the same answer (so a
        PspNoReply is settled by asking again). The answer's reference is `refund_reference`:
        SUCCESS refunded, FAILURE refused (not paid, more than is left), PENDING not yet."""
        ...

    def close(self) -> None: ...


def mask_vpa(vpa: str) -> str:
    """A payer's VPA as the journal and screens may show it: the first two characters of the
    handle and the provider, 'rahul.k@okicici' -> 'ra*****@okicici'."""
    handle, at, provider = vpa.partition("@")
    shown = handle[:2] if len(handle) > 3 else handle[:1]
    return f"{shown}{'*' * max(3, len(handle) - len(shown))}{at}{provider}"


def psp_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def connect_psp(settings: UpiSection, source: object = "configuration") -> Psp:
    """The PSP plug-in named by `settings.psp` in the `pitap.upi` group, built with the
    settings. ConfigError (naming `source`) if no installed plug-in has that name."""
    from firmware.config import ConfigError

    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == settings.psp]
    if not found:
        known = ", ".join(psp_names()) or "none installed"
        raise ConfigError(f"{source}: upi.psp: no PSP plug-in named {settings.psp!r} in the "
                          f"{ENTRY_POINT_GROUP} entry points (known: {known})")
    return found[0].load()(settings)
