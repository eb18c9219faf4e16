"""ISO 8583 messages a terminal sends and the replies it accepts, as field dicts.

Builds request dicts (0100/0200 sale or refund, 0220 advice, 0400/0401 reversal, 0500 settlement,
0320 batch upload, 0800 echo / sign-on) from the acquirer contract's dataclasses, checks that a
reply belongs to its request (MTI, STAN, terminal id); the response code (field 39) is a
firmware.host.response_codes.ResponseCode. Card data only passes through: nothing here logs it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from firmware.errors import PitapError
from firmware.host import response_codes
from firmware.host.acquirer import AuthRequest, AuthResponse
from firmware.host.dialect import Dialect
from firmware.host.response_codes import ResponseCode
from firmware.money import BatchTotals, Currency
from firmware.payment import TxnType

# POS entry mode (22): 07 = contactless chip (EMV), 1 = terminal can accept a PIN.
POS_ENTRY_CONTACTLESS = "071"
# A pre-authorization is goods and services (00) too: field 25 (the dialect's
# preauth_condition) and, for an increment or a completion, field 90 say what it is.
PROCESSING_CODES = {TxnType.PURCHASE: "000000", TxnType.REFUND: "200000",
                    TxnType.PREAUTH: "000000", TxnType.INCREMENT: "000000",
                    TxnType.COMPLETION: "000000"}
# The MTI a pre-authorization's hold and increments always go as (an authorization: funds held,
# nothing captured), whatever the dialect's sale_message.
PREAUTH_MTI = "0100"
SETTLEMENT_CODE = "920000"  # settlement request
SETTLEMENT_AFTER_UPLOAD_CODE = "960000"  # settlement trailer after a batch upload
NETWORK_ECHO = "301"
NETWORK_SIGN_ON = "001"


def response_message(code: str) -> str:
    """Field 39 -> what the shopkeeper reads (firmware.host.response_codes)."""
    return response_codes.message(code)


@dataclass(frozen=True)
class Expectation:
    """What the reply to one request must carry."""

    mti: str
    stan: str
    terminal_id: str


class ReplyMismatch(PitapError, ValueError):
    """A reply that is not the answer to the request in flight."""


def reply_mti(mti: str) -> str:
    """0100 -> 0110, 0401 -> 0410 (a repeat's reply is the base reply), 0800 -> 0810."""
    return mti[:2] + str(int(mti[2]) + 1) + "0"


def check_reply(doc: dict[str, str], expect: Expectation) -> None:
    if doc.get("t") != expect.mti:
        raise ReplyMismatch(f"reply MTI {doc.get('t')!r}, expected {expect.mti}")
    if doc.get("11") != expect.stan:
        raise ReplyMismatch(f"reply STAN {doc.get('11')!r}, expected {expect.stan}")
    if doc.get("41", "").strip() != expect.terminal_id.strip():
        raise ReplyMismatch(f"reply terminal id {doc.get('41')!r}, expected {expect.terminal_id}")
    if "39" not in doc:
        raise ReplyMismatch("reply without a response code (39)")


def parse_reply(raw: bytes, dialect: Dialect, expect: Expectation) -> dict[str, str]:
    """Bytes of one reply (framing removed) -> its fields, if it answers `expect`.

    Raises MessageError (undecodable) or ReplyMismatch (not our answer), nothing else."""
    doc = dialect.decode(raw)
    check_reply(doc, expect)
    return doc


def _approval_code(code: str) -> bool:
    """An issuer's approval code (38) is 6 letters/digits; "Y1" (offline) travels in 39 only."""
    return len(code) == 6 and code.isascii() and code.isalnum()


def _hex(data: bytes) -> str:
    return data.hex().upper()


def track2_text(track2: bytes, binary: bool) -> str:
    """Track 2 equivalent (57 / 9F6B, BCD with D separator, F padding) for field 35."""
    digits = track2.hex().upper().rstrip("F")
    return digits if binary else digits.replace("D", "=")


def _stan(n: int) -> str:
    if not 1 <= n <= 999999:
        raise ValueError(f"STAN {n} out of range 1..999999")
    return f"{n:06d}"


def _common(mti: str, stan: int, terminal_id: str, merchant_id: str, dialect: Dialect,
            now: dt.datetime | None = None) -> dict[str, str]:
    now = now or dt.datetime.now(dt.UTC)
    doc = {
        "t": mti,
        "7": now.astimezone(dt.UTC).strftime("%m%d%H%M%S"),
        "11": _stan(stan),
        "41": terminal_id.ljust(8)[:8],
        "42": merchant_id.ljust(15)[:15],
    }
    if dialect.nii:
        doc["24"] = dialect.nii
    return doc


def card_fields(req: AuthRequest, dialect: Dialect) -> dict[str, str]:
    """Fields 2/14/23/35/55 of a card transaction (sensitive: never log the result)."""
    doc: dict[str, str] = {}
    if req.pan:
        doc["2"] = req.pan
    if req.expiry:
        doc["14"] = req.expiry
    if req.pan_sequence is not None:
        doc["23"] = f"{req.pan_sequence:03d}"
    if req.track2:
        doc["35"] = track2_text(req.track2, dialect.binary("35"))
    if req.icc_data:
        doc["55"] = _hex(req.icc_data)
    return doc


def transaction_fields(req: AuthRequest) -> dict[str, str]:
    try:
        code = PROCESSING_CODES[req.txn_type]
    except KeyError:
        raise ValueError(f"unknown transaction type {req.txn_type!r}") from None
    return {
        "3": code,
        "4": f"{req.amount:012d}",
        "12": req.when.strftime("%H%M%S"),
        "13": req.when.strftime("%m%d"),
        "22": POS_ENTRY_CONTACTLESS,
        "25": "00",
        "49": f"{req.currency:03d}",
    }


def additional_amount(amount: int, currency: int, amount_type: str,
                      account_type: str = "00") -> str:
    """One field 54 amount (ISO 8583): account type (2), amount type (2, a tip: the dialect's
    `tip_amount_type`), currency (3), sign (C credit / D debit), amount (12 digits)."""
    if not 0 <= amount < 10**12:
        raise ValueError(f"additional amount {amount} out of range")
    return f"{account_type}{amount_type}{currency:03d}C{amount:012d}"


def parse_additional_amounts(text: str) -> dict[str, int]:
    """Field 54 -> {amount type: amount}; ValueError for anything but whole 20-character
    amounts (a D sign makes an amount negative)."""
    if len(text) % 20 or not text:
        raise ValueError(f"field 54 must be 20-character amounts, got {len(text)} characters")
    out: dict[str, int] = {}
    for i in range(0, len(text), 20):
        part = text[i:i + 20]
        sign, digits = part[7], part[8:]
        if sign not in "CD" or not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"field 54 amount {i // 20 + 1} is malformed")
        out[part[2:4]] = int(digits) * (-1 if sign == "D" else 1)
    return out


