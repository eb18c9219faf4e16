"""Amounts as people read them: minor units -> "€12.50" / "12,50 €", by ISO 4217 exponent and
the language's conventions. Pure functions; the caller supplies the exponent (the terminal knows
its currencies: firmware.config.CURRENCIES), so ui keeps no currency table of its own beyond the
symbols it draws.
"""

from __future__ import annotations

from dataclasses import dataclass

from ui.lang import Language

# Symbols drawn on screen (all present in DejaVu Sans); other codes are shown as the code.
SYMBOLS: dict[str, str] = {
    "EUR": "€",
    "USD": "$",
    "GBP": "£",
    "INR": "₹",
    "JPY": "¥",
}


@dataclass(frozen=True)
class Money:
    """An amount in minor units of a currency with `exponent` decimal places (ISO 4217)."""

    minor: int
    currency: str  # ISO 4217 alpha
    exponent: int = 2


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


def number(minor: int, exponent: int, lang: Language) -> str:
    """The amount without currency: 123456, 2 -> '1,234.56' (en) / '1.234,56' (it)."""
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor)).rjust(exponent + 1, "0")
    whole, frac = (digits[:-exponent], digits[-exponent:]) if exponent else (digits, "")
    text = group(whole, lang.group_sep, lang.grouping)
    if frac:
        text += lang.decimal_sep + frac
    return sign + text


def format_money(money: Money, lang: Language) -> str:
    """'€1,234.56' (en), '1.234,56 €' (it), 'CHF 12.00', '¥1,200', 'KWD 1.250'."""
    num = number(money.minor, money.exponent, lang)
    symbol = SYMBOLS.get(money.currency.upper())
    if symbol is None:  # a code always takes a space and goes first in English
        code = money.currency.upper()
        return f"{code} {num}" if lang.symbol_first else f"{num} {code}"
    space = " " if lang.symbol_space else ""
    if num.startswith("-"):
        return f"-{symbol}{space}{num[1:]}" if lang.symbol_first else f"{num}{space}{symbol}"
    return f"{symbol}{space}{num}" if lang.symbol_first else f"{num}{space}{symbol}"
