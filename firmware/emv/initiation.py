"""Initiate application processing: the PDOL data and GET PROCESSING OPTIONS (EMV Book 3 10.1).

Sends the data the card's PDOL asks for, reads the answer in format 1 (AIP and AFL) or format 2
(a template; kernel 3 phones put their cryptogram here), and requires a two-byte AIP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware.emv import apdu, tlv
from firmware.emv.cryptogram import SW_SEE_PHONE, see_phone_refusal
from firmware.emv.outcome import OutcomeKind
from firmware.emv.tags import Tag
from firmware.emv.verdict import FlowEnd, card_error

if TYPE_CHECKING:
    from firmware.emv.session import Session

SW_CONDITIONS_NOT_SATISFIED = (0x6984, 0x6985)


def _send(card: apdu.CardLink, s: Session) -> bytes:
    try:
        s.pdol_data = s.build_dol(s.fci.get(Tag.PDOL, b""))
    except tlv.TlvError as exc:
        raise card_error(f"PDOL malformed: {exc}") from None
    resp = apdu.exchange(card, apdu.get_processing_options(s.pdol_data))
    if resp.sw == SW_SEE_PHONE:
        raise see_phone_refusal()
    if resp.sw in SW_CONDITIONS_NOT_SATISFIED:
        raise FlowEnd(
            OutcomeKind.SELECT_NEXT,
            f"{s.candidate.config.label}: conditions of use not satisfied (SW {resp.sw_hex})",
        )
    if not resp.ok:
        raise card_error(f"GET PROCESSING OPTIONS refused (SW {resp.sw_hex})")
    return resp.data


def get_processing_options(card: apdu.CardLink, s: Session) -> None:
    """GPO; the answer's data goes into s.card (AIP and AFL at least)."""
    gpo = tlv.decode(_send(card, s))
    if len(gpo) == 1 and gpo[0].tag == Tag.RESPONSE_FORMAT_1:
        value = gpo[0].value
        if len(value) < 2 or (len(value) - 2) % 4:
            raise FlowEnd(OutcomeKind.END_APPLICATION, "GPO format 1 answer malformed")
        s.card[Tag.AIP] = value[:2]
        s.card[Tag.AFL] = value[2:]
    elif len(gpo) == 1 and gpo[0].tag == Tag.RESPONSE_FORMAT_2:
        s.add_card_data(list(gpo[0].children), "GPO")
    else:
        raise FlowEnd(OutcomeKind.END_APPLICATION, "GPO answer is neither format 1 nor 2")
    if len(s.card.get(Tag.AIP, b"")) != 2:
        raise card_error("card data missing: AIP (82)")
