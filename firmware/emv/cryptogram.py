"""The application cryptogram: from the GPO answer (kernel 3) or GENERATE AC (kernel 2, generic).

`from_gpo` takes the cryptogram, ATC and CID the phone put in its GPO answer (the CID from the
Visa IAD when 9F27 is absent). `generate_ac` sends GENERATE AC with the CDOL1 data, reads format
1 or 2, and checks the CID against what was asked for. Both leave s.cryptogram and s.cid set or
end the tap; the meaning of the cryptogram is `card_action`'s business.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware.emv import apdu, tlv
from firmware.emv.flags import CDA_SIGNATURE_REQUESTED, CryptogramType
from firmware.emv.outcome import OutcomeKind, Prompt
from firmware.emv.tags import Tag
from firmware.emv.verdict import FlowEnd, card_error

if TYPE_CHECKING:
    from firmware.emv.session import Session

SW_SEE_PHONE = 0x6986  # the phone wants its owner to unlock it first
_IAD_CRYPTOGRAM = {0: 0x00, 1: 0x40, 2: 0x80}  # Visa IAD CVR byte 2 bits 6-5 -> CID


def see_phone_refusal() -> FlowEnd:
    return FlowEnd(
        OutcomeKind.TRY_AGAIN, "phone asks its owner to unlock it (SW 6986)", Prompt.SEE_PHONE
    )


def _cid_from_gpo(s: Session) -> int:
    cid = s.card.get(Tag.CRYPTOGRAM_INFORMATION_DATA)
    if cid is not None and len(cid) == 1:
        return cid[0]
    iad = s.card[Tag.ISSUER_APPLICATION_DATA]
    if len(iad) >= 7 and iad[0] == 0x06:  # Visa format 0/1/3 IAD: CVR byte 2 says the AC
        return _IAD_CRYPTOGRAM.get((iad[5] >> 4) & 0x03, 0x00)
    raise card_error("card data missing: CID (9F27)")


def from_gpo(s: Session) -> None:
    """Kernel 3: the cryptogram the GPO answer carried, with its ATC and CID."""
    s.need(Tag.APPLICATION_CRYPTOGRAM, Tag.ATC, Tag.ISSUER_APPLICATION_DATA)
    if not s.track2() and Tag.PAN not in s.card:
        raise card_error("card data missing: track 2 (57)")
    if len(s.card[Tag.APPLICATION_CRYPTOGRAM]) != 8 or len(s.card[Tag.ATC]) != 2:
        raise FlowEnd(OutcomeKind.END_APPLICATION, "cryptogram or ATC of the wrong length")
    s.cryptogram = s.card[Tag.APPLICATION_CRYPTOGRAM]
    s.cid = _cid_from_gpo(s)


def _send(card: apdu.CardLink, s: Session, p1: int) -> bytes:
    try:
        s.cdol1_data = s.build_dol(s.card[Tag.CDOL1])
    except tlv.TlvError as exc:
        raise card_error(f"CDOL1 malformed: {exc}") from None
    resp = apdu.exchange(card, apdu.generate_ac(p1, s.cdol1_data))
    if resp.sw == SW_SEE_PHONE:
        raise see_phone_refusal()
    if not resp.ok:
        raise card_error(f"GENERATE AC refused (SW {resp.sw_hex})")
    return resp.data


def _read_answer(s: Session, data: bytes) -> bytes:
    """Keep the answer's data objects; returns the TLVs CDA signs (format 2 without 9F4B)."""
    objs = tlv.decode(data)
    if len(objs) == 1 and objs[0].tag == Tag.RESPONSE_FORMAT_1:
        v = objs[0].value
        if len(v) < 11:
            raise FlowEnd(OutcomeKind.END_APPLICATION, "GENERATE AC format 1 answer too short")
        s.card[Tag.CRYPTOGRAM_INFORMATION_DATA] = v[0:1]
        s.card[Tag.ATC] = v[1:3]
        s.card[Tag.APPLICATION_CRYPTOGRAM] = v[3:11]
        if len(v) > 11:
            s.card[Tag.ISSUER_APPLICATION_DATA] = v[11:]
        return b""
    if len(objs) == 1 and objs[0].tag == Tag.RESPONSE_FORMAT_2:
        children = objs[0].children
        signed = b"".join(c.raw for c in children if c.tag != Tag.SIGNED_DYNAMIC_APPLICATION_DATA)
        # GENERATE AC answers replace what GPO may have said (ATC, IAD): no duplicate check
        for child in tlv.walk(children):
            if not child.constructed:
                s.card[child.tag] = child.value
        return signed
    raise FlowEnd(OutcomeKind.END_APPLICATION, "GENERATE AC answer is neither format 1 nor 2")


def _answers(asked: CryptogramType, got: CryptogramType | None) -> bool:
    """May a card answer `got` to a request for `asked` (it may always go down, never up)?"""
    if got is None:
        return False
    if asked is CryptogramType.AAC:
        return got is CryptogramType.AAC
    return not (asked is CryptogramType.ARQC and got is CryptogramType.TC)


def generate_ac(card: apdu.CardLink, s: Session, asked: CryptogramType, cda: bool) -> bytes:
    """GENERATE AC for `asked` (with a CDA signature if `cda`); returns the TLVs CDA signs."""
    p1 = asked.value | (CDA_SIGNATURE_REQUESTED if cda else 0)
    signed = _read_answer(s, _send(card, s, p1))
    s.need(Tag.CRYPTOGRAM_INFORMATION_DATA, Tag.ATC)
    if len(s.card[Tag.CRYPTOGRAM_INFORMATION_DATA]) != 1 or len(s.card[Tag.ATC]) != 2:
        raise card_error("CID or ATC of the wrong length")
    s.cid = s.card[Tag.CRYPTOGRAM_INFORMATION_DATA][0]
    if not _answers(asked, CryptogramType.of(s.cid)):
        raise card_error(f"card answered CID {s.cid:02X} to a request for {asked.name}")
    s.cryptogram = s.card.get(Tag.APPLICATION_CRYPTOGRAM, b"")
    return signed
