"""What a request's JSON body may hold, checked by the same rules as the command line.

Amounts are strings in major units with an optional decimal point ("12.50"; "1250" in JPY),
exactly as `pitap pay` takes them (firmware.commands.parse_amount): a JSON number is refused,
because a float cannot say 0.10 exactly. Unknown fields, wrong types, a bad amount or currency:
BadRequest naming the field, which the API answers with 400; nothing is started.

`tender` is "card" (the default) or "upi" (a dynamic QR, firmware.upi.tender): UPI only when
the terminal's currency is INR and [upi] is configured (`upi_ready`), a purchase with no tip,
as `pitap pay --upi` takes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from firmware.commands import UsageError, parse_amount
from firmware.config import Config
from firmware.errors import PitapError
from firmware.money import CURRENCIES, Currency
from firmware.payment import Tender, TxnType
from firmware.tips import TipRefused, check_tip, parse_tip

__all__ = ["BadRequest", "PaymentRequest", "parse_json", "payment_request", "tip_request"]

MAX_REFERENCE = 64
MAX_IDEMPOTENCY_KEY = 255
MAX_ID = 2**63 - 1  # a journal id is an SQLite integer
API_TYPES = (TxnType.PURCHASE, TxnType.REFUND, TxnType.PREAUTH)


class BadRequest(PitapError, ValueError):
    """A request the API refuses with 400; `field` names what is wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PaymentRequest:
    """A checked `POST /v1/payments`: `amount` the total (base + tip) in minor units."""

    amount: int
    currency: str
    txn_type: TxnType
    reference: str
    tip: int
    refund_of: int | None
    tender: Tender = Tender.CARD

    def fingerprint(self) -> str:
        """A hash of what was asked: the same Idempotency-Key with another request is refused.
        (A card payment's hash names no tender: the same as before UPI came.)"""
        asked = asdict(self)
        if self.tender is Tender.CARD:
            del asked["tender"]
        text = json.dumps(asked, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def parse_json(raw: bytes) -> dict[str, object]:
    """The body as a JSON object; BadRequest otherwise."""
    try:
        data = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"the body is not JSON: {str(exc)[:80]}", "body") from None
    except RecursionError:  # nested deeper than the decoder goes
        raise BadRequest("the body is not JSON: nested too deep", "body") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", "body")
    return data


def _only(data: dict[str, object], allowed: set[str]) -> None:
    for name in data:
        if name not in allowed:
            raise BadRequest(f"unknown field {name[:40]!r} (known: {', '.join(sorted(allowed))})",
                             name[:40])


