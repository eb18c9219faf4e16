"""Every screen of the terminal, drawn with Pillow from plain data: one function a screen, each
returning a `Screen` (name, image, the texts drawn with their boxes). Pure: no I/O, no drivers,
no payment logic. Card numbers arrive already masked; only the last four digits are drawn.

Layout: a header bar (merchant name, the four contactless status lights), a body whose items are
stacked and spaced evenly, and an optional footer with a hint. Sizes scale from 320x240; every
layout in ui.theme.LAYOUTS is tested for texts that fit.

A refund says so on every screen the customer sees during it (`txn_type="refund"`): a "Refund"
label on present card, processing, card read and the messages, "Refund approved" / "Refund
declined" as the outcome's title, and hints that speak of refunding rather than charging.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from ui.canvas import Canvas, DrawnText
from ui.lang import Language
from ui.lang import load as load_language
from ui.money import MoneyLike, format_money
from ui.qr import qr_image, qr_on_screen
from ui.theme import DEFAULT_THEME, Color, Theme, font

SCHEME_NAMES = {"visa": "VISA", "mastercard": "Mastercard", "rupay": "RuPay", "amex": "AMEX",
                "maestro": "Maestro"}


@dataclass(frozen=True)
class View:
    """What every screen shares: panel size, language, theme and the header's contents."""

    width: int = 320
    height: int = 240
    lang: Language = field(default_factory=lambda: load_language("en"))
    theme: Theme = DEFAULT_THEME
    merchant: str = ""
    lights: int = 0  # status lights drawn lit in the header, 0..4
    clock: str = ""  # e.g. "14:05"; empty = none


@dataclass
class Screen:
    """A rendered screen: `name` (file names, logs), the image, and the texts drawn on it."""

    name: str
    image: Image.Image
    texts: list[DrawnText]

    @property
    def strings(self) -> list[str]:
        return [t.text for t in self.texts]

    def shows(self, text: str) -> bool:
        """True when `text` appears in one drawn line (or across the lines of a paragraph)."""
        joined = " ".join(self.strings)
        return any(text in s for s in self.strings) or text in joined


class TotalsLike(Protocol):
    """What the settlement screen reads of a batch's totals (firmware.money.BatchTotals)."""

    @property
    def batch(self) -> int: ...

    @property
    def sales_count(self) -> int: ...

    @property
    def refunds_count(self) -> int: ...

    @property
    def sales(self) -> MoneyLike: ...

    @property
    def refunds(self) -> MoneyLike: ...

    @property
    def net(self) -> MoneyLike: ...


