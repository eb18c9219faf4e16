"""Card action analysis: what the cryptogram the card returned means for the tap.

`after_gpo` (kernel 3): AAC declines (or "See phone" after the phone's own verification), ARQC
goes online, TC is approved offline only when the terminal agrees and fDDA verifies.
`after_generate_ac` (kernel 2, generic): AAC declines (or "See phone" from DF4B), CDA is checked
on an ARQC or TC, ARQC goes online, TC is approved only with offline data authentication
verified. A refund reads the card and leaves the rest to the acquirer. Each returns a Verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware.emv import capk, cda, data_authentication, oda, restrictions
from firmware.emv.cvm import card_qualifiers
from firmware.emv.flags import POSCII_SEE_PHONE, Aip, CryptogramType, Ctq, Tsi, Tvr
from firmware.emv.outcome import CvmMethod, OdaMethod, OutcomeKind, Prompt, TxnType
from firmware.emv.tags import Tag
from firmware.emv.verdict import FlowEnd, Verdict

if TYPE_CHECKING:
    from firmware.emv.session import Session

REFUND_READ = "refund: card read, AAC for the acquirer"
ONLINE = "online authorization (ARQC)"


def _refund(s: Session) -> bool:
    return s.txn.txn_type is TxnType.REFUND


# ---- kernel 3: the cryptogram came in the GPO answer -------------------------------------
def after_gpo(keys: capk.CaKeyStore, s: Session) -> Verdict:
    ac_type = CryptogramType.of(s.cid)
    if _refund(s) and ac_type is not None:
        return Verdict(OutcomeKind.ONLINE_REQUEST, REFUND_READ)
    if ac_type is CryptogramType.AAC:
        cdcvm = card_qualifiers(s) & Ctq.CONSUMER_DEVICE_CVM_PERFORMED
        if s.candidate.config.kernel == 3 and cdcvm:
            # a phone that declines after its own cardholder verification wants its owner to
            # look at it (Kernel 3: "See Phone", present again)
            return Verdict(
                OutcomeKind.TRY_AGAIN,
                "phone declined after its own verification (AAC with CTQ 'CDCVM performed')",
                Prompt.SEE_PHONE,
            )
        return Verdict(OutcomeKind.DECLINED, "card declined offline (AAC)")
    if ac_type is CryptogramType.ARQC:
        return Verdict(OutcomeKind.ONLINE_REQUEST, ONLINE)
    if ac_type is not CryptogramType.TC:
        raise FlowEnd(OutcomeKind.END_APPLICATION, f"CID {s.cid:02X} names no cryptogram type")
    return _offline_approval_fdda(keys, s)


def _offline_refusal(s: Session) -> Verdict | None:
    """The decline when the terminal will not take the phone's offline approval (None: it will)."""
    if s.candidate.online_required:
        return Verdict(OutcomeKind.DECLINED, "phone approved offline when online was required")
    if s.cvm is CvmMethod.FAILED:
        return Verdict(OutcomeKind.DECLINED, "cardholder verification required")
    if restrictions.application_expired(s):
        s.tvr |= Tvr.APPLICATION_EXPIRED
        return Verdict(OutcomeKind.DECLINED, "application expired", Prompt.CARD_EXPIRED)
    if not Aip.of(s.card[Tag.AIP]) & Aip.DDA_SUPPORTED:
        return Verdict(OutcomeKind.DECLINED, "offline approval without fDDA support refused")
    return None


def _offline_approval_fdda(keys: capk.CaKeyStore, s: Session) -> Verdict:
    """A TC: the terminal must agree and fDDA must pass."""
    refusal = _offline_refusal(s)
    if refusal is not None:
        return refusal
    try:
        data_authentication.fdda(keys, s)
    except oda.OdaError as exc:
        s.tvr |= Tvr.DDA_FAILED
        s.oda = None
        if card_qualifiers(s) & Ctq.GO_ONLINE_IF_ODA_FAILS:
            return Verdict(
                OutcomeKind.ONLINE_REQUEST, f"fDDA failed ({exc}); sent online as the phone asks"
            )
        return Verdict(OutcomeKind.DECLINED, f"fDDA failed: {exc}")
    data_authentication.passed(s, OdaMethod.FDDA)
    return Verdict(OutcomeKind.APPROVED, "approved offline (TC, fDDA verified)")


# ---- kernel 2 and generic: the answer to GENERATE AC --------------------------------------
def _declined(s: Session) -> Verdict:
    poscii = s.card.get(Tag.POS_CARDHOLDER_INTERACTION_INFORMATION, b"")
    if len(poscii) == 3 and int.from_bytes(poscii, "big") & POSCII_SEE_PHONE:
        return Verdict(
            OutcomeKind.TRY_AGAIN,
            "phone asks its owner to look at it (POS cardholder interaction, DF4B)",
            Prompt.SEE_PHONE,
        )
    if _refund(s):
        return Verdict(OutcomeKind.ONLINE_REQUEST, REFUND_READ)
    return Verdict(OutcomeKind.DECLINED, "card declined (AAC)")


def _cda_failed(s: Session, icc_key: oda.IccKey | None, signed_tlvs: bytes) -> Verdict | None:
    """With CDA requested: check it (None when it verified); without, the cryptogram's there."""
    if icc_key is None:
        if len(s.cryptogram) != 8:
            raise FlowEnd(OutcomeKind.END_APPLICATION, "card data missing: cryptogram (9F26)")
        return None
    try:
        cda.verify(s, icc_key, signed_tlvs)
    except oda.OdaError as exc:
        s.tvr |= Tvr.CDA_FAILED
        return Verdict(OutcomeKind.DECLINED, f"CDA failed: {exc}")
    data_authentication.passed(s, OdaMethod.CDA)
    return None


def _approval(s: Session, cda_failure: str) -> Verdict:
    """A TC is only ever accepted with offline data authentication verified."""
    if s.oda is OdaMethod.CDA:
        return Verdict(OutcomeKind.APPROVED, "approved offline (TC, CDA verified)")
    if s.oda in (OdaMethod.DDA, OdaMethod.SDA) and s.candidate.config.kernel == 0:
        return Verdict(
            OutcomeKind.APPROVED, f"approved offline (TC, {s.oda.value.upper()} verified)"
        )
    reason = "offline approval without offline data authentication refused"
    if cda_failure or s.oda_failure:
        reason += f" ({cda_failure or s.oda_failure})"
    return Verdict(OutcomeKind.DECLINED, reason)


def after_generate_ac(
    s: Session, icc_key: oda.IccKey | None, signed_tlvs: bytes, cda_failure: str
) -> Verdict:
    """`icc_key` is set when CDA was requested; `cda_failure` says why CDA was not possible."""
    ac_type = CryptogramType.of(s.cid)
    if ac_type is CryptogramType.AAC:
        return _declined(s)
    failure = _cda_failed(s, icc_key, signed_tlvs)
    if failure is not None:
        return failure
    s.tsi |= Tsi.CARD_RISK_MANAGEMENT_PERFORMED
    if ac_type is CryptogramType.ARQC:
        reason = ONLINE
        if cda_failure:
            reason += f"; CDA not possible: {cda_failure}"
        elif s.oda_failure:
            reason += f"; offline data authentication failed: {s.oda_failure}"
        return Verdict(OutcomeKind.ONLINE_REQUEST, reason)
    return _approval(s, cda_failure)
