"""Data Object Lists (PDOL, CDOL1, DDOL): parse the card's list, build the data it asks for.

A DOL is a sequence of (tag, length) pairs with no values. The terminal answers with the
concatenated values, each fitted to the requested length by EMV Book 3 section 5.4: numeric (n)
values are padded or cut on the left, everything else on the right; a tag the terminal does not
have is sent as zeros. Pure functions; no card I/O.
"""

from __future__ import annotations

from firmware.emv.tags import Tag
from firmware.emv.tlv import TlvError, read_length, read_tag

# Terminal- and card-sourced tags whose format is numeric (n): left-padded with zeros.
NUMERIC_TAGS = frozenset(
    {
        Tag.AMOUNT_AUTHORISED,
        Tag.AMOUNT_OTHER,
        Tag.TRANSACTION_CURRENCY_CODE,
        Tag.TRANSACTION_DATE,
        Tag.TRANSACTION_TYPE,
        Tag.TERMINAL_COUNTRY_CODE,
        Tag.TRANSACTION_TIME,
        Tag.TRANSACTION_CURRENCY_EXPONENT,
        Tag.TRANSACTION_SEQUENCE_COUNTER,
        Tag.TERMINAL_FLOOR_LIMIT,
        Tag.MERCHANT_CATEGORY_CODE,
        Tag.ACQUIRER_IDENTIFIER,
        Tag.TRANSACTION_REFERENCE_CURRENCY_CODE,
        Tag.TRANSACTION_REFERENCE_CURRENCY_EXPONENT,
        Tag.TERMINAL_TYPE,
        Tag.CUSTOMER_EXCLUSIVE_DATA,
    }
)

MAX_DOL_DATA = 252  # the data of one command APDU (Lc) minus the template wrapper


def parse(dol: bytes) -> list[tuple[bytes, int]]:
    """(tag, length) pairs of a DOL; TlvError if it is malformed or asks for too much."""
    out: list[tuple[bytes, int]] = []
    pos = 0
    dol = bytes(dol)
    total = 0
    while pos < len(dol):
        tag, pos = read_tag(dol, pos)
        length, pos = read_length(dol, pos, tag)
        total += length
        if total > MAX_DOL_DATA:
            raise TlvError(f"DOL asks for {total} bytes, more than one command can carry")
        out.append((tag, length))
    return out


def fit(tag: bytes, value: bytes, length: int) -> bytes:
    """Fit a value to the length the card asked for (EMV Book 3 section 5.4)."""
    if len(value) == length:
        return value
    if tag in NUMERIC_TAGS:
        if len(value) > length:
            return value[len(value) - length :]
        return bytes(length - len(value)) + value
    if len(value) > length:
        return value[:length]
    return value + bytes(length - len(value))


def build(dol: bytes | list[tuple[bytes, int]], values: dict[bytes, bytes]) -> bytes:
    """The data the card asked for, from `values` (tag -> value); unknown tags as zeros."""
    pairs = parse(dol) if isinstance(dol, bytes | bytearray) else dol
    return b"".join(fit(tag, values.get(tag, b""), length) for tag, length in pairs)
