"""Terminal action analysis (EMV Book 3 10.7): the TVR against the TACs and IACs.

Decides which cryptogram the terminal asks the card for in GENERATE AC: AAC when a denial bit is
set (and always for a refund: the host does the rest), ARQC when online is required or an online
bit is set, else TC. The TVR at this point is what the card is given in CDOL1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware.emv.flags import CryptogramType, Tvr
from firmware.emv.outcome import TxnType
from firmware.emv.tags import Tag

if TYPE_CHECKING:
    from firmware.emv.session import Session


def _iac(s: Session, tag: Tag, absent: int) -> Tvr:
    """An issuer action code; when the card sent none, all bits `absent` (0x00 or 0xFF)."""
    value = s.card.get(tag)
    return Tvr.of(value if value is not None and len(value) == 5 else bytes([absent] * 5))


def requested_cryptogram(s: Session) -> CryptogramType:
    """The cryptogram type to ask for; puts the TVR where CDOL1 data reads it."""
    cand = s.candidate
    cfg = cand.config
    tvr = s.tvr
    s.term[Tag.TVR] = tvr.encoded()
    if s.txn.txn_type is TxnType.REFUND:
        return CryptogramType.AAC
    if tvr & (Tvr.of(cfg.tac_denial) | _iac(s, Tag.IAC_DENIAL, 0x00)):
        return CryptogramType.AAC
    if cand.online_required or tvr & (Tvr.of(cfg.tac_online) | _iac(s, Tag.IAC_ONLINE, 0xFF)):
        return CryptogramType.ARQC
    return CryptogramType.TC
