"""A Pillow image plus the texts drawn on it: text that shrinks or wraps to fit its box, and the
shapes shop terminals use (contactless symbol, tick, cross, phone, warning). Each text drawn is
recorded with its bounding box so tests can check it is present and not clipped. No I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from ui.lang import Language
from ui.theme import DEFAULT_THEME, Color, Theme, font, has_glyph


@dataclass(frozen=True)
class DrawnText:
    """One line of text as drawn: its string, bounding box and whether it had to be cut."""

    text: str
    box: tuple[int, int, int, int]  # left, top, right, bottom (pixels, right/bottom exclusive)
    size: int
    truncated: bool = False
    font: str = ""  # the font file it was drawn with


@dataclass
class Canvas:
    """An RGB image of a screen being drawn, with the scale of its layout."""

    width: int
    height: int
    lang: Language
    theme: Theme = DEFAULT_THEME
    image: Image.Image = field(init=False)
    draw: ImageDraw.ImageDraw = field(init=False)
    texts: list[DrawnText] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.image = Image.new("RGB", (self.width, self.height), self.theme.background)
        self.draw = ImageDraw.Draw(self.image)

    # ---- scale -------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        """1.0 at 320x240, 1.33 at 480x320; narrow (square) panels shrink less than their width
        would say, since texts shrink or wrap to fit on their own."""
        return min(self.height / 240, max(self.width / 320, 0.85))

    def px(self, value: float) -> int:
        return max(1, round(value * self.scale))

    # ---- text --------------------------------------------------------------------------
    def _font_name(self, bold: bool, mono: bool = False, text: str = "") -> str:
        """The font for `text`: the theme's (DejaVu) when it has every character — amounts,
        codes and names stay in one face in every language — else the language's script font."""
        if mono:
            return self.theme.mono_font
        theme_font = self.theme.bold_font if bold else self.theme.regular_font
        if not self.lang.fonts or (text and all(has_glyph(theme_font, ch) for ch in text)):
            return theme_font
        return self.lang.fonts.get("bold" if bold else "regular") or self.lang.fonts["regular"]

    def _synthetic_bold(self, name: str) -> bool:
        """A script font without a bold face (Lohit Devanagari) gets its bold from a stroke."""
        return name in self.lang.fonts.values() and "bold" not in self.lang.fonts

    def fit_size(self, text: str, size: int, max_width: int, bold: bool, mono: bool = False,
                 min_size: int = 9) -> int:
        """The largest size <= `size` at which `text` fits `max_width` (not below `min_size`)."""
        name = self._font_name(bold, mono, text)
        while size > min_size and font(name, size).getlength(text) > max_width:
            size -= max(1, size // 12)
        return max(size, min_size)

    def text(self, text: str, x: int, top: int, size: int, *, color: Color | None = None,
             bold: bool = False, mono: bool = False, anchor: str = "mt",
             max_width: int | None = None, min_size: int | None = None) -> DrawnText:
        """One line at (x, top) anchored left/middle/right ('lt', 'mt', 'rt'); shrinks to
        `max_width`, cuts with an ellipsis only when even `min_size` does not fit."""
        max_width = max_width if max_width is not None else self.width - 2 * self.px(8)
        min_size = min_size if min_size is not None else max(9, self.px(10))
        size = self.fit_size(text, size, max_width, bold, mono, min_size)
        name = self._font_name(bold, mono, text)
        f = font(name, size)
        shown, truncated = text, False
        while f.getlength(shown) > max_width and len(shown) > 1:
            shown, truncated = shown[:-2] + "…", True
        fill = color or self.theme.text
        stroke = max(1, size // 28) if bold and self._synthetic_bold(name) else 0
        self.draw.text((x, top), shown, font=f, fill=fill, anchor=anchor, stroke_width=stroke,
                       stroke_fill=fill)
        box = tuple(int(v) for v in self.draw.textbbox((x, top), shown, font=f, anchor=anchor,
                                                       stroke_width=stroke))
        drawn = DrawnText(shown, box, size, truncated, name)  # type: ignore[arg-type]
        self.texts.append(drawn)
        return drawn

    def wrap(self, text: str, size: int, max_width: int, bold: bool = False) -> list[str]:
        """Greedy word wrap of `text` at `size` into lines no wider than `max_width`."""
        f = font(self._font_name(bold, text=text), size)
        lines: list[str] = []
        for paragraph in text.split("\n"):
            line = ""
            for word in paragraph.split():
                candidate = f"{line} {word}".strip()
                if line and f.getlength(candidate) > max_width:
                    lines.append(line)
                    line = word
                else:
                    line = candidate
            lines.append(line)
        return [line for line in lines if line]

    def balance(self, text: str, lines: list[str], size: int, max_width: int,
                bold: bool) -> list[str]:
        """Re-wrap to the narrowest width that keeps the same number of lines, so a paragraph
        breaks as 'Sorry, payments are / not possible now', not with one word left over."""
        if len(lines) < 2:
            return lines
        low, high = max_width // len(lines), max_width
        best = lines
        while low <= high:
            mid = (low + high) // 2
            candidate = self.wrap(text, size, mid, bold)
            if len(candidate) <= len(lines):
                best, high = candidate, mid - 1
            else:
                low = mid + 1
        return best

    def paragraph(self, text: str, x: int, top: int, size: int, *, max_width: int | None = None,
                  max_lines: int = 2, color: Color | None = None, bold: bool = False,
                  anchor: str = "mt", line_gap: float = 0.35) -> int:
        """Text wrapped onto at most `max_lines` lines (shrinking until it fits); returns the
        bottom of the last line."""
        max_width = max_width if max_width is not None else self.width - 2 * self.px(12)
        min_size = max(9, self.px(10))
        lines = self.wrap(text, size, max_width, bold)
        while size > min_size and (
            len(lines) > max_lines
            or any(font(self._font_name(bold, text=ln), size).getlength(ln) > max_width
                   for ln in lines)
        ):
            size -= 1
            lines = self.wrap(text, size, max_width, bold)
        if len(lines) > max_lines:
            lines = lines[: max_lines - 1] + [" ".join(lines[max_lines - 1:])]
        lines = self.balance(text, lines, size, max_width, bold)
        y = top
        for line in lines:
            drawn = self.text(line, x, y, size, color=color, bold=bold, anchor=anchor,
                              max_width=max_width, min_size=min_size)
            y = drawn.box[3] + round(size * line_gap)
        return y

    # ---- shapes ------------------------------------------------------------------------
    def contactless_symbol(self, cx: int, cy: int, height: int, color: Color) -> None:
        """The contactless indicator: four arcs growing to the right, with rounded ends."""
        stroke = max(2, round(height * 0.085))
        span = 36  # degrees either side of horizontal
        left = cx - height * 0.42
        for i in range(4):
            r = height * (0.18 + 0.155 * i)
            box = (left - r, cy - r, left + r, cy + r)
            self.draw.arc(box, -span, span, fill=color, width=stroke)
            for angle in (-span, span):  # round caps
                a = math.radians(angle)
                ex = left + (r - stroke / 2) * math.cos(a)
                ey = cy + (r - stroke / 2) * math.sin(a)
                h = stroke / 2
                self.draw.ellipse((ex - h, ey - h, ex + h, ey + h), fill=color)

    def tick_badge(self, cx: int, cy: int, radius: int, color: Color) -> None:
        """A filled circle with a white tick (approved / card read)."""
        self.draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=color)
        r = radius
        points = [(cx - r * 0.48, cy + r * 0.02), (cx - r * 0.14, cy + r * 0.36),
                  (cx + r * 0.5, cy - r * 0.32)]
        self.draw.line(points, fill=(255, 255, 255), width=max(2, round(r * 0.2)), joint="curve")

    def cross_badge(self, cx: int, cy: int, radius: int, color: Color) -> None:
        """A filled circle with a white cross (declined)."""
        self.draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=color)
        d = radius * 0.38
        w = max(2, round(radius * 0.2))
        self.draw.line([(cx - d, cy - d), (cx + d, cy + d)], fill=(255, 255, 255), width=w)
        self.draw.line([(cx - d, cy + d), (cx + d, cy - d)], fill=(255, 255, 255), width=w)

    def warning_badge(self, cx: int, cy: int, radius: int, color: Color) -> None:
        """A filled triangle with a white exclamation mark (one card only, try again)."""
        r = radius
        self.draw.polygon([(cx, cy - r), (cx + r * 1.08, cy + r * 0.82),
                           (cx - r * 1.08, cy + r * 0.82)], fill=color)
        w = max(2, round(r * 0.18))
        self.draw.line([(cx, cy - r * 0.38), (cx, cy + r * 0.3)], fill=(255, 255, 255), width=w)
        self.draw.ellipse((cx - w * 0.6, cy + r * 0.48, cx + w * 0.6, cy + r * 0.48 + w * 1.2),
                          fill=(255, 255, 255))

    def no_entry_badge(self, cx: int, cy: int, radius: int, color: Color) -> None:
        """A filled circle with a white bar (out of service)."""
        self.draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=color)
        h = max(2, round(radius * 0.16))
        self.draw.rectangle((cx - radius * 0.6, cy - h, cx + radius * 0.6, cy + h),
                            fill=(255, 255, 255))

    def phone_icon(self, cx: int, cy: int, height: int, color: Color) -> None:
        """A phone outline with a screen and a home dot (see phone)."""
        w = height * 0.56
        box = (cx - w / 2, cy - height / 2, cx + w / 2, cy + height / 2)
        stroke = max(2, round(height * 0.06))
        self.draw.rounded_rectangle(box, radius=height * 0.1, outline=color, width=stroke)
        inner = (box[0] + stroke * 1.8, box[1] + height * 0.12, box[2] - stroke * 1.8,
                 box[3] - height * 0.2)
        self.draw.rectangle(inner, fill=color)
        d = height * 0.05
        by = box[3] - height * 0.1
        self.draw.ellipse((cx - d, by - d, cx + d, by + d), fill=color)

    def hourglass_dots(self, cx: int, cy: int, size: int, color: Color, lit: int = 3) -> None:
        """A row of five dots, `lit` of them filled: a still 'working' indicator."""
        r = max(2, size // 2)
        gap = r * 3
        for i in range(5):
            x = cx + (i - 2) * gap
            fill = color if i < lit else self.theme.footer
            self.draw.ellipse((x - r, cy - r, x + r, cy + r), fill=fill)
