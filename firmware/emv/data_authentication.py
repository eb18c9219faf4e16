"""Offline data authentication as a kernel step: the session's card data through oda's checks.

Recovers the issuer and ICC keys from the records (CA key by RID and index), and runs fDDA over
the GPO answer (kernel 3), SDA or DDA with INTERNAL AUTHENTICATE (generic path), or recovers the
ICC key before GENERATE AC for CDA (the check itself is in `cda`). A failure is a TVR bit and a
reason, never an exception out of this step, except `fdda`, whose caller decides. oda.py does the
cryptography; this module only gathers its inputs and records its results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware.emv import apdu, capk, dol, oda, tlv
from firmware.emv.flags import Aip, Tsi, Tvr
from firmware.emv.outcome import OdaMethod
from firmware.emv.tags import Tag

if TYPE_CHECKING:
    from firmware.emv.session import Session

DEFAULT_DDOL = bytes.fromhex("9F3704")  # the terminal's default DDOL: the unpredictable number


def _missing(s: Session, *tags: Tag) -> None:
    missing = [t.label for t in tags if t not in s.card]
    if missing:
        raise oda.OdaDataMissing(
            f"card data missing for offline authentication: {', '.join(missing)}"
        )


def static_data(s: Session) -> bytes:
    """The static data to be authenticated: the ODA records, and the AIP if 9F4A names it."""
    if not s.oda_records_ok:
        raise oda.OdaError("an ODA record is not a record template")
    data = bytes(s.static_data)
    tag_list = s.card.get(Tag.STATIC_DATA_AUTHENTICATION_TAG_LIST)
    if tag_list is not None:
        if tag_list != Tag.AIP:
            raise oda.OdaError("static data tag list (9F4A) names tags other than the AIP")
        data += s.card[Tag.AIP]
    return data


def issuer_key(keys: capk.CaKeyStore, s: Session) -> oda.IssuerKey:
    """CA key -> issuer key, or OdaError with the reason."""
    _missing(s, Tag.CA_PUBLIC_KEY_INDEX, Tag.ISSUER_PUBLIC_KEY_CERTIFICATE,
             Tag.ISSUER_PUBLIC_KEY_EXPONENT)  # fmt: skip
    rid = s.candidate.entry.aid[:5]
    index_b = s.card[Tag.CA_PUBLIC_KEY_INDEX]
    index = index_b[0] if len(index_b) == 1 else -1
    ca = keys.get(rid, index)
    if ca is None:
        raise oda.OdaError(f"CA public key {rid.hex().upper()} #{index & 0xFF:02X} not known")
    return oda.recover_issuer_key(
        ca,
        s.card[Tag.ISSUER_PUBLIC_KEY_CERTIFICATE],
        s.card.get(Tag.ISSUER_PUBLIC_KEY_REMAINDER, b""),
        s.card[Tag.ISSUER_PUBLIC_KEY_EXPONENT],
        s.pan(),
        s.txn.when.date(),
        keys,
    )


def icc_key(keys: capk.CaKeyStore, s: Session) -> oda.IccKey:
    """CA key -> issuer key -> ICC key, or OdaError with the reason."""
    _missing(s, Tag.CA_PUBLIC_KEY_INDEX, Tag.ISSUER_PUBLIC_KEY_CERTIFICATE,
             Tag.ISSUER_PUBLIC_KEY_EXPONENT, Tag.ICC_PUBLIC_KEY_CERTIFICATE,
             Tag.ICC_PUBLIC_KEY_EXPONENT)  # fmt: skip
    on = s.txn.when.date()
    pan = s.pan()
    issuer = issuer_key(keys, s)
    return oda.recover_icc_key(
        issuer,
        s.card[Tag.ICC_PUBLIC_KEY_CERTIFICATE],
        s.card.get(Tag.ICC_PUBLIC_KEY_REMAINDER, b""),
        s.card[Tag.ICC_PUBLIC_KEY_EXPONENT],
        static_data(s),
        pan,
        on,
    )


def failed(s: Session, exc: Exception, bit: Tvr) -> str:
    """Set the TVR bits of a failed authentication; returns the reason."""
    if isinstance(exc, oda.OdaDataMissing):
        s.tvr |= Tvr.ICC_DATA_MISSING
    s.tvr |= bit
    return str(exc)


def passed(s: Session, method: OdaMethod) -> None:
    s.oda = method
    s.tsi |= Tsi.ODA_PERFORMED


def fdda(keys: capk.CaKeyStore, s: Session) -> None:
    """Kernel 3 fDDA over 9F37 || 9F02 || 5F2A || 9F69; OdaError when it does not verify."""
    sdad = s.card.get(Tag.SIGNED_DYNAMIC_APPLICATION_DATA)
    card_data = s.card.get(Tag.CARD_AUTHENTICATION_RELATED_DATA)
    if sdad is None or card_data is None:
        raise oda.OdaDataMissing("card data missing for fDDA: 9F4B / 9F69")
    icc = icc_key(keys, s)
    term = s.term
    tail = (term[Tag.UNPREDICTABLE_NUMBER] + term[Tag.AMOUNT_AUTHORISED]
            + term[Tag.TRANSACTION_CURRENCY_CODE] + card_data)  # fmt: skip
    oda.verify_sdad(icc, sdad, tail, "fDDA")


def sda(keys: capk.CaKeyStore, s: Session) -> None:
    """Static data authentication; a failure is a TVR bit for terminal action analysis."""
    try:
        _missing(s, Tag.SIGNED_STATIC_APPLICATION_DATA)
        issuer = issuer_key(keys, s)
        dac = oda.verify_ssad(issuer, s.card[Tag.SIGNED_STATIC_APPLICATION_DATA], static_data(s))
    except oda.OdaError as exc:
        s.oda_failure = failed(s, exc, Tvr.SDA_FAILED)
        return
    s.term[Tag.DATA_AUTHENTICATION_CODE] = dac
    passed(s, OdaMethod.SDA)


def _internal_authenticate(card: apdu.CardLink, ddol_data: bytes) -> bytes:
    """The SDAD of an INTERNAL AUTHENTICATE answer (format 1 or 2)."""
    resp = apdu.exchange(card, apdu.internal_authenticate(ddol_data))
    if not resp.ok:
        raise oda.OdaError(f"INTERNAL AUTHENTICATE refused (SW {resp.sw_hex})")
    objs = tlv.decode(resp.data)
    if len(objs) == 1 and objs[0].tag == Tag.RESPONSE_FORMAT_1:
        return objs[0].value
    if len(objs) == 1 and objs[0].tag == Tag.RESPONSE_FORMAT_2:
        return tlv.flatten(objs).get(Tag.SIGNED_DYNAMIC_APPLICATION_DATA, b"")
    raise oda.OdaError("INTERNAL AUTHENTICATE answer is neither format 1 nor 2")


def dda(keys: capk.CaKeyStore, card: apdu.CardLink, s: Session) -> None:
    """Dynamic data authentication with INTERNAL AUTHENTICATE and the DDOL (default 9F37 04)."""
    try:
        icc = icc_key(keys, s)
        ddol_data = dol.build(s.card.get(Tag.DDOL, DEFAULT_DDOL), s.term)
        sdad = _internal_authenticate(card, ddol_data)
        sig = oda.verify_sdad(icc, sdad, ddol_data, "DDA")
    except (oda.OdaError, tlv.TlvError) as exc:
        s.oda_failure = failed(s, exc, Tvr.DDA_FAILED)
        return
    s.term[Tag.ICC_DYNAMIC_NUMBER] = sig.icc_dynamic_number
    passed(s, OdaMethod.DDA)


def before_generate_ac(
    keys: capk.CaKeyStore, card: apdu.CardLink, s: Session
) -> tuple[oda.IccKey | None, str]:
    """CDA when the AIP offers it (ICC key recovered now, checked on the GENERATE AC answer);
    the generic path also takes DDA and SDA cards. Returns the ICC key for CDA (None when CDA
    is not possible) and why CDA is not possible ("" when it is, or was never offered)."""
    aip = Aip.of(s.card[Tag.AIP])
    generic = s.candidate.config.kernel == 0
    if aip & Aip.CDA_SUPPORTED:
        try:
            return icc_key(keys, s), ""
        except oda.OdaError as exc:
            return None, failed(s, exc, Tvr.CDA_FAILED)
    if generic and aip & Aip.DDA_SUPPORTED:
        dda(keys, card, s)
    elif generic and aip & Aip.SDA_SUPPORTED:
        sda(keys, s)
    else:
        s.tvr |= Tvr.ODA_NOT_PERFORMED
    return None, ""