def tip_field(req: AuthRequest, dialect: Dialect) -> dict[str, str]:
    """Field 54 carrying the request's tip, when it has one and the dialect has field 54."""
    if not req.tip or "54" not in dialect.spec:
        return {}
    return {"54": additional_amount(req.tip, req.currency, dialect.tip_amount_type)}


def authorization(req: AuthRequest, mti: str, dialect: Dialect) -> dict[str, str]:
    """0100 (authorization) or 0200 (financial) for a sale or refund. Field 7 is the payment's
    moment (`req.when`, in UTC), as 12/13 and field 55's 9A/9F21: one clock per payment."""
    if req.deferred:  # a stored payment: the dialect's deferred MTI and POS condition (25)
        mti = dialect.deferred_message
    doc = _common(mti, req.stan, req.terminal_id, req.merchant_id, dialect, now=req.when)
    doc.update(transaction_fields(req))
    doc.update(card_fields(req, dialect))
    doc.update(tip_field(req, dialect))  # field 4 is the total, tip included
    if req.deferred:
        doc["25"] = dialect.deferred_condition
    if req.rrn:
        doc["37"] = req.rrn
    _preauth_fields(doc, req, dialect)
    return doc


def _preauth_fields(doc: dict[str, str], req: AuthRequest, dialect: Dialect) -> None:
    """A hold, an increment or a completion: field 25 says pre-authorization; an increment or a
    completion names its hold in field 90 (original data elements) and 37 (its RRN)."""
    if req.txn_type in (TxnType.PREAUTH, TxnType.INCREMENT, TxnType.COMPLETION):
        doc["25"] = dialect.preauth_condition
    if req.original_stan:  # the hold, an 0100 authorization
        when = dt.datetime.fromisoformat(req.original_at) if req.original_at else req.when
        doc["90"] = original_data(dataclasses.replace(req, stan=req.original_stan, when=when),
                                  PREAUTH_MTI)


