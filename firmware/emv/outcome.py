"""What the kernel hands back: the transaction's terminal data going in, one Outcome coming out.

These are the kernel's public types and vocabularies (outcome kinds, prompts, cardholder
verification and offline authentication methods); the terminal loop, the host and the screens
read them. `TxnType` is the payment vocabulary's (firmware.payment), named here for the kernel.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from firmware.payment import TxnType


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


class Prompt(Enum):
    """What the kernel asks the screen to show; a code, translated by the screens."""

    APPROVED = "approved"
    DECLINED = "declined"
    PROCESSING = "processing"
    TRY_AGAIN = "try_again"
    SEE_PHONE = "see_phone"  # the phone wants its owner to look at it, then a second tap
    CARD_NOT_SUPPORTED = "card_not_supported"
    CARD_ERROR = "card_error"
    USE_ANOTHER_CARD = "use_another_card"
    AMOUNT_TOO_HIGH = "amount_too_high"
    CARD_EXPIRED = "card_expired"

    @property
    def text(self) -> str:
        """The English text the kernel puts in Outcome.ui_message (logs and older readers)."""
        return _PROMPT_TEXT[self]


_PROMPT_TEXT = {
    Prompt.APPROVED: "Approved",
    Prompt.DECLINED: "Declined",
    Prompt.PROCESSING: "Processing",
    Prompt.TRY_AGAIN: "Try again",
    Prompt.SEE_PHONE: "See phone",
    Prompt.CARD_NOT_SUPPORTED: "Card not supported",
    Prompt.CARD_ERROR: "Card error",
    Prompt.USE_ANOTHER_CARD: "Use another card",
    Prompt.AMOUNT_TOO_HIGH: "Amount too high",
    Prompt.CARD_EXPIRED: "Card expired",
}

# The prompt of an outcome kind when the step that decided it named none.
DEFAULT_PROMPT: dict[OutcomeKind, Prompt | None] = {
    OutcomeKind.APPROVED: Prompt.APPROVED,
    OutcomeKind.DECLINED: Prompt.DECLINED,
    OutcomeKind.ONLINE_REQUEST: Prompt.PROCESSING,
    OutcomeKind.TRY_AGAIN: Prompt.TRY_AGAIN,
    OutcomeKind.END_APPLICATION: Prompt.CARD_NOT_SUPPORTED,
    OutcomeKind.TRY_ANOTHER_INTERFACE: Prompt.USE_ANOTHER_CARD,
    OutcomeKind.SELECT_NEXT: None,
}


class CvmMethod(StrEnum):
    """How the cardholder was verified (Outcome.cvm holds the value)."""

    CDCVM = "cdcvm"  # on the phone (consumer device CVM)
    NO_CVM = "no_cvm"
    SIGNATURE = "signature"
    ONLINE_PIN = "online_pin"
    FAILED = "failed"


# 9F34 CVM results of each method (None: no CVM performed).
CVM_RESULTS: dict[CvmMethod | None, bytes] = {
    CvmMethod.CDCVM: bytes.fromhex("010002"),
    CvmMethod.NO_CVM: bytes.fromhex("1F0002"),
    CvmMethod.SIGNATURE: bytes.fromhex("1E0300"),
    CvmMethod.ONLINE_PIN: bytes.fromhex("420300"),
    CvmMethod.FAILED: bytes.fromhex("3F0001"),
    None: bytes.fromhex("3F0000"),
}


class OdaMethod(StrEnum):
    """Which offline data authentication passed (Outcome.oda holds the value)."""

    FDDA = "fdda"
    CDA = "cda"
    SDA = "sda"
    DDA = "dda"


@dataclass
class Outcome:
    """The kernel's verdict, with everything the host, the journal and the screen need."""

    kind: OutcomeKind
    reason: str  # human readable: "fDDA signature invalid", "issuer certificate expired", ...
    ui_message: str = ""  # English text of `prompt`: "See phone", "Try again", "Approved", ...
    scheme: str = ""  # "visa", "mastercard", "rupay", ...
    aid: bytes = b""
    application_label: str = ""
    kernel_id: int = 0
    tvr: bytes = bytes(5)  # 95
    tsi: bytes = bytes(2)  # 9B
    cvm: str = ""  # a CvmMethod value: "cdcvm", "no_cvm", "signature", "online_pin", "failed"
    oda: str = ""  # an OdaMethod value: "fdda", "cda", "sda", "dda"; "" (none)
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
    prompt: Prompt | None = None  # what to show, as a code (ui_message is its English text)

    @property
    def masked_pan(self) -> str:
        return mask_pan(self.pan)


def mask_pan(pan: str) -> str:
    """First 6 / last 4 at most; shorter numbers show less."""
    digits = "".join(ch for ch in pan if ch.isdigit())
    if len(digits) < 11:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
