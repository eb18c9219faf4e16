"""Money as the terminal carries it: one `Currency` (ISO 4217 alpha, numeric and minor-unit
exponent) and one `Money` (minor units in a currency); the only place that knows ISO 4217.

A currency code is looked up once, where it comes in (the configuration, a command-line option,
a journal row's numeric code); from then on every layer passes the `Currency`, and takes the
numeric code for the wire (EMV 5F2A, ISO 8583 field 49) or the alpha code for people from it.
How an amount reads (screen, paper, operator line) is ui.money's one formatter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import ClassVar

from firmware.errors import PitapError

__all__ = ["CURRENCIES", "BatchTotals", "Currency", "Money", "UnknownCurrency", "currency"]


class UnknownCurrency(PitapError, ValueError):
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


@dataclass(frozen=True)
class BatchTotals:
    """Count and sum of one batch's charged sales and refunds, in one currency: what the
    terminal sends in its settlement (0500, field 63), what the host counted back, the
    Z-report's and the settlement screen's figures, and each scheme's share."""

    batch: int
    currency: Currency
    sales_count: int = 0
    sales_amount: int = 0  # minor units
    refunds_count: int = 0
    refunds_amount: int = 0

    COUNTS: ClassVar[tuple[str, ...]] = (
        "sales_count", "sales_amount", "refunds_count", "refunds_amount")

    @property
    def sales(self) -> Money:
        return Money(self.sales_amount, self.currency)

    @property
    def refunds(self) -> Money:
        return Money(self.refunds_amount, self.currency)

    @property
    def net(self) -> Money:
        return self.sales - self.refunds

    def counts(self) -> dict[str, int]:
        """The four figures by name: the journal's and `pitap settle --json`'s shape."""
        return {name: int(getattr(self, name)) for name in self.COUNTS}

    @classmethod
    def from_counts(cls, batch: int, currency: Currency,
                    counts: Mapping[str, object]) -> BatchTotals:
        """From the four figures by name (other keys ignored); ValueError when one is missing
        or not a whole number >= 0."""
        values: dict[str, int] = {}
        for name in cls.COUNTS:
            value = counts.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"batch totals: {name} must be a whole number >= 0")
            values[name] = value
        return cls(batch, currency, **values)

    def plus(self, amount: int, refund: bool) -> BatchTotals:
        """These totals with one more charged sale (or refund) of `amount` minor units."""
        if refund:
            return replace(self, refunds_count=self.refunds_count + 1,
                           refunds_amount=self.refunds_amount + amount)
        return replace(self, sales_count=self.sales_count + 1,
                       sales_amount=self.sales_amount + amount)
