"""Amounts as people read them, the terminal's one amount formatter, in three styles:

    SCREEN    the customer's display, symbol and the language's ways  "€1,234.56", "1.234,56 €"
    PAPER     a receipt or report line (printable anywhere), code first  "EUR 1,234.56"
    OPERATOR  a log or command line, the same in every language        "1234.56 EUR"

Pure functions over any money-shaped value (firmware.money.Money): minor units and a currency
with an alpha code and an ISO 4217 exponent. ui imports nothing of firmware, so it states what it
reads as protocols and keeps no currency table beyond the symbols it draws.
"""

from __future__ import annotations

import enum
from typing import Protocol, Self

from ui.lang import Language

# Symbols drawn on screen (all present in DejaVu Sans); other codes are shown as the code.
SYMBOLS: dict[str, str] = {
    "EUR": "€",
    "USD": "$",
    "GBP": "£",
    "INR": "₹",
    "JPY": "¥",
}


class CurrencyLike(Protocol):
    @property
    def alpha(self) -> str: ...

    @property
    def exponent(self) -> int: ...


class MoneyLike(Protocol):
    """What ui reads of an amount (firmware.money.Money is one)."""

    @property
    def minor(self) -> int: ...

    @property
    def currency(self) -> CurrencyLike: ...

    def __neg__(self) -> Self: ...


class Style(enum.Enum):
    SCREEN = "screen"
    PAPER = "paper"
    OPERATOR = "operator"


def group(digits: str, sep: str, sizes: tuple[int, ...] = (3,)) -> str:
    """'1234567' -> '1,234,567'; sizes from the right, the last repeating: (3, 2) is the
    Indian lakh/crore grouping '12,34,567'."""
    out = []
    i = 0
    while True:
        size = sizes[min(i, len(sizes) - 1)]
        if len(digits) <= size:
            break
        out.append(digits[-size:])
        digits = digits[:-size]
        i += 1
    out.append(digits)
    return sep.join(reversed(out))


def number(minor: int, exponent: int, lang: Language | None) -> str:
    """The amount without currency: 123456, 2 -> '1,234.56' (en) / '1.234,56' (it); with no
    language, ungrouped with a decimal point: '1234.56'."""
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor)).rjust(exponent + 1, "0")
    whole, frac = (digits[:-exponent], digits[-exponent:]) if exponent else (digits, "")
    text = group(whole, lang.group_sep, lang.grouping) if lang is not None else whole
    if frac:
        text += (lang.decimal_sep if lang is not None else ".") + frac
    return sign + text


def format_money(money: MoneyLike, lang: Language | None = None,
                 style: Style = Style.SCREEN) -> str:
    """SCREEN: '€1,234.56' (en), '1.234,56 €' (it), 'CHF 12.00', '¥1,200', 'KWD 1.250';
    PAPER: 'EUR 1,234.56' (en) / 'EUR 1.234,56' (it); OPERATOR (no language): '1234.56 EUR'."""
    code = money.currency.alpha.upper()
    if style is Style.OPERATOR or lang is None:
        return f"{number(money.minor, money.currency.exponent, None)} {code}"
    num = number(money.minor, money.currency.exponent, lang)
    if style is Style.PAPER:
        return f"{code} {num}"
    symbol = SYMBOLS.get(code)
    if symbol is None:  # a code always takes a space and goes first in English
        return f"{code} {num}" if lang.symbol_first else f"{num} {code}"
    space = " " if lang.symbol_space else ""
    if num.startswith("-"):
        return f"-{symbol}{space}{num[1:]}" if lang.symbol_first else f"{num}{space}{symbol}"
    return f"{symbol}{space}{num}" if lang.symbol_first else f"{num}{space}{symbol}"


def operator_text(money: MoneyLike) -> str:
    """'12.50 EUR': an amount on an operator's line (logs, `pitap` output)."""
    return format_money(money, None, Style.OPERATOR)
