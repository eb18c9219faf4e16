"""A QR code as a Pillow image that a phone camera reads off the terminal's screen: whole
pixels a module, the 4-module quiet zone of ISO/IEC 18004 inside the image (white on any
theme), error correction M, or L when only L fits (a lit screen has no stains or creases to
correct for). The one place that makes QR codes for screens: the UPI payment QR (the link text
comes from firmware.upi.link) and the e-receipt QR (ui.screens.receipt_qr_screen) are drawn
with it; this module knows nothing of payments. No I/O.
"""

from __future__ import annotations

import qrcode
import qrcode.constants
from PIL import Image

from drivers.errors import PitapError

QUIET_ZONE = 4  # modules of white around the symbol (ISO/IEC 18004)
MIN_MODULE_PX = 3  # below this a phone camera misreads a small SPI panel's QR


class QrDoesNotFit(PitapError, ValueError):
    """The text's QR needs more pixels than the space given: a clear error, never a blur."""


def qr_side(width: int, height: int) -> int:
    """The side (pixels) a screen of width x height gives its QR: on a landscape or square
    panel the height less a band for the amount (40 px at 240 high), on a portrait one 90% of
    its width."""
    if width >= height:
        return min(width, height - round(40 * height / 240))
    return width * 9 // 10


def qr_image(text: str, max_side: int, quiet_zone: int = QUIET_ZONE,
             min_module_px: int = MIN_MODULE_PX) -> Image.Image:
    """`text` as a black-on-white RGB QR code of at most `max_side` pixels square, as many whole
    pixels a module as fit. QrDoesNotFit when a module would be under `min_module_px`.
    `quiet_zone`: the white modules around the symbol inside the image; a code placed on a
    white page may take fewer and let the page make up the rest."""
    for level in (qrcode.constants.ERROR_CORRECT_M, qrcode.constants.ERROR_CORRECT_L):
        qr = qrcode.QRCode(error_correction=level, border=quiet_zone)
        qr.add_data(text.encode("utf-8"))
        qr.make(fit=True)
        modules = qr.modules_count + 2 * quiet_zone
        module_px = max_side // modules
        if module_px >= min_module_px:
            break
    else:
        raise QrDoesNotFit(f"a QR of {modules} modules needs {modules * min_module_px} px, "
                           f"the screen gives {max_side} px")
    qr.box_size = module_px
    image = qr.make_image(fill_color="black", back_color="white").get_image()
    return image.convert("RGB")


def qr_on_screen(text: str, width: int, height: int,
                 background: tuple[int, int, int] = (255, 255, 255)) -> tuple[Image.Image, int]:
    """A width x height screen with `text`'s QR centred across and at the top, and the first
    free row under it (where the amount goes)."""
    code = qr_image(text, qr_side(width, height))
    screen = Image.new("RGB", (width, height), background)
    left = (width - code.width) // 2
    top = max(0, (height - code.height) // 8)
    screen.paste(code, (left, top))
    return screen, top + code.height
