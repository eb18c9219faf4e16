"""Cardholder verification: which method a tap used, and its 9F34 CVM results.

Visa-style (kernel 3): the phone says in its CTQ what it did or wants (`by_ctq`). Mastercard-style
and generic (`by_aip`): the AIP says whether the phone verifies its owner, else the terminal's own
capabilities decide. Both record the decision with `record` (Session.cvm, 9F34, the TVR bit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware.emv.flags import Aip, CryptogramType, Ctq, TerminalCapabilities, Tsi, Ttq, Tvr
from firmware.emv.outcome import CVM_RESULTS, CvmMethod, OutcomeKind, Prompt
from firmware.emv.tags import Tag
from firmware.emv.verdict import FlowEnd

if TYPE_CHECKING:
    from firmware.emv.session import Session

# 9F34 CVM results for the methods a phone terminal uses (None: none decided yet).


def record(s: Session, method: CvmMethod) -> None:
    """Keep the verification decided: s.cvm, its 9F34 result, the TVR bit if it failed."""
    s.cvm = method
    if method is CvmMethod.FAILED:
        s.tvr |= Tvr.CARDHOLDER_VERIFICATION_FAILED
    s.term[Tag.CVM_RESULTS] = CVM_RESULTS[method]


def card_qualifiers(s: Session) -> Ctq:
    """The phone's CTQ (9F6C); no bits when it sent none or not two bytes."""
    ctq = s.card.get(Tag.CTQ, b"")
    return Ctq.of(ctq) if len(ctq) == 2 else Ctq(0)


def by_ctq(s: Session, ac_type: CryptogramType | None) -> None:
    """Kernel 3: the method the CTQ names; online PIN only with an ARQC and a TTQ that takes it."""
    cand = s.candidate
    ctq = card_qualifiers(s)
    ttq = Ttq.of(cand.ttq)
    if not cand.cvm_required:
        method = CvmMethod.NO_CVM
    elif ctq & Ctq.CONSUMER_DEVICE_CVM_PERFORMED:
        method = CvmMethod.CDCVM
    elif ctq & Ctq.ONLINE_PIN_REQUIRED:
        if not (ttq & Ttq.ONLINE_PIN_SUPPORTED and ac_type is CryptogramType.ARQC):
            raise FlowEnd(
                OutcomeKind.TRY_ANOTHER_INTERFACE,
                "phone asks for online PIN, which this terminal cannot take",
                Prompt.USE_ANOTHER_CARD,
            )
        method = CvmMethod.ONLINE_PIN
    elif ctq & Ctq.SIGNATURE_REQUIRED and ttq & Ttq.SIGNATURE_SUPPORTED:
        method = CvmMethod.SIGNATURE
    else:
        method = CvmMethod.FAILED
    record(s, method)


def by_aip(s: Session) -> None:
    """Kernel 2 and generic: on the phone if its AIP says so, else signature if the terminal can."""
    cand = s.candidate
    terminal = TerminalCapabilities.of(cand.config.terminal_capabilities)
    if not cand.cvm_required:
        method = CvmMethod.NO_CVM
    elif Aip.of(s.card[Tag.AIP]) & Aip.ON_DEVICE_CVM_SUPPORTED:
        method = CvmMethod.CDCVM
    elif terminal & TerminalCapabilities.SIGNATURE:
        method = CvmMethod.SIGNATURE
    else:
        method = CvmMethod.FAILED
    record(s, method)
    s.tsi |= Tsi.CARDHOLDER_VERIFICATION_PERFORMED
