"""What the kernel hands back: the transaction's terminal data going in, one Outcome coming out.

These are the kernel's public types; the terminal loop, the host and the screens read them.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from enum import Enum


class TxnType(Enum):
    PURCHASE = "purchase"
    REFUND = "refund"

    @property
    def emv_code(self) -> int:
        """9C transaction type: 00 purchase, 20 refund."""
        return 0x20 if self is TxnType.REFUND else 0x00


@dataclass(frozen=True)
class TerminalTransaction:
    """Terminal-side data of one transaction, built by the terminal before the card is read."""

    amount: int  # 9F02, minor units
    currency: int  # 5F2A, ISO 4217 numeric
    country: int  # 9F1A, ISO 3166 numeric
    txn_type: TxnType = TxnType.PURCHASE
    amount_other: int = 0  # 9F03
    when: dt.datetime = field(default_factory=dt.datetime.now)  # 9A / 9F21
    unpredictable_number: bytes = field(default_factory=lambda: secrets.token_bytes(4))  # 9F37
    terminal_id: str = "PITAP001"  # 9F1C
    merchant_name: str = ""


class OutcomeKind(Enum):
    APPROVED = "approved"  # approved offline (TC)
    DECLINED = "declined"  # declined offline (AAC) or by risk management
    ONLINE_REQUEST = "online_request"  # ARQC: send field 55 to the acquirer
    TRY_AGAIN = "try_again"  # card left, "see phone": present again
    SELECT_NEXT = "select_next"
    END_APPLICATION = "end_application"  # nothing usable on the card / error
    TRY_ANOTHER_INTERFACE = "try_another_interface"


@dataclass
class Outcome:
    """The kernel's verdict, with everything the host, the journal and the screen need."""

    kind: OutcomeKind
    reason: str  # human readable: "fDDA signature invalid", "issuer certificate expired", ...
    ui_message: str = ""  # what to show: "See phone", "Try again", "Approved", ...
    scheme: str = ""  # "visa", "mastercard", "rupay", ...
    aid: bytes = b""
    application_label: str = ""
    kernel_id: int = 0
    tvr: bytes = bytes(5)  # 95
    tsi: bytes = bytes(2)  # 9B
    cvm: str = ""  # "cdcvm", "no_cvm", "signature", "online_pin"
    oda: str = ""  # "fdda", "cda", "sda", "dda", "" (none)
    # BER-TLV for ISO 8583 field 55 (9F26, 9F27, 9F10, 9F37, 9F36, 95, ...)
    icc_data: bytes = field(default=b"", repr=False)
    # token/PAN digits (sensitive: never log or show beyond first 6 / last 4)
    pan: str = field(default="", repr=False)
    pan_sequence: int | None = None  # 5F34
    expiry: str = ""  # YYMM from 5F24 / track 2
    # 57 / 9F6B as read (sensitive authentication data)
    track2: bytes = field(default=b"", repr=False)
    cryptogram: bytes = b""  # 9F26
    cid: int = 0  # 9F27
    atc: int = 0  # 9F36

    @property
    def masked_pan(self) -> str:
        return mask_pan(self.pan)


def mask_pan(pan: str) -> str:
    """First 6 / last 4 at most; shorter numbers show less."""
    digits = "".join(ch for ch in pan if ch.isdigit())
    if len(digits) < 11:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
