"""Processing restrictions: is the application expired, is it effective yet (EMV Book 3 10.4).

Pure reads of the session's card data against the transaction date; `check` sets the TVR bits
the GENERATE AC flow's terminal action analysis weighs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware.emv.dates import yymm_passed, yymmdd
from firmware.emv.flags import Tvr
from firmware.emv.tags import Tag

if TYPE_CHECKING:
    from firmware.emv.session import Session


def application_expired(s: Session) -> bool:
    """5F24 before the transaction date (an unreadable 5F24 counts as expired); else track 2."""
    on = s.txn.when.date()
    if Tag.APPLICATION_EXPIRATION_DATE in s.card:
        expiry = yymmdd(s.card[Tag.APPLICATION_EXPIRATION_DATE])
        return expiry is None or on > expiry
    return yymm_passed(s.expiry(), on) is True


def check(s: Session) -> None:
    """TVR: application expired; application not yet effective (or 5F25 unreadable)."""
    if application_expired(s):
        s.tvr |= Tvr.APPLICATION_EXPIRED
    effective = s.card.get(Tag.APPLICATION_EFFECTIVE_DATE)
    if effective is not None:
        eff = yymmdd(effective)
        if eff is None or s.txn.when.date() < eff:
            s.tvr |= Tvr.APPLICATION_NOT_YET_EFFECTIVE
