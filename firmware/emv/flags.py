"""Bit fields the kernel reads and writes, as named flags (EMV Book 3 Annex C, Book C-2, C-3).

Each multi-byte field is one `IntFlag` over its big-endian value, so byte 1 bit 8 of the 5-byte
TVR is `0x80_00_00_00_00`: `Tvr.of(card_bytes)` reads a field, `.encoded()` writes it back, and
unknown (RFU) bits are kept as they came. The cryptogram type in the CID (and in GENERATE AC's
P1) is a two-bit code, not flags: `CryptogramType`. Holds no behaviour beyond reading and writing
the bits; imports nothing of the kernel.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import Self


class _Bits(IntFlag):
    """A bit field read from the card's (or the configuration's) bytes, big-endian."""

    @classmethod
    def of(cls, data: bytes) -> Self:
        return cls(int.from_bytes(data, "big"))


class Aip(_Bits):
    """82 Application Interchange Profile (2 bytes)."""

    SDA_SUPPORTED = 0x40_00
    DDA_SUPPORTED = 0x20_00  # Kernel 3: fDDA
    ON_DEVICE_CVM_SUPPORTED = 0x02_00  # Kernel 2
    CDA_SUPPORTED = 0x01_00


class Ctq(_Bits):
    """9F6C Card Transaction Qualifiers (Kernel 3, 2 bytes)."""

    ONLINE_PIN_REQUIRED = 0x80_00
    SIGNATURE_REQUIRED = 0x40_00
    GO_ONLINE_IF_ODA_FAILS = 0x20_00
    CONSUMER_DEVICE_CVM_PERFORMED = 0x00_80


class Ttq(_Bits):
    """9F66 Terminal Transaction Qualifiers (Kernel 3, 4 bytes)."""

    ONLINE_PIN_SUPPORTED = 0x04_00_00_00
    SIGNATURE_SUPPORTED = 0x02_00_00_00
    ONLINE_CRYPTOGRAM_REQUIRED = 0x00_80_00_00
    CVM_REQUIRED = 0x00_40_00_00

    def encoded(self) -> bytes:
        return self.to_bytes(4, "big")


class TerminalCapabilities(_Bits):
    """9F33 Terminal Capabilities (3 bytes)."""

    SIGNATURE = 0x00_20_00  # byte 2: signature (paper)


class Tvr(_Bits):
    """95 Terminal Verification Results (5 bytes)."""

    ODA_NOT_PERFORMED = 0x80_00_00_00_00
    SDA_FAILED = 0x40_00_00_00_00
    ICC_DATA_MISSING = 0x20_00_00_00_00
    DDA_FAILED = 0x08_00_00_00_00
    CDA_FAILED = 0x04_00_00_00_00
    APPLICATION_EXPIRED = 0x00_40_00_00_00
    APPLICATION_NOT_YET_EFFECTIVE = 0x00_20_00_00_00
    CARDHOLDER_VERIFICATION_FAILED = 0x00_00_80_00_00
    FLOOR_LIMIT_EXCEEDED = 0x00_00_00_80_00
    LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED = 0x00_00_00_40_00

    def encoded(self) -> bytes:
        return self.to_bytes(5, "big")


class Tsi(_Bits):
    """9B Transaction Status Information (2 bytes)."""

    ODA_PERFORMED = 0x80_00
    CARDHOLDER_VERIFICATION_PERFORMED = 0x40_00
    CARD_RISK_MANAGEMENT_PERFORMED = 0x20_00
    TERMINAL_RISK_MANAGEMENT_PERFORMED = 0x08_00

    def encoded(self) -> bytes:
        return self.to_bytes(2, "big")


CRYPTOGRAM_TYPE_BITS = 0xC0  # CID bits 8-7; 11 is RFU


class CryptogramType(IntEnum):
    """The cryptogram a CID names, and the one GENERATE AC's P1 asks for."""

    AAC = 0x00
    TC = 0x40
    ARQC = 0x80

    @classmethod
    def of(cls, cid: int) -> CryptogramType | None:
        """The type in a CID byte; None for the RFU code 11."""
        bits = cid & CRYPTOGRAM_TYPE_BITS
        return None if bits == CRYPTOGRAM_TYPE_BITS else cls(bits)


CDA_SIGNATURE_REQUESTED = 0x10  # GENERATE AC P1: with a CDA signature

# Kernel 2: DF4B POS Cardholder Interaction Information AND '00030F' not zero means the phone
# wants its owner to look at it ("See phone", present again).
POSCII_SEE_PHONE = 0x00_03_0F
