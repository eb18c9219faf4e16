"""How screens look: colours, fonts (shipped under ui/fonts, licence in ui/fonts/LICENSE.txt) and
sizes that scale with the panel. Pure data plus cached font loading; no drawing, no I/O beyond
reading the shipped font files.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

FONT_DIR = Path(__file__).resolve().parent / "fonts"

Color = tuple[int, int, int]


@dataclass(frozen=True)
class Theme:
    """Colours and font files of a screen set; the default looks like a white-faced terminal."""

    background: Color = (255, 255, 255)
    text: Color = (24, 28, 36)
    muted: Color = (96, 104, 118)
    header: Color = (22, 38, 66)
    header_text: Color = (255, 255, 255)
    footer: Color = (236, 239, 244)
    accent: Color = (22, 38, 66)  # amounts, contactless symbol
    light_on: Color = (46, 204, 64)
    light_off: Color = (70, 84, 110)
    success: Color = (24, 150, 72)
    failure: Color = (206, 38, 38)
    warning: Color = (230, 140, 0)
    neutral: Color = (120, 128, 140)
    panel: Color = (246, 247, 250)  # boxes (amount field, report table)
    regular_font: str = "DejaVuSans.ttf"
    bold_font: str = "DejaVuSans-Bold.ttf"
    mono_font: str = "DejaVuSansMono.ttf"


DEFAULT_THEME = Theme()

# Sizes each layout is designed and tested for (width, height); others scale from 320x240.
LAYOUTS: tuple[tuple[int, int], ...] = ((320, 240), (240, 240), (480, 320))


@lru_cache(maxsize=256)
def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A shipped font (file name under ui/fonts, or an absolute path) at `size` pixels."""
    path = Path(name)
    if not path.is_absolute():
        path = FONT_DIR / name
    return ImageFont.truetype(str(path), max(6, int(size)))


@lru_cache(maxsize=4096)
def has_glyph(name: str, char: str) -> bool:
    """Whether the font draws `char` as itself rather than its 'missing glyph' box."""
    if char.isspace():
        return True
    f = font(name, 24)
    missing = f.getmask("\U0010fffd")
    mask = f.getmask(char)
    return mask.size != missing.size or bytes(mask) != bytes(missing)
