"""The BharatQR form (EMVCo merchant-presented QR): parsed here by a TLV reader of the test's
own, the payload carries the payment's fields under the tags EMVCo and NPCI give them, its
CRC-16/CCITT-FALSE checks (and the catalogue's check value holds), and a QR of it decodes."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from pyzbar import pyzbar

from firmware.upi.bharatqr import NPCI_RID, build_bharatqr, crc16, crc_ok
from firmware.upi.link import PaymentLink, UpiLinkError
from ui.qr import qr_on_screen

SALE = PaymentLink(payee_vpa="chai.corner@okaxis", payee_name="Chai Corner", amount=25050,
                   reference="PITAP0019F2C4B7A10D3E5", note="Sale 12", mcc="5814")


def objects(payload: str) -> dict[str, str]:
    """tag -> value of a run of EMVCo data objects; fails on anything left over."""
    out, i = {}, 0
    while i < len(payload):
        tag, length = payload[i:i + 2], int(payload[i + 2:i + 4])
        out[tag] = payload[i + 4:i + 4 + length]
        assert len(out[tag]) == length, f"tag {tag} cut short"
        i += 4 + length
    return out


def test_crc_is_ccitt_false() -> None:
    assert crc16("123456789") == "29B1"  # the CRC catalogue's check value for CCITT-FALSE
    assert crc16("") == "FFFF"


def test_a_dynamic_qr_of_one_sale() -> None:
    payload = build_bharatqr(SALE, "Bengaluru")
    assert crc_ok(payload)
    top = objects(payload)
    assert list(top) == ["00", "01", "26", "27", "52", "53", "54", "58", "59", "60", "62", "63"]
    assert (top["00"], top["01"]) == ("01", "12")
    assert objects(top["26"]) == {"00": NPCI_RID, "01": "chai.corner@okaxis"}
    assert objects(top["27"]) == {"00": NPCI_RID, "01": SALE.reference}
    assert (top["52"], top["53"], top["54"], top["58"]) == ("5814", "356", "250.50", "IN")
    assert (top["59"], top["60"]) == ("Chai Corner", "Bengaluru")
    assert objects(top["62"]) == {"05": SALE.reference, "08": "Sale 12"}


@given(st.integers(0, 10_000), st.integers(0, 255))
def test_any_changed_character_fails_the_crc(position: int, byte: int) -> None:
    payload = build_bharatqr(SALE, "Pune")
    position %= len(payload) - 4
    changed = payload[:position] + chr(0x20 + byte % 0x5F) + payload[position + 1:]
    if changed != payload:
        assert not crc_ok(changed)


def test_long_names_are_cut_and_foreign_scripts_refused() -> None:
    long = PaymentLink(payee_vpa="shop@ybl", payee_name="Sri Venkateswara General Stores",
                       amount=100, reference="R1", mcc="5411")
    top = objects(build_bharatqr(long, "Thiruvananthapuram"))
    assert (top["59"], top["60"]) == ("Sri Venkateswara General", "Thiruvananthapu")
    hindi = PaymentLink(payee_vpa="shop@ybl", payee_name="चाय कॉर्नर", amount=100,
                        reference="R1", mcc="5411")
    with pytest.raises(UpiLinkError, match="pn .*ASCII"):
        build_bharatqr(hindi, "Pune")
    with pytest.raises(UpiLinkError, match="city"):
        build_bharatqr(long, "")
    with pytest.raises(UpiLinkError, match="tr .*25"):
        build_bharatqr(PaymentLink(payee_vpa="shop@ybl", payee_name="S", amount=1,
                                   reference="R" * 26, mcc="5411"), "Pune")


def test_the_qr_on_screen_decodes_to_the_payload() -> None:
    payload = build_bharatqr(SALE, "Bengaluru")
    screen, _ = qr_on_screen(payload, 240, 240)
    png = io.BytesIO()
    screen.save(png, format="PNG")
    (found,) = pyzbar.decode(Image.open(io.BytesIO(png.getvalue())))
    assert found.data.decode() == payload and crc_ok(found.data.decode())