def preauthorization(req: AuthRequest, dialect: Dialect) -> dict[str, str]:
    """0100 for a hold (card data, field 25 the dialect's preauth_condition) or an increment of
    one (no card data: field 90 and 37 name the hold, 4 is the amount added)."""
    return authorization(req, PREAUTH_MTI, dialect)


def advice(req: AuthRequest, dialect: Dialect, repeat: bool = False) -> dict[str, str]:
    """0220 (0221 repeated): an offline approval the acquirer has not seen yet."""
    doc = _common("0221" if repeat else "0220", req.stan, req.terminal_id, req.merchant_id,
                  dialect)
    doc.update(transaction_fields(req))
    doc.update(card_fields(req, dialect))
    doc["39"] = "Y1" if req.offline_approved else "00"  # Y1: approved offline by the card
    if _approval_code(req.auth_code):
        doc["38"] = req.auth_code
    if req.rrn:
        doc["37"] = req.rrn
    _preauth_fields(doc, req, dialect)  # a completion: 25 and the hold in 90
    return doc


def original_data(req: AuthRequest, original_mti: str) -> str:
    """Field 90: original MTI, STAN, transmission date/time, acquirer and forwarder ids."""
    when = req.when.astimezone(dt.UTC) if req.when.tzinfo else req.when
    return f"{original_mti}{req.stan:06d}{when.strftime('%m%d%H%M%S')}" + "0" * 22


def reversal(req: AuthRequest, dialect: Dialect, original_mti: str = "0100",
             repeat: bool = False, reason_code: str = "00") -> dict[str, str]:
    """0400 (0401 repeated) cancelling an authorization whose outcome is unknown, or a void.

    Carries the original STAN in 11 so the host finds what to cancel, the original MTI in 90
    (0220 when the original was an advice) and `reason_code` in 25 (a void: the dialect's
    `void_reason`); no card data beyond the PAN.
    """
    doc = _common("0401" if repeat else "0400", req.stan, req.terminal_id, req.merchant_id,
                  dialect)
    doc.update(transaction_fields(req))
    doc["25"] = reason_code
    if req.pan:
        doc["2"] = req.pan
    if req.pan_sequence is not None:
        doc["23"] = f"{req.pan_sequence:03d}"
    if req.rrn:
        doc["37"] = req.rrn
    if _approval_code(req.auth_code):
        doc["38"] = req.auth_code
    doc["90"] = original_data(req, original_mti)
    return doc