# ---- page furniture ------------------------------------------------------------------------
def _page(view: View, footer: str = "") -> tuple[Canvas, int, int]:
    """A canvas with header (and footer when given); returns it with the body's top and bottom."""
    c = Canvas(view.width, view.height, view.lang, view.theme)
    t = view.theme
    header_h = c.px(30)
    c.draw.rectangle((0, 0, c.width, header_h), fill=t.header)
    # Four status lights, right-aligned, as on the terminal's face.
    r = c.px(5)
    gap = c.px(15)
    right = c.width - c.px(10) - r
    lights_left = right - 3 * gap - r
    for i in range(4):
        x = right - (3 - i) * gap
        fill = t.light_on if i < view.lights else t.light_off
        c.draw.ellipse((x - r, header_h // 2 - r, x + r, header_h // 2 + r), fill=fill)
    left = c.px(8)
    space = lights_left - c.px(10) - left
    if view.clock:
        clock = c.text(view.clock, lights_left - c.px(10), header_h // 2, c.px(13),
                       color=t.header_text, anchor="rm", max_width=c.px(50))
        space = clock.box[0] - c.px(8) - left
    if view.merchant:
        c.text(view.merchant, left, header_h // 2, c.px(14), color=t.header_text, bold=True,
               anchor="lm", max_width=space)
    bottom = c.height
    if footer:
        footer_h = c.px(30)
        bottom = c.height - footer_h
        c.draw.rectangle((0, bottom, c.width, c.height), fill=t.footer)
        c.text(footer, c.width // 2, bottom + footer_h // 2, c.px(13), color=t.muted,
               anchor="mm", max_width=c.width - c.px(12))
    return c, header_h, bottom


class Column:
    """Items stacked top to bottom in the body, centred, with the spare height spread evenly."""

    def __init__(self, canvas: Canvas) -> None:
        self.c = canvas
        self.items: list[tuple[int, Callable[[int], object]]] = []

    def text(self, text: str, size: float, *, bold: bool = False, color: Color | None = None,
             mono: bool = False) -> None:
        c = self.c
        max_width = c.width - 2 * c.px(10)
        px = c.fit_size(text, c.px(size), max_width, bold, mono, max(9, c.px(10)))
        ascent, descent = font(c._font_name(bold, mono, text), px).getmetrics()
        self.items.append((ascent + descent, lambda y: c.text(
            text, c.width // 2, y, px, color=color, bold=bold, mono=mono, max_width=max_width)))

    def paragraph(self, text: str, size: float, *, max_lines: int = 2,
                  color: Color | None = None, bold: bool = False) -> None:
        c = self.c
        max_width = c.width - 2 * c.px(14)
        px = c.px(size)
        lines = c.wrap(text, px, max_width, bold)
        while px > max(9, c.px(10)) and len(lines) > max_lines:
            px -= 1
            lines = c.wrap(text, px, max_width, bold)
        ascent, descent = font(c._font_name(bold, text=text), px).getmetrics()
        gap = round(px * 0.35)
        height = len(lines) * (ascent + descent) + (len(lines) - 1) * gap
        self.items.append((height, lambda y: c.paragraph(
            text, c.width // 2, y, px, max_width=max_width, max_lines=max_lines, color=color,
            bold=bold)))

    def shape(self, height: int, draw: Callable[[int, int], None]) -> None:
        """A drawing `height` pixels tall; `draw(cx, cy)` paints it around its centre."""
        self.items.append((height, lambda y: draw(self.c.width // 2, y + height // 2)))

    def layout(self, top: int, bottom: int) -> None:
        used = sum(h for h, _ in self.items)
        spare = max(0, bottom - top - used)
        gap = spare / (len(self.items) + 1)
        y = top + gap
        for height, draw in self.items:
            draw(round(y))
            y += height + gap


def _money_line(view: View, money: MoneyLike | None) -> str:
    return format_money(money, view.lang) if money is not None else ""


def _txn_label(col: Column, view: View, txn_type: str) -> None:
    """Anything but a purchase is named at the top, white on the accent colour ("Refund")."""
    if txn_type == "purchase":
        return
    c = col.c
    text = view.lang.t(txn_type)
    size = c.px(15)
    height = c.px(24)
    # bold where the font has a bold face: a stroked script font smudges white on a dark pill
    bold = not c._synthetic_bold(c._font_name(True, text=text))

    def pill(cx: int, cy: int) -> None:
        width = min(c.width - 2 * c.px(10),
                    font(c._font_name(bold, text=text), size).getlength(text) + 2 * c.px(12))
        c.draw.rounded_rectangle((cx - width / 2, cy - height / 2, cx + width / 2,
                                  cy + height / 2), radius=height // 2, fill=view.theme.accent)
        c.text(text, cx, cy, size, color=view.theme.header_text, bold=bold, anchor="mm",
               max_width=round(width) - 2 * c.px(8))

    col.shape(height, pill)


def txn_wording(txn_type: str, key: str, lang: Language) -> str:
    """`key`, or its refund wording (`key_refund`) during a refund when the language has one."""
    special = f"{key}_{txn_type}"
    return special if txn_type != "purchase" and special in lang.text else key


def card_ending(masked_pan: str) -> str:
    """'476173******1234' -> '•••• 1234': screens show no more than the last four digits."""
    digits = "".join(ch for ch in masked_pan if ch.isdigit())
    return f"•••• {digits[-4:]}" if len(digits) >= 4 else ""


def scheme_name(scheme: str) -> str:
    return SCHEME_NAMES.get(scheme.lower(), scheme.upper()) if scheme else ""


# ---- the screens ---------------------------------------------------------------------------
def ready_screen(view: View, stored_count: int = 0, stored: MoneyLike | None = None,
                 declined_late: int = 0) -> Screen:
    """Idle: the terminal waits for the shopkeeper to key an amount. With payments stored for
    the bank ([offline]: `stored_count`, their total `stored`) it says so, in amber, and how many
    of today's the bank declined after the fact."""
    t = view.lang
    c, top, bottom = _page(view, footer=t.t("ready_hint"))
    col = Column(c)
    col.text(t.t("welcome"), 30, bold=True)
    col.shape(c.px(70), lambda x, y: c.contactless_symbol(x, y, c.px(70), view.theme.neutral))
    col.text(t.t("ready"), 18, color=view.theme.muted)
    if stored_count and stored is not None:
        col.text(t.t("stored_offline", count=stored_count, amount=format_money(stored, t)), 15,
                 bold=True, color=view.theme.warning)
    if declined_late:
        col.text(t.t("declined_late", count=declined_late), 15, bold=True,
                 color=view.theme.warning)
    col.layout(top, bottom)
    return Screen("ready", c.image, c.texts)


# The keys' legends on a desktop keyboard; a keypad's come from its layout (firmware.feedback).
KEYBOARD_LEGENDS = {"enter": "Enter", "clear": "C", "cancel": "Esc"}


def amount_entry_screen(view: View, money: MoneyLike, txn_type: str = "purchase",
                        keys: dict[str, str] | None = None) -> Screen:
    """The shopkeeper keys the amount: label, the amount in a field, and below which key is
    OK / clear / cancel (`keys`: legends by meaning, e.g. {"enter": "#", ...})."""
    t = view.lang
    th = view.theme
    legends = {**KEYBOARD_LEGENDS, **(keys or {})}
    c, top, bottom = _page(view, footer=t.t("keys_hint", **legends))
    col = Column(c)
    col.text(f"{t.t(txn_type)} · {t.t('enter_amount')}", 17, color=th.muted)
    _entry_field(col, view, format_money(money, t))
    col.layout(top, bottom)
    return Screen("amount_entry", c.image, c.texts)


def _entry_field(col: Column, view: View, text: str, height: float = 66,
                 size: float = 40) -> None:
    """The field a value is keyed into: a framed box, the value right-aligned in it."""
    c, th = col.c, view.theme
    box_h = c.px(height)

    def field_box(cx: int, cy: int) -> None:
        margin = c.px(16)
        c.draw.rounded_rectangle((margin, cy - box_h // 2, c.width - margin, cy + box_h // 2),
                                 radius=c.px(8), fill=th.panel, outline=th.accent,
                                 width=max(1, c.px(2)))
        c.text(text, c.width - margin - c.px(12), cy, c.px(size), bold=True,
               color=th.text, anchor="rm", max_width=c.width - 2 * margin - c.px(24))

    col.shape(box_h, field_box)


def void_entry_screen(view: View, digits: str, keys: dict[str, str] | None = None) -> Screen:
    """The shopkeeper keys the number of the payment to void (as `pitap journal` lists it)."""
    t = view.lang
    th = view.theme
    legends = {**KEYBOARD_LEGENDS, **(keys or {})}
    c, top, bottom = _page(view, footer=t.t("keys_hint", **legends))
    col = Column(c)
    _txn_label(col, view, "void")
    col.text(t.t("void_entry"), 17, color=th.muted)
    _entry_field(col, view, f"#{digits}")
    col.layout(top, bottom)
    return Screen("void_entry", c.image, c.texts)


def tip_prompt_screen(view: View, amount: MoneyLike, presets: Sequence[tuple[int, MoneyLike]],
                      custom_key: str = "4", no_tip_key: str = "0") -> Screen:
    """Before the tap ([tips] mode = "prompt"): the amount, then a line a choice, each with its
    key: the presets (percent and what it adds; keys 1, 2, 3), another amount, no tip."""
    t = view.lang
    th = view.theme
    c, top, bottom = _page(view)
    col = Column(c)
    col.text(t.t("tip_title"), 22, bold=True)
    col.text(t.t("tip_amount", amount=format_money(amount, t)), 15, color=th.muted)
    for key, (percent, tip) in enumerate(presets, start=1):
        col.text(t.t("tip_preset", button=key, percent=percent, amount=format_money(tip, t)),
                 17, bold=True)
    col.text(t.t("tip_custom", button=custom_key), 16)
    col.text(t.t("tip_none", button=no_tip_key), 16)
    col.layout(top, bottom)
    return Screen("tip_prompt", c.image, c.texts)


def tip_entry_screen(view: View, tip: MoneyLike, most: MoneyLike, too_much: bool = False,
                     keys: dict[str, str] | None = None) -> Screen:
    """Another tip amount, keyed as an amount is: the tip in a field, at most how much (in
    the warning colour when the tip keyed was over it)."""
    t = view.lang
    th = view.theme
    legends = {**KEYBOARD_LEGENDS, **(keys or {})}
    c, top, bottom = _page(view, footer=t.t("keys_hint", **legends))
    col = Column(c)
    col.text(t.t("tip_entry"), 17, color=th.muted)
    _entry_field(col, view, format_money(tip, t), 60, 36)
    most_text = format_money(most, t)
    if too_much:
        col.text(t.t("tip_too_much", amount=most_text), 15, bold=True, color=th.warning)
    else:
        col.text(t.t("tip_most", amount=most_text), 15, color=th.muted)
    col.layout(top, bottom)
    return Screen("tip_entry", c.image, c.texts)


def present_card_screen(view: View, money: MoneyLike, txn_type: str = "purchase") -> Screen:
    """Time to tap: the amount, the contactless symbol, 'Present card or phone'."""
    t = view.lang
    th = view.theme
    c, top, bottom = _page(view)
    col = Column(c)
    _txn_label(col, view, txn_type)
    col.text(format_money(money, t), 42, bold=True)
    col.shape(c.px(78), lambda x, y: c.contactless_symbol(x, y, c.px(78), th.accent))
    col.paragraph(t.t("present_card"), 20, bold=True, max_lines=2)
    col.layout(top, bottom)
    return Screen("present_card", c.image, c.texts)


def partial_screen(view: View, paid: MoneyLike, total: MoneyLike, left: MoneyLike) -> Screen:
    """A partial approval: "Approved X of Y", what is left, big, and a tap for the rest."""
    t = view.lang
    th = view.theme
    c, top, bottom = _page(view)
    col = Column(c)
    col.paragraph(t.t("partial_approved", paid=format_money(paid, t),
                      total=format_money(total, t)), 20, bold=True, color=th.success)
    col.text(t.t("partial_left", left=format_money(left, t)), 34, bold=True)
    col.shape(c.px(56), lambda x, y: c.contactless_symbol(x, y, c.px(56), th.accent))
    col.paragraph(t.t("partial_hint"), 17, max_lines=2)
    col.layout(top, bottom)
    return Screen("partial", c.image, c.texts)


def processing_screen(view: View, money: MoneyLike | None = None,
                      txn_type: str = "purchase") -> Screen:
    """The card is being read / the bank asked: keep the card still."""
    t = view.lang
    th = view.theme
    c, top, bottom = _page(view, footer=t.t("do_not_remove"))
    col = Column(c)
    _txn_label(col, view, txn_type)
    if money is not None:
        col.text(_money_line(view, money), 26, bold=True, color=th.muted)
    col.text(t.t("processing"), 28, bold=True)
    col.shape(c.px(14), lambda x, y: c.hourglass_dots(x, y, c.px(12), th.accent, lit=3))
    col.text(t.t("please_wait"), 17, color=th.muted)
    col.layout(top, bottom)
    return Screen("processing", c.image, c.texts)


def card_read_screen(view: View, txn_type: str = "purchase") -> Screen:
    """All four lights lit: the card may leave the field."""
    t = view.lang
    th = view.theme
    c, top, bottom = _page(view)
    col = Column(c)
    _txn_label(col, view, txn_type)
    r = c.px(30)
    col.shape(2 * r, lambda x, y: c.tick_badge(x, y, r, th.success))
    col.text(t.t("card_read"), 28, bold=True)
    col.text(t.t("remove_card"), 20, color=th.muted)
    col.layout(top, bottom)
    return Screen("card_read", c.image, c.texts)


def approved_screen(view: View, money: MoneyLike, auth_code: str = "", masked_pan: str = "",
                    scheme: str = "", txn_type: str = "purchase", offline: bool = False) -> Screen:
    """Approved: tick, the word ("Refund approved" for a refund), the amount, which card and the
    auth code ("Approved offline" instead of an offline approval's Y1)."""
    t = view.lang
    th = view.theme
    c, top, bottom = _page(view)
    col = Column(c)
    r = c.px(27)
    col.shape(2 * r, lambda x, y: c.tick_badge(x, y, r, th.success))
    col.text(t.t(txn_wording(txn_type, "approved", t)), 30, bold=True, color=th.success)
    col.text(format_money(money, t), 24, bold=True)
    card = " ".join(p for p in (scheme_name(scheme), card_ending(masked_pan)) if p)
    if card:
        col.text(card, 15, color=th.muted)
    if offline:
        col.text(t.t("approved_offline"), 15, color=th.muted)
    elif auth_code:
        col.text(f"{t.t('auth_code')}: {auth_code}", 15, color=th.muted)
    col.layout(top, bottom)
    return Screen("approved", c.image, c.texts)


def reason_text(lang: Language, reason: str, detail: str = "") -> str:
    """Why, in plain words: a reason code (firmware.reasons.Reason: 'insufficient_funds') in the
    customer's language; a code the language has no words for (or none) shows `detail`, the
    free text it came with, capitalised."""
    key = f"reason_{reason}"
    if reason and key in lang.text:
        return lang.t(key)
    return detail[:1].upper() + detail[1:]


def declined_screen(view: View, reason: str = "", money: MoneyLike | None = None,
                    txn_type: str = "purchase", detail: str = "") -> Screen:
    """Declined: cross, the word ("Refund declined" for a refund), the reason in plain words
    (`reason` a code, `detail` the free text shown when the language has no words for it)."""
    t = view.lang
    th = view.theme
    c, top, bottom = _page(view)
    col = Column(c)
    r = c.px(27)
    col.shape(2 * r, lambda x, y: c.cross_badge(x, y, r, th.failure))
    col.text(t.t(txn_wording(txn_type, "declined", t)), 30, bold=True, color=th.failure)
    if money is not None:
        col.text(format_money(money, t), 22, bold=True)
    why = reason_text(t, reason, detail)
    if why:
        col.paragraph(why, 18, max_lines=2, color=th.text)
    col.layout(top, bottom)
    return Screen("declined", c.image, c.texts)


def not_charged_screen(view: View, reason: str = "", money: MoneyLike | None = None,
                       txn_type: str = "purchase", detail: str = "") -> Screen:
    """The host never decided (not reachable, no reply: reversed): not a decline. Amber, with
    what happened to the money ("Not charged") and what to do, then why in small print."""
    t = view.lang
    th = view.theme
    c, top, bottom = _page(view)
    col = Column(c)
    r = c.px(27)
    col.shape(2 * r, lambda x, y: c.warning_badge(x, y, r, th.warning))
    col.text(t.t(txn_wording(txn_type, "not_charged", t)), 28, bold=True, color=th.warning)
    if money is not None:
        col.text(format_money(money, t), 22, bold=True)
    col.paragraph(t.t(txn_wording(txn_type, "not_charged_hint", t)), 17, max_lines=2,
                  color=th.text)
    why = reason_text(t, reason, detail)
    if why:
        col.text(why, 14, color=th.muted)
    col.layout(top, bottom)
    return Screen("not_charged", c.image, c.texts)


# kind -> (title key, hint key, icon)
MESSAGES: dict[str, tuple[str, str, str]] = {
    "see_phone": ("see_phone", "see_phone_hint", "phone"),
    "one_card_only": ("one_card_only", "one_card_only_hint", "warning"),
    "try_again": ("try_again", "try_again_hint", "contactless"),
    "no_card": ("no_card", "no_card_hint", "warning"),
    "out_of_service": ("out_of_service", "out_of_service_hint", "no_entry"),
    "cancelled": ("cancelled", "cancelled_hint", "cross"),
    "closed": ("closed", "closed_hint", "closed"),
    "voided": ("voided", "voided_hint", "cross"),
    "void_refused": ("void_refused", "void_refused_hint", "no_entry"),
    "upi_unknown": ("reason_upi_unknown", "upi_unknown_hint", "warning"),  # the PSP is silent
    "upi_offer": ("upi_offer", "upi_offer_hint", "phone"),  # a card a phone cannot fix
}


def message_screen(view: View, kind: str, detail: str = "", txn_type: str = "purchase") -> Screen:
    """One of the interruption messages: see phone, one card only, try again, no card,
    out of service, cancelled, closed (the service stopped). `detail` replaces the standard hint
    when given."""
    if kind not in MESSAGES:
        raise ValueError(f"unknown message {kind!r} (known: {', '.join(MESSAGES)})")
    t = view.lang
    th = view.theme
    title_key, hint_key, icon = MESSAGES[kind]
    c, top, bottom = _page(view)
    col = Column(c)
    _txn_label(col, view, txn_type)
    size = c.px(64)
    r = size // 2
    draw_icon: dict[str, Callable[[int, int], None]] = {
        "phone": lambda x, y: c.phone_icon(x, y, size, th.accent),
        "warning": lambda x, y: c.warning_badge(x, y, r, th.warning),
        "contactless": lambda x, y: c.contactless_symbol(x, y, size, th.warning),
        "no_entry": lambda x, y: c.no_entry_badge(x, y, r, th.failure),
        "cross": lambda x, y: c.cross_badge(x, y, r, th.neutral),
        "closed": lambda x, y: c.no_entry_badge(x, y, r, th.neutral),
    }
    col.shape(size, draw_icon[icon])
    col.paragraph(t.t(title_key), 26, bold=True, max_lines=2)
    hint = detail or (t.t(txn_wording(txn_type, hint_key, t)) if hint_key else "")
    if hint:
        col.paragraph(hint, 16, max_lines=2, color=th.muted)
    col.layout(top, bottom)
    return Screen(kind, c.image, c.texts)


def settlement_screen(view: View, totals: TotalsLike, balanced: bool | None = None,
                      when: str = "") -> Screen:
    """End of day: the batch's sales, refunds and net, and whether the host agreed (`balanced`
    None: not compared with the host yet)."""
    t = view.lang
    th = view.theme
    status = "" if balanced is None else t.t("balanced" if balanced else "unbalanced")
    c, top, bottom = _page(view, footer=status or when)
    title = f"{t.t('settlement')} · {t.t('batch')} {totals.batch}"
    c.text(title, c.width // 2, top + c.px(10), c.px(18), bold=True)

    rows = [
        (t.t("sales"), str(totals.sales_count), format_money(totals.sales, t)),
        (t.t("refunds"), str(totals.refunds_count), format_money(-totals.refunds, t)),
        (t.t("net"), "", format_money(totals.net, t)),
    ]
    margin = c.px(14)
    table_top = top + c.px(42)
    row_h = (bottom - table_top - c.px(8)) // len(rows)
    size = c.px(17)
    for i, (label, count, amount) in enumerate(rows):
        y = table_top + i * row_h
        if i == len(rows) - 1:
            c.draw.line((margin, y, c.width - margin, y), fill=th.muted, width=max(1, c.px(1)))
        bold = i == len(rows) - 1
        mid = y + row_h // 2
        label_w = round((c.width - 2 * margin) * 0.36)
        c.text(label, margin, mid, size, bold=bold, anchor="lm", max_width=label_w)
        if count:
            c.text(count, margin + label_w + c.px(22), mid, size, color=th.muted, anchor="rm",
                   max_width=c.px(40))
        c.text(amount, c.width - margin, mid, size, bold=bold, anchor="rm",
               max_width=c.width - 2 * margin - label_w - c.px(28))
    if status:
        color = th.success if balanced else th.failure
        c.draw.rectangle((0, bottom, c.px(6), c.height), fill=color)
    return Screen("settlement", c.image, c.texts)


def receipt_qr_screen(view: View, payload: str, money: MoneyLike | None = None,
                      note: str = "", outcome: str = "", txn_type: str = "purchase") -> Screen:
    """No printer (or it failed: `note` says why): a QR code to scan for an e-receipt, under
    the payment's outcome ("approved" / "declined"; "Refund approved" for a refund) and
    amount."""
    t = view.lang
    c, top, bottom = _page(view)
    caption_h = c.px(28 + (22 if money is not None else 0) + (18 if note else 0))
    # the page is white: two modules of quiet zone in the code, the page's margin the rest;
    # modules down to 1 px, as this screen always drew them (a long receipt on a small panel)
    code = qr_image(payload, min(bottom - top - caption_h - c.px(12), c.width - c.px(20)),
                    quiet_zone=2, min_module_px=1)
    qtop = top + c.px(6)
    c.image.paste(code, ((c.width - code.width) // 2, qtop))
    y = qtop + code.height + c.px(4)
    if money is not None:
        headline = format_money(money, t)
        color = view.theme.text
        if outcome in ("approved", "declined"):
            headline = f"{t.t(txn_wording(txn_type, outcome, t))} · {headline}"
            color = view.theme.success if outcome == "approved" else view.theme.failure
        drawn = c.text(headline, c.width // 2, y, c.px(18), bold=True, color=color)
        y = drawn.box[3] + c.px(3)
    if note:
        drawn = c.text(note, c.width // 2, y, c.px(14), bold=True, color=view.theme.warning)
        y = drawn.box[3] + c.px(3)
    c.text(t.t("scan_receipt"), c.width // 2, y, c.px(15), color=view.theme.muted)
    return Screen("receipt_qr", c.image, c.texts)


def upi_qr_screen(view: View, payload: str, money: MoneyLike) -> Screen:
    """A UPI payment's dynamic QR (the `upi://pay?` link or BharatQR text, firmware.upi), as
    large as the panel allows with its quiet zone on white, the amount and "Scan to pay by UPI"
    under it. ui.qr.QrDoesNotFit when the panel is too small for a readable code."""
    t = view.lang
    code, free_row = qr_on_screen(payload, view.width, view.height)
    c = Canvas(view.width, view.height, t, view.theme)
    c.image.paste(code, (0, 0))
    band = view.height - free_row
    ink = (0, 0, 0)  # on the QR's white, whatever the theme
    line = max(9, min(c.px(18), band // 2 - 1))
    c.text(f"{format_money(money, t)} · {t.t('upi_scan')}", c.width // 2, free_row + 1, line,
           bold=True, color=ink, min_size=9)
    return Screen("upi_qr", c.image, c.texts)


def fingerprint_groups(fingerprint: str, per_group: int = 4) -> list[str]:
    """"AB:CD:EF:01:23:..." (SHA-256, 32 bytes) -> ["ABCD EF01", ...]: `per_group` bytes a
    group, two bytes a word, to be read aloud and compared with what the till pins."""
    octets = [o for o in fingerprint.replace(" ", "").split(":") if o]
    groups = [octets[i:i + per_group] for i in range(0, len(octets), per_group)]
    return [" ".join("".join(g[j:j + 2]) for j in range(0, len(g), 2)) for g in groups]


def service_api_screen(view: View, url: str, fingerprint: str) -> Screen:
    """The service screen of the terminal API (`pitap run`, enter on an empty amount): its
    address and the HTTPS certificate's SHA-256 fingerprint in groups of four bytes, a line
    of two groups, for the till's installer to read and pin; on plain HTTP (127.0.0.1 only)
    it says there is no certificate. With no API served: "API off"."""
    t = view.lang
    th = view.theme
    c, top, bottom = _page(view)
    col = Column(c)
    col.text(t.t("service_api"), 20, bold=True)
    if url:
        col.text(url, 14, mono=True)
    else:
        col.text(t.t("service_api_off"), 14)
    if fingerprint:
        col.text(t.t("service_api_fingerprint"), 12, color=th.muted)
        groups = fingerprint_groups(fingerprint)
        for i in range(0, len(groups), 2):
            col.text("  ".join(groups[i:i + 2]), 13, mono=True)
    elif url:
        col.text(t.t("service_api_plain"), 12, color=th.muted)
    col.layout(top, bottom)
    return Screen("service_api", c.image, c.texts)


def printer_problem_screen(view: View, problem: str) -> Screen:
    """The printer could not print: say so plainly (the payment itself is unaffected)."""
    return message_screen_with(view, "printer", view.lang.t("printer_problem", problem=problem))


def message_screen_with(view: View, name: str, title: str, hint: str = "") -> Screen:
    """A warning screen with free text (printer trouble and the like)."""
    th = view.theme
    c, top, bottom = _page(view)
    col = Column(c)
    r = c.px(30)
    col.shape(2 * r, lambda x, y: c.warning_badge(x, y, r, th.warning))
    col.paragraph(title, 22, bold=True, max_lines=2)
    if hint:
        col.paragraph(hint, 16, max_lines=2, color=th.muted)
    col.layout(top, bottom)
    return Screen(name, c.image, c.texts)
