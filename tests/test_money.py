"""Money in one shape: a Currency carries ISO 4217 alpha, numeric and exponent, looked up once;
one formatter reads an amount in the screen's, the paper's or the operator's style."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from firmware.money import CURRENCIES, Currency, Money, UnknownCurrency, currency
from ui.lang import load
from ui.money import Style, format_money, operator_text

ROOT = Path(__file__).resolve().parents[1]


def test_a_currency_is_found_by_its_code_or_its_number_and_is_the_same() -> None:
    assert currency("eur") is currency(978) is CURRENCIES["EUR"]
    assert currency(392) == Currency("JPY", 392, 0)
    assert currency("KWD").exponent == 3


@pytest.mark.parametrize("code", ["XYZ", "", 999, 0])
def test_an_unknown_currency_is_refused(code: str | int) -> None:
    with pytest.raises(UnknownCurrency):
        currency(code)


def test_money_adds_only_in_one_currency() -> None:
    eur = Money.of(1250, "EUR")
    assert eur - Money.of(250, 978) == Money.of(1000, "EUR")
    assert -eur == Money(-1250, CURRENCIES["EUR"])
    with pytest.raises(ValueError, match="EUR and USD"):
        _ = eur + Money.of(1, "USD")


@pytest.mark.parametrize(
    ("money", "lang", "style", "text"),
    [
        (Money.of(123456, "EUR"), "en", Style.SCREEN, "€1,234.56"),
        (Money.of(123456, "EUR"), "it", Style.SCREEN, "1.234,56 €"),
        (Money.of(123456, "EUR"), "en", Style.PAPER, "EUR 1,234.56"),
        (Money.of(123456, "EUR"), "it", Style.PAPER, "EUR 1.234,56"),
        (Money.of(1200, "JPY"), "en", Style.PAPER, "JPY 1,200"),
        (Money.of(123456, "EUR"), "it", Style.OPERATOR, "1234.56 EUR"),
        (Money.of(-1250, "EUR"), "en", Style.OPERATOR, "-12.50 EUR"),
        (Money.of(1250, "JPY"), "en", Style.OPERATOR, "1250 JPY"),
        (Money.of(1005, "KWD"), "en", Style.OPERATOR, "1.005 KWD"),
        (Money.of(5, "USD"), "en", Style.OPERATOR, "0.05 USD"),
    ],
)
def test_one_formatter_three_styles(money: Money, lang: str, style: Style, text: str) -> None:
    assert format_money(money, load(lang), style) == text


def test_operator_text_needs_no_language() -> None:
    assert operator_text(Money.of(999_999_999_999, "EUR")) == "9999999999.99 EUR"


CONVERTERS = {"currency_alpha", "currency_numeric", "currency_exponent", "format_amount",
              "money_text"}


def test_no_layer_converts_currency_codes_or_formats_amounts_of_its_own() -> None:
    """The old per-layer converters (alpha <-> numeric, three formatters) are gone for good."""
    found = []
    for path in [*ROOT.glob("firmware/**/*.py"), *ROOT.glob("ui/**/*.py"),
                 *ROOT.glob("simulators/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = (node.id if isinstance(node, ast.Name) else node.attr
                    if isinstance(node, ast.Attribute) else node.name
                    if isinstance(node, ast.FunctionDef) else None)
            if name in CONVERTERS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert found == []


def test_batch_totals_are_one_type_from_the_journal_to_the_wire_and_the_screen() -> None:
    from firmware.host.messages import parse_totals, totals_text
    from firmware.money import BatchTotals

    eur = CURRENCIES["EUR"]
    counts = {"batch_number": 7, "sales_count": 2, "sales_amount": 1777, "refunds_count": 1,
              "refunds_amount": 450}
    totals = BatchTotals.from_counts(7, eur, counts)  # the journal's row: extra keys ignored
    assert totals.counts() == {k: v for k, v in counts.items() if k != "batch_number"}
    assert (totals.sales, totals.refunds, totals.net) == (
        Money(1777, eur), Money(450, eur), Money(1327, eur))
    assert parse_totals(totals_text(totals), eur, 7) == totals
    assert BatchTotals(7, eur).plus(500, refund=False).plus(200, refund=True) == BatchTotals(
        7, eur, 1, 500, 1, 200)


@pytest.mark.parametrize("bad", [{}, {"sales_count": -1}, {"sales_count": "2"},
                                 {"sales_count": True}])
def test_batch_totals_refuse_figures_that_are_not_counts(bad: dict) -> None:
    from firmware.money import BatchTotals

    counts = {"sales_count": 0, "sales_amount": 0, "refunds_count": 0, "refunds_amount": 0}
    with pytest.raises(ValueError, match="batch totals"):
        BatchTotals.from_counts(1, CURRENCIES["EUR"], {**counts, **bad} if bad else {})
