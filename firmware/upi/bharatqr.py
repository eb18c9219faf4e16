"""The BharatQR form of a dynamic UPI QR: EMVCo's merchant-presented QR (MPM), TLV in ASCII,
as NPCI's interoperable QR carries UPI.

Each data object is a 2-digit tag, a 2-digit length and the value. The payload: 00 format "01",
01 initiation "12" (dynamic: one payment), 26 UPI merchant account (00 RuPay/NPCI RID
A000000524, 01 the payee VPA), 27 (00 the RID, 01 our reference `tr`), 52 MCC, 53 currency
"356" (INR), 54 amount "250.00", 58 country "IN", 59 merchant name (25 at most), 60 city (15 at
most), 62 additional data (05 reference label = `tr`, 08 purpose = the note), and last 63, the
CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF; binascii.crc_hqx) of everything before its value,
"6304" included, in four upper-case hex digits.

The tag 26/27 layout is the one NPCI's BharatQR codes carry in the field; check it against your
acquirer's specification before a shop uses this form (config: upi.qr_form = "bharatqr").
"""

from __future__ import annotations

import binascii

from firmware.upi.link import PaymentLink, UpiLinkError, rupees

NPCI_RID = "A000000524"
MAX_NAME, MAX_CITY, MAX_SUBFIELD = 25, 15, 25


def data_object(tag: str, value: str) -> str:
    """One EMVCo data object: tag (2 digits), length (2 digits), value (1..99 characters)."""
    if not (len(tag) == 2 and tag.isdigit()):
        raise ValueError(f"EMV QR tag must be 2 digits, got {tag!r}")
    if not 1 <= len(value) <= 99:
        raise UpiLinkError(f"tag {tag}", f"must be 1..99 characters, got {len(value)}")
    return f"{tag}{len(value):02d}{value}"


def crc16(text: str) -> str:
    """CRC-16/CCITT-FALSE of `text` (ASCII) as 4 upper-case hex digits ('123456789' -> 29B1)."""
    return f"{binascii.crc_hqx(text.encode('ascii'), 0xFFFF):04X}"


def crc_ok(payload: str) -> bool:
    """True when `payload` ends in a tag 63 whose CRC matches what precedes it."""
    return len(payload) > 8 and payload[-8:-4] == "6304" and crc16(payload[:-4]) == payload[-4:]


def _ascii(field: str, value: str, limit: int) -> str:
    """`value` cut to `limit` characters; only printable ASCII goes into an EMV QR."""
    value = value.strip()[:limit].rstrip()
    if not value or not all(0x20 <= ord(ch) < 0x7F for ch in value):
        raise UpiLinkError(field, f"must be 1..{limit} printable ASCII characters for BharatQR, "
                                  f"got {value[:40]!r}")
    return value


def build_bharatqr(link: PaymentLink, merchant_city: str) -> str:
    """`link` as a BharatQR payload (EMVCo MPM, dynamic), its CRC appended. Names and cities
    longer than EMVCo allows are cut; a reference over 25 characters is a UpiLinkError."""
    if len(link.reference) > MAX_SUBFIELD:
        raise UpiLinkError("tr", f"must be at most {MAX_SUBFIELD} characters for BharatQR")
    extra = data_object("05", link.reference)
    if link.note:
        extra += data_object("08", _ascii("tn", link.note, MAX_SUBFIELD))
    body = "".join([
        data_object("00", "01"),
        data_object("01", "12"),
        data_object("26", data_object("00", NPCI_RID) + data_object("01", link.payee_vpa)),
        data_object("27", data_object("00", NPCI_RID) + data_object("01", link.reference)),
        data_object("52", link.mcc),
        data_object("53", "356"),
        data_object("54", rupees(link.amount)),
        data_object("58", "IN"),
        data_object("59", _ascii("pn", link.payee_name, MAX_NAME)),
        data_object("60", _ascii("city", merchant_city, MAX_CITY)),
        data_object("62", extra),
    ]) + "6304"
    return body + crc16(body)
