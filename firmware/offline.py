"""Deferred authorization ([offline]): may a payment the acquirer could not be reached for be
stored and forwarded later, within the merchant's limits?

Only when the request certainly never left (HostUnavailable; an unknown outcome is reversed,
never stored), only purchases in the terminal's currency, only with an ARQC the issuer can
check later, only schemes the merchant allows, within the amount, total, count, same-card and
age limits, and never for an expired card. The merchant carries the risk: a stored payment may
be declined when it is forwarded ("declined after the fact").

`refusal(...)` returns None when the payment may be stored, else an `OfflineRefusal`: the
customer's reason code and one line for the journal that names the limit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from firmware.config import OfflineSection
from firmware.emv.dates import yymm_passed
from firmware.money import Money
from firmware.reasons import Reason
from ui.money import operator_text

__all__ = ["OfflineRefusal", "expired", "refusal", "same_card", "too_old"]


@dataclass(frozen=True)
class OfflineRefusal:
    """Why a payment was not stored: the customer's reason and the journal's line."""

    reason: Reason
    text: str


def expired(expiry: str, when: dt.datetime) -> bool:
    """A YYMM expiry date before the payment's month (an unreadable one counts as expired)."""
    return yymm_passed(expiry, when.date()) is not False


def refusal(
    policy: OfflineSection,
    money: Money,
    scheme: str,
    expiry: str,
    cryptogram: bool,
    when: dt.datetime,
    stored_count: int,
    stored_amount: int,
    oldest_stored: str,
    same_card_stored: int,
) -> OfflineRefusal | None:
    """None when the payment may be stored; otherwise why not, the limit named."""

    def over(text: str) -> OfflineRefusal:
        return OfflineRefusal(Reason.OFFLINE_LIMIT, f"not stored offline: {text}")

    def amount(minor: int) -> str:
        return operator_text(Money(minor, money.currency))

    if scheme not in policy.schemes:
        return over(f"scheme {scheme or 'unknown'} not in offline.schemes")
    if not cryptogram:
        return over("no cryptogram the issuer can check later")
    if expired(expiry, when):
        return OfflineRefusal(Reason.EXPIRED, "not stored offline: the card has expired")
    if money.minor > policy.max_amount:
        return over(f"{amount(money.minor)} is over offline.max_amount "
                    f"({amount(policy.max_amount)})")
    if stored_amount + money.minor > policy.max_total:
        return over(f"{amount(stored_amount)} already stored: with this one over "
                    f"offline.max_total ({amount(policy.max_total)})")
    if stored_count + 1 > policy.max_count:
        return over(f"{stored_count} payment(s) already stored: offline.max_count "
                    f"({policy.max_count}) reached")
    if same_card_stored + 1 > policy.max_same_card:
        return over(f"this card already has {same_card_stored} stored payment(s): "
                    f"offline.max_same_card ({policy.max_same_card}) reached")
    if oldest_stored and too_old(oldest_stored, policy.max_age_h, when):
        return over(f"a stored payment is older than offline.max_age_h ({policy.max_age_h:g} h):"
                    " forward it first")
    return None


def too_old(created_at: str, max_age_h: float, now: dt.datetime) -> bool:
    """A journal moment (ISO 8601, UTC) more than `max_age_h` hours before `now`."""
    try:
        then = dt.datetime.fromisoformat(created_at)
    except ValueError:
        return True
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.UTC)
    return (now - then) > dt.timedelta(hours=max_age_h)


def same_card(tokens: Iterable[str], token: str) -> int:
    """How many of the stored payments' `tokens` are this card's."""
    return sum(1 for t in tokens if t == token)
