"""The one month-granular expiry rule: a card or certificate is good through its whole month."""

from __future__ import annotations

import datetime as dt

import pytest

from firmware.emv.dates import month_passed, yymm_passed, yymmdd
from firmware.offline import expired

ON = dt.date(2026, 12, 2)


@pytest.mark.parametrize(("yymm", "passed"), [
    ("2611", True),   # November 2026 ended before 2 December 2026
    ("2612", False),  # good through the end of its month
    ("2701", False),
    ("9912", False),
    ("0001", True),
])
def test_yymm_is_good_through_its_month(yymm: str, passed: bool) -> None:
    assert yymm_passed(yymm, ON) is passed


@pytest.mark.parametrize("bad", ["", "261", "26123", "26AB", "2600", "2613"])
def test_an_unreadable_yymm_is_no_date(bad: str) -> None:
    assert yymm_passed(bad, ON) is None


def test_offline_acceptance_counts_an_unreadable_expiry_as_expired() -> None:
    when = dt.datetime(2026, 12, 2, 12, 0)
    assert expired("2613", when)
    assert expired("2611", when)
    assert not expired("2612", when)


def test_month_passed_and_yymmdd() -> None:
    assert month_passed(26, 13, ON) is None
    assert yymmdd(bytes.fromhex("261231")) == dt.date(2026, 12, 31)
    assert yymmdd(bytes.fromhex("261232")) is None
    assert yymmdd(bytes.fromhex("2612")) is None
