"""The two ways a tap completes once records are read, and the ODA they need.

`complete_qvsdc`: Visa-style kernel 3 — the cryptogram came in the GPO answer; the CID decides
(ARQC online, TC offline after fDDA, AAC declined); CTQ says how the phone verified its owner.
`complete_generate_ac`: Mastercard-style kernel 2 and the generic path — processing restrictions,
cardholder verification, terminal risk management, terminal action analysis, GENERATE AC with
CDOL1 (CDA when the card and our keys allow), "see phone" from DF4B.
Both return an Outcome or raise FlowEnd; card data is never logged here.
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import TYPE_CHECKING

from firmware.emv import apdu, dol, oda, tlv
from firmware.emv.outcome import Outcome, OutcomeKind, TxnType

if TYPE_CHECKING:
    from firmware.emv.kernel import Kernel, _Session

T = bytes.fromhex

REFUND_READ = "refund: card read, AAC for the acquirer"
DEFAULT_DDOL = T("9F3704")  # the terminal's default DDOL: the unpredictable number

# TVR bits (byte index, mask)
ODA_NOT_PERFORMED = (0, 0x80)
SDA_FAILED = (0, 0x40)
ICC_DATA_MISSING = (0, 0x20)
DDA_FAILED = (0, 0x08)
CDA_FAILED = (0, 0x04)
APP_EXPIRED = (1, 0x40)
APP_NOT_EFFECTIVE = (1, 0x20)
CVM_FAILED = (2, 0x80)
FLOOR_LIMIT_EXCEEDED = (3, 0x80)
OFFLINE_LIMIT_EXCEEDED = (3, 0x40)
# TSI bits
TSI_ODA = (0, 0x80)
TSI_CVM = (0, 0x40)
TSI_CARD_RISK = (0, 0x20)
TSI_TRM = (0, 0x08)
# 9F34 CVM results for the methods a phone terminal uses ("": none decided yet).
CVM_RESULTS = {
    "cdcvm": T("010002"),
    "no_cvm": T("1F0002"),
    "signature": T("1E0300"),
    "online_pin": T("420300"),
    "failed": T("3F0001"),
    "": T("3F0000"),
}


def _set(bits: bytearray, flag: tuple[int, int]) -> None:
    bits[flag[0]] |= flag[1]


def _record_cvm(s: _Session, cvm: str) -> None:
    """Keep the cardholder verification decided: s.cvm, its 9F34 result, the TVR bit if failed."""
    s.cvm = cvm
    if cvm == "failed":
        _set(s.tvr, CVM_FAILED)
    s.term[T("9F34")] = CVM_RESULTS[cvm]


class FlowEnd(Exception):  # noqa: N818 - control flow inside the kernel, never escapes it
    """Ends the tap with this outcome kind, reason and screen message."""

    def __init__(self, kind: OutcomeKind, reason: str, ui: str = "") -> None:
        super().__init__(reason)
        self.kind, self.reason, self.ui = kind, reason, ui


def _stop(kind: OutcomeKind, reason: str, ui: str = "") -> FlowEnd:
    return FlowEnd(kind, reason, ui)


def _need(s: _Session, *tags: str) -> None:
    missing = [t for t in tags if T(t) not in s.card]
    if missing:
        raise _stop(
            OutcomeKind.END_APPLICATION, f"card data missing: {', '.join(missing)}", "Card error"
        )


def _yymmdd(value: bytes) -> dt.date | None:
    text = value.hex()
    if len(value) != 3 or not text.isdigit():
        return None
    try:
        return dt.date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return None


def _app_expired(s: _Session) -> bool:
    on = s.txn.when.date()
    if T("5F24") in s.card:
        expiry = _yymmdd(s.card[T("5F24")])
        return expiry is None or on > expiry
    yymm = s.expiry()
    if len(yymm) == 4 and yymm.isdigit():
        yy, mm = int(yymm[:2]), int(yymm[2:])
        return (2000 + yy, mm) < (on.year, on.month)
    return False


# ---- offline data authentication --------------------------------------------------------
def _static_data(s: _Session) -> bytes:
    if not s.oda_records_ok:
        raise oda.OdaError("an ODA record is not a record template")
    data = bytes(s.static_data)
    tag_list = s.card.get(T("9F4A"))
    if tag_list is not None:
        if tag_list != T("82"):
            raise oda.OdaError("static data tag list (9F4A) names tags other than the AIP")
        data += s.card[T("82")]
    return data


def _missing(s: _Session, *tags: str) -> None:
    missing = [t for t in tags if T(t) not in s.card]
    if missing:
        raise oda.OdaDataMissing(
            f"card data missing for offline authentication: {', '.join(missing)}"
        )


def _issuer_key(kernel: Kernel, s: _Session) -> oda.IssuerKey:
    """CA key -> issuer key, or OdaError with the reason."""
    _missing(s, "8F", "90", "9F32")
    assert s.cand is not None
    rid = s.cand.entry.aid[:5]
    index = s.card[T("8F")][0] if len(s.card[T("8F")]) == 1 else -1
    ca = kernel.keys.get(rid, index)
    if ca is None:
        raise oda.OdaError(f"CA public key {rid.hex().upper()} #{index & 0xFF:02X} not known")
    return oda.recover_issuer_key(
        ca, s.card[T("90")], s.card.get(T("92"), b""), s.card[T("9F32")], s.pan(),
        s.txn.when.date(), kernel.keys,
    )  # fmt: skip


def _icc_key(kernel: Kernel, s: _Session) -> oda.IccKey:
    """CA key -> issuer key -> ICC key, or OdaError with the reason."""
    _missing(s, "8F", "90", "9F32", "9F46", "9F47")
    on = s.txn.when.date()
    pan = s.pan()
    issuer = _issuer_key(kernel, s)
    return oda.recover_icc_key(
        issuer,
        s.card[T("9F46")],
        s.card.get(T("9F48"), b""),
        s.card[T("9F47")],
        _static_data(s),
        pan,
        on,
    )


def _fdda(kernel: Kernel, s: _Session) -> None:
    if T("9F4B") not in s.card or T("9F69") not in s.card:
        raise oda.OdaDataMissing("card data missing for fDDA: 9F4B / 9F69")
    icc = _icc_key(kernel, s)
    tail = s.term[T("9F37")] + s.term[T("9F02")] + s.term[T("5F2A")] + s.card[T("9F69")]
    oda.verify_sdad(icc, s.card[T("9F4B")], tail, "fDDA")


def _oda_failed(s: _Session, exc: Exception, failed_bit: tuple[int, int]) -> str:
    """Set the TVR bits of a failed authentication; returns the reason."""
    if isinstance(exc, oda.OdaDataMissing):
        _set(s.tvr, ICC_DATA_MISSING)
    _set(s.tvr, failed_bit)
    return str(exc)


def _sda(kernel: Kernel, s: _Session) -> None:
    """Static data authentication; a failure is a TVR bit for terminal action analysis."""
    try:
        _missing(s, "93")
        issuer = _issuer_key(kernel, s)
        dac = oda.verify_ssad(issuer, s.card[T("93")], _static_data(s))
    except oda.OdaError as exc:
        s.oda_failure = _oda_failed(s, exc, SDA_FAILED)
        return
    s.term[T("9F45")] = dac
    s.oda = "sda"
    _set(s.tsi, TSI_ODA)


def _dda(kernel: Kernel, card: apdu.CardLink, s: _Session) -> None:
    """Dynamic data authentication with INTERNAL AUTHENTICATE and the DDOL (default 9F37 04)."""
    try:
        icc = _icc_key(kernel, s)
        ddol_data = dol.build(s.card.get(T("9F49"), DEFAULT_DDOL), s.term)
        resp = apdu.exchange(card, apdu.internal_authenticate(ddol_data))
        if not resp.ok:
            raise oda.OdaError(f"INTERNAL AUTHENTICATE refused (SW {resp.sw_hex})")
        objs = tlv.decode(resp.data)
        if len(objs) == 1 and objs[0].tag == T("80"):
            sdad = objs[0].value
        elif len(objs) == 1 and objs[0].tag == T("77"):
            sdad = tlv.flatten(objs).get(T("9F4B"), b"")
        else:
            raise oda.OdaError("INTERNAL AUTHENTICATE answer is neither format 1 nor 2")
        sig = oda.verify_sdad(icc, sdad, ddol_data, "DDA")
    except (oda.OdaError, tlv.TlvError) as exc:
        s.oda_failure = _oda_failed(s, exc, DDA_FAILED)
        return
    s.term[T("9F4C")] = sig.icc_dynamic_number
    s.oda = "dda"
    _set(s.tsi, TSI_ODA)


# ---- Visa-style: cryptogram from the GPO answer -------------------------------------------
def complete_qvsdc(kernel: Kernel, s: _Session) -> Outcome:
    assert s.cand is not None
    cand = s.cand
    _need(s, "9F26", "9F36", "9F10")
    if not s.track2() and T("5A") not in s.card:
        raise _stop(OutcomeKind.END_APPLICATION, "card data missing: track 2 (57)", "Card error")
    if len(s.card[T("9F26")]) != 8 or len(s.card[T("9F36")]) != 2:
        raise _stop(OutcomeKind.END_APPLICATION, "cryptogram or ATC of the wrong length")
    s.cryptogram = s.card[T("9F26")]
    cid_b = s.card.get(T("9F27"))
    if cid_b is not None and len(cid_b) == 1:
        s.cid = cid_b[0]
    else:
        iad = s.card[T("9F10")]
        if len(iad) >= 7 and iad[0] == 0x06:  # Visa format 0/1/3 IAD: CVR byte 2 says the AC
            s.cid = {0: 0x00, 1: 0x40, 2: 0x80}.get((iad[5] >> 4) & 0x03, 0x00)
        else:
            raise _stop(OutcomeKind.END_APPLICATION, "card data missing: CID (9F27)", "Card error")
    ctq = s.card.get(T("9F6C"), b"")
    ttq = cand.ttq
    ac_type = s.cid & 0xC0
    # cardholder verification, as the CTQ tells
    if not cand.cvm_required:
        cvm = "no_cvm"
    elif len(ctq) == 2 and ctq[1] & 0x80:
        cvm = "cdcvm"
    elif len(ctq) == 2 and ctq[0] & 0x80:
        if not (ttq[0] & 0x04 and ac_type == 0x80):
            raise _stop(
                OutcomeKind.TRY_ANOTHER_INTERFACE,
                "phone asks for online PIN, which this terminal cannot take",
                "Use another card",
            )
        cvm = "online_pin"
    elif len(ctq) == 2 and ctq[0] & 0x40 and ttq[0] & 0x02:
        cvm = "signature"
    else:
        cvm = "failed"
    _record_cvm(s, cvm)
    if s.txn.txn_type is TxnType.REFUND and ac_type in (0x00, 0x40, 0x80):
        return _finish(kernel, s, OutcomeKind.ONLINE_REQUEST, REFUND_READ)
    if ac_type == 0x00:
        if cand.config.kernel == 3 and len(ctq) == 2 and ctq[1] & 0x80:
            # a phone that declines after its own cardholder verification wants its owner to
            # look at it (Kernel 3: "See Phone", present again)
            return _finish(
                kernel,
                s,
                OutcomeKind.TRY_AGAIN,
                "phone declined after its own verification (AAC with CTQ 'CDCVM performed')",
                "See phone",
            )
        return _finish(kernel, s, OutcomeKind.DECLINED, "card declined offline (AAC)")
    if ac_type == 0x80:
        return _finish(kernel, s, OutcomeKind.ONLINE_REQUEST, "online authorization (ARQC)")
    if ac_type != 0x40:
        raise _stop(OutcomeKind.END_APPLICATION, f"CID {s.cid:02X} names no cryptogram type")
    # TC: the phone wants to approve offline; the terminal must agree and fDDA must pass
    if cand.online_required:
        return _finish(
            kernel, s, OutcomeKind.DECLINED, "phone approved offline when online was required"
        )
    if s.cvm == "failed":
        return _finish(kernel, s, OutcomeKind.DECLINED, "cardholder verification required")
    if _app_expired(s):
        _set(s.tvr, APP_EXPIRED)
        return _finish(kernel, s, OutcomeKind.DECLINED, "application expired")
    if not s.card[T("82")][0] & 0x20:
        return _finish(
            kernel, s, OutcomeKind.DECLINED, "offline approval without fDDA support refused"
        )
    try:
        _fdda(kernel, s)
    except oda.OdaError as exc:
        _set(s.tvr, DDA_FAILED)
        s.oda = ""
        if len(ctq) == 2 and ctq[0] & 0x20:
            return _finish(
                kernel,
                s,
                OutcomeKind.ONLINE_REQUEST,
                f"fDDA failed ({exc}); sent online as the phone asks",
            )
        return _finish(kernel, s, OutcomeKind.DECLINED, f"fDDA failed: {exc}")
    s.oda = "fdda"
    _set(s.tsi, TSI_ODA)
    return _finish(kernel, s, OutcomeKind.APPROVED, "approved offline (TC, fDDA verified)")


def _finish(kernel: Kernel, s: _Session, kind: OutcomeKind, reason: str, ui: str = "") -> Outcome:
    return kernel._outcome(s, kind, reason, ui)


# ---- Mastercard-style and generic: GENERATE AC -------------------------------------------
def _iac(s: _Session, tag: str, absent: int) -> bytes:
    value = s.card.get(T(tag))
    return value if value is not None and len(value) == 5 else bytes([absent] * 5)


def _hits(tvr: bytes, *masks: bytes) -> bool:
    return any(tvr[i] & m[i] for m in masks for i in range(5))


def complete_generate_ac(kernel: Kernel, card: apdu.CardLink, s: _Session) -> Outcome:
    assert s.cand is not None
    cand, cfg = s.cand, s.cand.config
    _need(s, "8C")
    if not s.track2() and T("5A") not in s.card:
        raise _stop(OutcomeKind.END_APPLICATION, "card data missing: PAN / track 2", "Card error")
    aip = s.card[T("82")]
    txn_date = s.txn.when.date()
    # processing restrictions
    if _app_expired(s):
        _set(s.tvr, APP_EXPIRED)
    effective = s.card.get(T("5F25"))
    if effective is not None:
        eff = _yymmdd(effective)
        if eff is None or txn_date < eff:
            _set(s.tvr, APP_NOT_EFFECTIVE)
    # cardholder verification
    if not cand.cvm_required:
        cvm = "no_cvm"
    elif aip[0] & 0x02:
        cvm = "cdcvm"
    elif cfg.terminal_capabilities[1] & 0x20:
        cvm = "signature"
    else:
        cvm = "failed"
    _record_cvm(s, cvm)
    _set(s.tsi, TSI_CVM)
    # terminal risk management
    if cand.online_required:
        _set(s.tvr, FLOOR_LIMIT_EXCEEDED)
    if kernel._offline_exhausted().get(cfg.aid):
        _set(s.tvr, OFFLINE_LIMIT_EXCEEDED)
    _set(s.tsi, TSI_TRM)
    # offline data authentication: CDA (what phones do; keys recovered before GENERATE AC);
    # the generic path also takes DDA (INTERNAL AUTHENTICATE) and SDA cards
    icc_key: oda.IccKey | None = None
    cda_failure = ""
    if aip[0] & 0x01:
        try:
            icc_key = _icc_key(kernel, s)
        except oda.OdaError as exc:
            cda_failure = _oda_failed(s, exc, CDA_FAILED)
    elif cfg.kernel == 0 and aip[0] & 0x20:
        _dda(kernel, card, s)
    elif cfg.kernel == 0 and aip[0] & 0x40:
        _sda(kernel, s)
    else:
        _set(s.tvr, ODA_NOT_PERFORMED)
    # terminal action analysis
    tvr = bytes(s.tvr)
    if s.txn.txn_type is TxnType.REFUND:
        p1, wanted = 0x00, "AAC"  # a refund asks the card for an AAC; the host does the rest
    elif _hits(tvr, cfg.tac_denial, _iac(s, "9F0E", 0x00)):
        p1, wanted = 0x00, "AAC"
    elif cand.online_required or _hits(tvr, cfg.tac_online, _iac(s, "9F0F", 0xFF)):
        p1, wanted = 0x80, "ARQC"
    else:
        p1, wanted = 0x40, "TC"
    cda = icc_key is not None and p1 != 0x00
    if cda:
        p1 |= 0x10
    s.term[T("95")] = tvr
    try:
        s.cdol1_data = s.build_dol(s.card[T("8C")])
    except tlv.TlvError as exc:
        raise _stop(OutcomeKind.END_APPLICATION, f"CDOL1 malformed: {exc}", "Card error") from None
    resp = apdu.exchange(card, apdu.generate_ac(p1, s.cdol1_data))
    if resp.sw == 0x6986:
        raise _stop(
            OutcomeKind.TRY_AGAIN, "phone asks its owner to unlock it (SW 6986)", "See phone"
        )
    if not resp.ok:
        raise _stop(
            OutcomeKind.END_APPLICATION, f"GENERATE AC refused (SW {resp.sw_hex})", "Card error"
        )
    objs = tlv.decode(resp.data)
    signed_tlvs = b""
    if len(objs) == 1 and objs[0].tag == T("80"):
        v = objs[0].value
        if len(v) < 11:
            raise _stop(OutcomeKind.END_APPLICATION, "GENERATE AC format 1 answer too short")
        got = {T("9F27"): v[0:1], T("9F36"): v[1:3], T("9F26"): v[3:11]}
        if len(v) > 11:
            got[T("9F10")] = v[11:]
        for tag, value in got.items():
            s.card[tag] = value
    elif len(objs) == 1 and objs[0].tag == T("77"):
        for child in objs[0].children:
            if child.tag != T("9F4B"):
                signed_tlvs += child.raw
        # GENERATE AC answers replace what GPO may have said (ATC, IAD): no duplicate check
        for child in tlv.walk(objs[0].children):
            if not child.constructed:
                s.card[child.tag] = child.value
    else:
        raise _stop(OutcomeKind.END_APPLICATION, "GENERATE AC answer is neither format 1 nor 2")
    _need(s, "9F27", "9F36")
    if len(s.card[T("9F27")]) != 1 or len(s.card[T("9F36")]) != 2:
        raise _stop(OutcomeKind.END_APPLICATION, "CID or ATC of the wrong length", "Card error")
    s.cid = s.card[T("9F27")][0]
    ac_type = s.cid & 0xC0
    if ac_type == 0xC0 or (wanted == "AAC" and ac_type) or (wanted == "ARQC" and ac_type == 0x40):
        raise _stop(
            OutcomeKind.END_APPLICATION,
            f"card answered CID {s.cid:02X} to a request for {wanted}",
            "Card error",
        )
    s.cryptogram = s.card.get(T("9F26"), b"")
    if ac_type == 0x00:
        poscii = s.card.get(T("DF4B"), b"")
        if len(poscii) == 3 and (poscii[1] & 0x03 or poscii[2] & 0x0F):
            return _finish(
                kernel,
                s,
                OutcomeKind.TRY_AGAIN,
                "phone asks its owner to look at it (POS cardholder interaction, DF4B)",
                "See phone",
            )
        if s.txn.txn_type is TxnType.REFUND:
            return _finish(kernel, s, OutcomeKind.ONLINE_REQUEST, REFUND_READ)
        return _finish(kernel, s, OutcomeKind.DECLINED, "card declined (AAC)")
    if cda:
        assert icc_key is not None
        try:
            if T("9F4B") not in s.card:
                raise oda.OdaError("CDA signature (9F4B) missing")
            sig = oda.verify_sdad(icc_key, s.card[T("9F4B")], s.term[T("9F37")], "CDA")
            if sig.cid != s.cid:
                raise oda.OdaError("CDA signature names another cryptogram type")
            tdhc = oda.transaction_data_hash(s.pdol_data, s.cdol1_data, signed_tlvs)
            if not hmac.compare_digest(tdhc, sig.transaction_data_hash):
                raise oda.OdaError("CDA transaction data hash does not match")
        except oda.OdaError as exc:
            _set(s.tvr, CDA_FAILED)
            return _finish(kernel, s, OutcomeKind.DECLINED, f"CDA failed: {exc}")
        s.cryptogram = sig.cryptogram
        s.oda = "cda"
        _set(s.tsi, TSI_ODA)
    elif not s.cryptogram or len(s.cryptogram) != 8:
        raise _stop(OutcomeKind.END_APPLICATION, "card data missing: cryptogram (9F26)")
    _set(s.tsi, TSI_CARD_RISK)
    if ac_type == 0x80:
        reason = "online authorization (ARQC)"
        if cda_failure:
            reason += f"; CDA not possible: {cda_failure}"
        elif s.oda_failure:
            reason += f"; offline data authentication failed: {s.oda_failure}"
        return _finish(kernel, s, OutcomeKind.ONLINE_REQUEST, reason)
    if cda:
        return _finish(kernel, s, OutcomeKind.APPROVED, "approved offline (TC, CDA verified)")
    if s.oda in ("dda", "sda") and cfg.kernel == 0:
        return _finish(
            kernel, s, OutcomeKind.APPROVED, f"approved offline (TC, {s.oda.upper()} verified)"
        )
    # a TC is only ever accepted with offline data authentication verified
    reason = "offline approval without offline data authentication refused"
    if cda_failure or s.oda_failure:
        reason += f" ({cda_failure or s.oda_failure})"
    return _finish(kernel, s, OutcomeKind.DECLINED, reason)
