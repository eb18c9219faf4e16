"""The UPI QR as the screen shows it: at every screen size the layouts are made for (and the
shipped configuration's), the PNG decoded by a real QR decoder (zbar, through pyzbar) carries
exactly the link's fields; a screen too small for a readable QR is a clear error."""

from __future__ import annotations

import io
from urllib.parse import parse_qsl, urlsplit

import pytest
from PIL import Image

from firmware.config import load_config
from firmware.upi.link import PaymentLink, build_link, new_reference
from ui.qr import MIN_MODULE_PX, QUIET_ZONE, QrDoesNotFit, qr_image, qr_on_screen

try:
    from pyzbar import pyzbar
except ImportError as exc:  # the decoder's C library: .ci/run installs it
    raise ImportError(f"{exc}: install the zbar library (apt-get install libzbar0)") from exc

CFG = load_config()
SIZES = sorted({(240, 240), (320, 240), (480, 320), (240, 320),
                (CFG.display.width, CFG.display.height)})


def decode_png(png: bytes) -> list[str]:
    found = pyzbar.decode(Image.open(io.BytesIO(png)), symbols=[pyzbar.ZBarSymbol.QRCODE])
    return [symbol.data.decode("utf-8") for symbol in found]


def as_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(("width", "height"), SIZES, ids=lambda v: str(v))
def test_the_shown_qr_decodes_to_the_fields_asked(width: int, height: int) -> None:
    asked = PaymentLink(payee_vpa="pitap.demo-shop@okaxis", payee_name="Chai & Samosa Corner",
                        amount=123456, reference=new_reference("PITAP001"),
                        note="Sale 12 = 2 chai + 1 samosa", mcc="5814")
    screen, free_row = qr_on_screen(build_link(asked), width, height)
    assert screen.size == (width, height) and free_row < height
    (text,) = decode_png(as_png(screen))
    parts = urlsplit(text)
    assert f"{parts.scheme}://{parts.netloc}" == "upi://pay"
    assert parse_qsl(parts.query, strict_parsing=True) == [
        ("pa", "pitap.demo-shop@okaxis"), ("pn", "Chai & Samosa Corner"), ("am", "1234.56"),
        ("cu", "INR"), ("tr", asked.reference), ("tn", "Sale 12 = 2 chai + 1 samosa"),
        ("mc", "5814")]


@pytest.mark.parametrize(("width", "height"), SIZES, ids=lambda v: str(v))
def test_modules_are_whole_pixels_with_a_quiet_zone(width: int, height: int) -> None:
    link = build_link(PaymentLink(payee_vpa="shop@ybl", payee_name="Shop", amount=100,
                                  reference="R" * 35, note="n" * 50, mcc="5411"))
    code = qr_image(link, height).convert("L")
    # The finder pattern's corner is the first dark pixel on the diagonal, after the quiet zone.
    offset = next(i for i in range(code.width) if code.getpixel((i, i)) < 128)
    module_px, rest = divmod(offset, QUIET_ZONE)
    assert rest == 0 and module_px >= MIN_MODULE_PX
    assert code.width % module_px == 0 and code.width // module_px >= 21 + 2 * QUIET_ZONE
    # the finder's outer ring is 7 modules of dark: whole pixels, not blurred
    ring = [code.getpixel((offset + i, offset)) for i in range(7 * module_px)]
    assert set(ring) == {0}
    assert code.getpixel((offset + 7 * module_px, offset)) == 255


def test_a_screen_too_small_for_a_readable_qr_says_so() -> None:
    link = build_link(PaymentLink(payee_vpa="shop@ybl", payee_name="Shop", amount=100,
                                  reference="R1", mcc="5411"))
    with pytest.raises(QrDoesNotFit, match="needs .* px, the screen gives 107 px"):
        qr_on_screen(link, 128, 128)