def _string(data: dict[str, object], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if value is None:
        raise BadRequest(f"{name} is required", name)
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", name)
    return value


def _currency(cfg: Config, data: dict[str, object]) -> Currency:
    code = _string(data, "currency", cfg.currency.alpha)
    found = CURRENCIES.get(code.upper())
    if found is None:
        raise BadRequest(f"currency {code[:8]!r}: unknown (known: {', '.join(CURRENCIES)})",
                         "currency")
    if found != cfg.currency:
        raise BadRequest(f"currency {found}: this terminal takes {cfg.currency}", "currency")
    return found


def _amount(data: dict[str, object], name: str, cur: Currency) -> int:
    text = _string(data, name)
    try:
        return parse_amount(text, cur)
    except UsageError as exc:
        raise BadRequest(str(exc), name) from None


def _tip(cfg: Config, data: dict[str, object], base: int, cur: Currency) -> int:
    if data.get("tip") is None:
        return 0
    try:
        tip = parse_tip(_string(data, "tip"), cur)
        check_tip(cfg.tips, base, tip, cur)
    except TipRefused as exc:
        raise BadRequest(str(exc), "tip") from None
    return tip


def _tender(cfg: Config, data: dict[str, object], kind: TxnType, upi_ready: bool) -> Tender:
    text = _string(data, "tender", Tender.CARD.value)
    if text not in (Tender.CARD.value, Tender.UPI.value):
        raise BadRequest(f"tender {text[:20]!r}: card or upi", "tender")
    tender = Tender(text)
    if tender is Tender.CARD:
        return tender
    if cfg.currency.alpha != "INR":
        raise BadRequest(f"tender upi takes INR only, not {cfg.currency.alpha} "
                         "(terminal.currency)", "tender")
    if not upi_ready:
        raise BadRequest(f"tender upi: UPI is not configured ([upi] payee_vpa in {cfg.source})",
                         "tender")
    if kind is not TxnType.PURCHASE:
        raise BadRequest("tender upi is for purchases (a UPI payment's refund: type refund, "
                         "refund_of its id)", "tender")
    if data.get("tip") is not None:
        raise BadRequest("tip is for card payments, not with tender upi", "tip")
    return tender


def payment_request(cfg: Config, data: dict[str, object],
                    upi_ready: bool = False) -> PaymentRequest:
    """A checked payment request; BadRequest naming the field. `upi_ready`: the terminal has
    UPI at hand (INR, [upi] configured)."""
    from firmware.commands.pay import check_contactless_limit

    _only(data, {"amount", "currency", "type", "reference", "tip", "refund_of", "tender"})
    kind_text = _string(data, "type", TxnType.PURCHASE.value)
    if kind_text not in API_TYPES:
        raise BadRequest(f"type {kind_text[:20]!r}: purchase, refund or preauth", "type")
    kind = TxnType(kind_text)
    cur = _currency(cfg, data)
    base = _amount(data, "amount", cur)
    reference = _string(data, "reference", "")
    if len(reference) > MAX_REFERENCE or not reference.isprintable():
        raise BadRequest(f"reference: at most {MAX_REFERENCE} printable characters",
                         "reference")
    refund_of = data.get("refund_of")
    if refund_of is not None and (not isinstance(refund_of, int) or isinstance(refund_of, bool)
                                  or not 0 < refund_of <= MAX_ID):
        raise BadRequest("refund_of must be a payment id (a whole number > 0)", "refund_of")
    if refund_of is not None and kind is not TxnType.REFUND:
        raise BadRequest("refund_of goes with type refund", "refund_of")
    tender = _tender(cfg, data, kind, upi_ready)
    if tender is Tender.UPI:  # its limits are UPI's (upi.max_amount), checked by the tender
        return PaymentRequest(base, cur.alpha, kind, reference, 0, None, tender)
    if kind is not TxnType.PURCHASE and data.get("tip") is not None:
        raise BadRequest(f"a {kind.value} takes no tip", "tip")
    tip = _tip(cfg, data, base, cur)
    try:
        check_contactless_limit(cfg, base + tip, cur)
    except UsageError as exc:
        raise BadRequest(str(exc), "amount") from None
    return PaymentRequest(base + tip, cur.alpha, kind, reference, tip, refund_of)


def tip_request(cfg: Config, data: dict[str, object]) -> int:
    """`POST /v1/payments/{id}/tip` {"tip": "2.00"}: the tip in minor units."""
    _only(data, {"tip"})
    try:
        return parse_tip(_string(data, "tip"), cfg.currency)
    except TipRefused as exc:
        raise BadRequest(str(exc), "tip") from None


def hold_amount(cfg: Config, data: dict[str, object], required: bool) -> int | None:
    """`POST /v1/payments/{id}/increment` {"amount"} and `/complete` {"amount"?}."""
    _only(data, {"amount"})
    if data.get("amount") is None and not required:
        return None
    return _amount(data, "amount", cfg.currency)


def idempotency_key(value: str | None) -> str:
    if value is None or not value.strip():
        raise BadRequest("the Idempotency-Key header is required (any unique text a payment, "
                         "e.g. a UUID)", "Idempotency-Key")
    if len(value) > MAX_IDEMPOTENCY_KEY or not value.isprintable():
        raise BadRequest(f"Idempotency-Key: at most {MAX_IDEMPOTENCY_KEY} printable characters",
                         "Idempotency-Key")
    return value