def tip_adjustment(original: AuthRequest, tip: int, stan: int, dialect: Dialect,
                   original_mti: str = "0100", repeat: bool = False) -> dict[str, str]:
    """A tip adjustment (`pitap tip`): the dialect's `adjust_message` (0220, 0221 repeated)
    with its `adjust_processing_code` (020000) in 3, the new total (the amount before the tip
    plus `tip`) in 4, the tip in 54, its own STAN in 11, the original's RRN (37), approval code
    (38) and original data elements (90: MTI, STAN, field 7). No card data."""
    mti = dialect.adjust_message
    if repeat and mti == "0220":
        mti = "0221"
    base = original.amount - original.tip
    doc = _common(mti, stan, original.terminal_id, original.merchant_id, dialect)
    doc.update(transaction_fields(dataclasses.replace(original, amount=base + tip)))
    doc["3"] = dialect.adjust_processing_code
    if "54" in dialect.spec:
        doc["54"] = additional_amount(tip, original.currency, dialect.tip_amount_type)
    if original.rrn:
        doc["37"] = original.rrn
    if _approval_code(original.auth_code):
        doc["38"] = original.auth_code
    doc["90"] = original_data(original, original_mti)
    return doc


def totals_text(t: BatchTotals) -> str:
    """Field 63: sales count (3) + amount (12), refunds count (3) + amount (12)."""
    return (f"{t.sales_count:03d}{t.sales_amount:012d}"
            f"{t.refunds_count:03d}{t.refunds_amount:012d}")


def parse_totals(text: str, currency: Currency, batch: int) -> BatchTotals:
    if len(text) != 30 or not text.isdigit():
        raise ValueError(f"settlement totals must be 30 digits, got {len(text)} characters")
    return BatchTotals(
        batch, currency,
        sales_count=int(text[0:3]), sales_amount=int(text[3:15]),
        refunds_count=int(text[15:18]), refunds_amount=int(text[18:30]),
    )


def settlement(totals: BatchTotals, stan: int, terminal_id: str, merchant_id: str,
               dialect: Dialect, after_upload: bool = False) -> dict[str, str]:
    doc = _common("0500", stan, terminal_id, merchant_id, dialect)
    doc["3"] = SETTLEMENT_AFTER_UPLOAD_CODE if after_upload else SETTLEMENT_CODE
    doc["49"] = f"{totals.currency.numeric:03d}"
    doc["60"] = f"{totals.batch:06d}"
    doc["63"] = totals_text(totals)
    return doc


def batch_upload(item: AuthRequest, stan: int, batch_number: int, dialect: Dialect,
                 original_mti: str = "0100") -> dict[str, str]:
    """0320: one transaction of the batch, when the host's totals disagree with ours."""
    doc = _common("0320", stan, item.terminal_id, item.merchant_id, dialect)
    doc.update(transaction_fields(item))
    if item.rrn:
        doc["37"] = item.rrn
    if _approval_code(item.auth_code):
        doc["38"] = item.auth_code
    doc["60"] = f"{original_mti}{item.stan:06d}{batch_number:06d}"
    return doc


def network(code: str, stan: int, terminal_id: str, merchant_id: str,
            dialect: Dialect) -> dict[str, str]:
    """0800 network management: 301 echo, 001 sign-on."""
    doc = _common("0800", stan, terminal_id, merchant_id, dialect)
    doc["70"] = code
    return doc


def approved_amount(doc: dict[str, str], requested: int) -> int | None:
    """Field 4 of a partial approval: the amount approved, more than 0 and less than asked;
    None when it is not that (what the host booked is then unknown)."""
    text = doc.get("4", "")
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < requested:
        return None
    return int(text)


def auth_response(doc: dict[str, str], dialect: Dialect, requested: int = 0) -> AuthResponse:
    """A matched 0110/0210 reply -> AuthResponse (issuer data from field 55, hex or binary).
    A partial approval (39 = 10) carries the amount approved from field 4 when that is an
    amount below `requested` (else None: the caller must treat the outcome as unknown)."""
    code = doc["39"]
    known = ResponseCode.of(code)
    partial = approved_amount(doc, requested) if known is not None and known.partial else None
    issuer = b""
    if doc.get("55"):
        try:
            issuer = bytes.fromhex(doc["55"])
        except ValueError:
            issuer = b""
    return AuthResponse(
        approved=known is not None and known.approved,
        response_code=code,
        message=response_message(code),
        auth_code=doc.get("38", "").strip(),
        rrn=doc.get("37", "").strip(),
        issuer_data=issuer,
        approved_amount=partial,
    )
