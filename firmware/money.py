"""Money as the terminal carries it: one `Currency` (ISO 4217 alpha, numeric and minor-unit
exponent) and one `Money` (minor units in a currency); the only place that knows ISO 4217.

A currency code is looked up once, where it comes in (the configuration, a command-line option,
a journal row's numeric code); from then on every layer passes the `Currency`, and takes the
numeric code for the wire (EMV 5F2A, ISO 8583 field 49) or the alpha code for people from it.
How an amount reads (screen, paper, operator line) is ui.money's one formatter.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CURRENCIES", "Currency", "Money", "UnknownCurrency", "currency"]


class UnknownCurrency(ValueError):
    """A currency code (alpha or numeric) the terminal does not know."""


@dataclass(frozen=True)
class Currency:
    """An ISO 4217 currency: 'EUR', 978, 2 decimals."""

    alpha: str
    numeric: int
    exponent: int

    def __str__(self) -> str:
        return self.alpha


# Currencies the terminal knows, by alpha code.
CURRENCIES: dict[str, Currency] = {
    c.alpha: c
    for c in (
        Currency("EUR", 978, 2),
        Currency("USD", 840, 2),
        Currency("GBP", 826, 2),
        Currency("INR", 356, 2),
        Currency("CHF", 756, 2),
        Currency("JPY", 392, 0),
        Currency("SEK", 752, 2),
        Currency("PLN", 985, 2),
        Currency("KWD", 414, 3),
    )
}
_BY_NUMERIC: dict[int, Currency] = {c.numeric: c for c in CURRENCIES.values()}


def currency(code: str | int) -> Currency:
    """'eur' or 978 -> Currency('EUR', 978, 2); UnknownCurrency for a code not in CURRENCIES."""
    if isinstance(code, int):
        found = _BY_NUMERIC.get(code)
        if found is None:
            raise UnknownCurrency(f"unknown currency number {code}")
        return found
    found = CURRENCIES.get(code.upper())
    if found is None:
        raise UnknownCurrency(f"unknown currency {code!r} (known: {', '.join(CURRENCIES)})")
    return found


@dataclass(frozen=True)
class Money:
    """An amount in minor units of one currency: Money(1250, EUR) is 12.50 euro."""

    minor: int
    currency: Currency

    @classmethod
    def of(cls, minor: int, code: str | int | Currency) -> Money:
        """Money.of(1250, "EUR") / Money.of(1250, 978); UnknownCurrency for an unknown code."""
        return cls(minor, code if isinstance(code, Currency) else currency(code))

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"{self.currency} and {other.currency} do not add up")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)
