"""Processing restrictions: is the application expired, is it effective yet (EMV Book 3 10.4).

Pure reads of the session's card data against the transaction date; `check` sets the TVR bits
the GENERATE AC flow's terminal action analysis weighs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from firmware.emv.flags import Tvr
from firmware.emv.tags import Tag

if TYPE_CHECKING:
    from firmware.emv.session import Session


def yymmdd(value: bytes) -> dt.date | None:
    """A 3-byte BCD date (5F24, 5F25); None when it is not one."""
    text = value.hex()
    if len(value) != 3 or not text.isdigit():
        return None
    try:
        return dt.date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return None


def application_expired(s: Session) -> bool:
    """5F24 before the transaction date (an unreadable 5F24 counts as expired); else track 2."""
    on = s.txn.when.date()
    if Tag.APPLICATION_EXPIRATION_DATE in s.card:
        expiry = yymmdd(s.card[Tag.APPLICATION_EXPIRATION_DATE])
        return expiry is None or on > expiry
    yymm = s.expiry()
    if len(yymm) == 4 and yymm.isdigit():
        yy, mm = int(yymm[:2]), int(yymm[2:])
        return (2000 + yy, mm) < (on.year, on.month)
    return False


def check(s: Session) -> None:
    """TVR: application expired; application not yet effective (or 5F25 unreadable)."""
    if application_expired(s):
        s.tvr |= Tvr.APPLICATION_EXPIRED
    effective = s.card.get(Tag.APPLICATION_EFFECTIVE_DATE)
    if effective is not None:
        eff = yymmdd(effective)
        if eff is None or s.txn.when.date() < eff:
            s.tvr |= Tvr.APPLICATION_NOT_YET_EFFECTIVE
