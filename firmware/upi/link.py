"""The `upi://pay?` link of a dynamic QR, as NPCI's UPI linking specification defines it.

One payment, one link: payee address `pa` (the VPA), payee name `pn`, amount `am` in rupees with
two decimals, currency `cu=INR`, our unique transaction reference `tr`, note `tn`, merchant
category code `mc` (ISO 18245, four digits), in that order. Values are percent-encoded as
RFC 3986 asks of a query value: everything but the unreserved characters and '@' (so a space is
%20, never '+', and '&', '=', '%', '+' cannot break the link apart).

Every field is checked before anything is encoded; a bad one is a UpiLinkError naming it. Pure
functions over data: no I/O.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from firmware.errors import PitapError

# A VPA: handle@provider. The handle: letters, digits, '.', '-', '_' (NPCI allows these);
# the provider: a PSP's handle (okaxis, ybl, paytm, ...) or a bank's ifsc.npci form.
VPA = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}@[A-Za-z][A-Za-z0-9.-]{1,63}")
REFERENCE = re.compile(r"[A-Za-z0-9]{1,35}")  # tr: alphanumeric, at most 35 (UPI's refId)
MCC = re.compile(r"[0-9]{4}")
CARD_LIKE = re.compile(r"[0-9]{13}")
MAX_NAME = 50  # pn: characters a payer's app shows in full
MAX_NOTE = 50  # tn: characters
MIN_AMOUNT = 1  # paise
MAX_AMOUNT = 10_000_000  # paise: Rs 1,00,000, UPI's per-payment limit for most merchants


class UpiLinkError(PitapError, ValueError):
    """A field that cannot go into a UPI link; the message names the field (pa, pn, am...)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"UPI link: {field} {problem}")
        self.field = field


@dataclass(frozen=True)
class PaymentLink:
    """One dynamic QR's content, before encoding. `amount` is in paise (minor units of INR)."""

    payee_vpa: str  # pa
    payee_name: str  # pn
    amount: int  # am, paise
    reference: str  # tr: unique per payment
    note: str = ""  # tn
    mcc: str = ""  # mc: merchant category code; required of a merchant's QR, so of ours
    max_amount: int = MAX_AMOUNT  # paise: the merchant's UPI limit (config may lower it)

    def __post_init__(self) -> None:
        check_vpa(self.payee_vpa)
        _check_text("pn", self.payee_name, 1, MAX_NAME)
        _check_text("tn", self.note, 0, MAX_NOTE)
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise UpiLinkError("am", f"must be a whole number of paise, got {self.amount!r}")
        if not MIN_AMOUNT <= self.amount <= self.max_amount:
            raise UpiLinkError("am", f"must be {rupees(MIN_AMOUNT)}..{rupees(self.max_amount)} "
                                     f"INR, got {self.amount} paise")
        if not REFERENCE.fullmatch(self.reference):
            raise UpiLinkError("tr", "must be 1..35 letters and digits, unique per payment, got "
                                     f"{self.reference[:40]!r}")
        if not MCC.fullmatch(self.mcc):
            raise UpiLinkError("mc", f"must be a 4-digit merchant category code, got "
                                     f"{self.mcc[:10]!r}")


def check_vpa(vpa: str) -> str:
    """`vpa` when it has the shape of a UPI address (handle@provider), else UpiLinkError."""
    if not isinstance(vpa, str) or not VPA.fullmatch(vpa):
        shown = vpa[:40] if isinstance(vpa, str) else vpa
        raise UpiLinkError("pa", f"must be a UPI address like shop@okaxis, got {shown!r}")
    return vpa


def _check_text(field: str, value: str, lo: int, hi: int) -> None:
    if not isinstance(value, str):
        raise UpiLinkError(field, f"must be text, got {value!r}")
    if len(value) > hi or (lo and not value.strip()):
        raise UpiLinkError(field, f"must be {lo}..{hi} characters, got {len(value)}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise UpiLinkError(field, "must not hold control characters")


def rupees(paise: int) -> str:
    """Paise as the link writes `am`: 25000 -> '250.00', 5 -> '0.05'."""
    return f"{paise // 100}.{paise % 100:02d}"


def _encode(value: str) -> str:
    return quote(value, safe="@")


def build_link(link: PaymentLink) -> str:
    """The `upi://pay?...` text of `link` (already checked when it was made)."""
    fields = [("pa", link.payee_vpa), ("pn", link.payee_name), ("am", rupees(link.amount)),
              ("cu", "INR"), ("tr", link.reference)]
    if link.note:
        fields.append(("tn", link.note))
    fields.append(("mc", link.mcc))
    return "upi://pay?" + "&".join(f"{key}={_encode(value)}" for key, value in fields)


def new_reference(terminal_id: str) -> str:
    """A fresh `tr`: the terminal id's letters and digits (at most 8) and 64 random bits in hex,
    so two terminals of one merchant never collide and a restart never reuses one; drawn again
    in the rare case it holds a run of 13 digits (it would look like a card number)."""
    prefix = "".join(ch for ch in terminal_id if ch.isascii() and ch.isalnum())[:8]
    while True:  # never 13 digits in a row: what the logs' and journal's scrubbers take for a PAN
        reference = f"{prefix}{secrets.token_hex(8).upper()}"
        if not CARD_LIKE.search(reference):
            return reference
