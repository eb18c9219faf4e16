"""`pitap pay` / `pitap refund` amounts and currencies: anything but plain digits with the
currency's decimals, more than 9F02's 12 digits or more than any application's contactless limit
is one line and exit 2 before anything opens (no journal, no tap awaited)."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_support import run_pitap

from firmware.cli import main
from firmware.commands import UsageError, parse_amount
from firmware.commands.pay import check_contactless_limit
from firmware.config import load_config
from firmware.money import CURRENCIES


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site file whose state would go to tmp_path/state: its absence proves nothing opened."""
    path = tmp_path / "site.toml"
    path.write_text(f"[terminal]\nstate_dir = '{tmp_path / 'state'}'\n")
    return path


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("12.50", "EUR", 1250), ("12.5", "EUR", 1250), ("7", "EUR", 700), ("0001.00", "EUR", 100),
     ("1250", "JPY", 1250), ("1.005", "KWD", 1005), ("9999999999.99", "EUR", 999_999_999_999),
     ("999999999999", "JPY", 999_999_999_999)],
)
def test_plain_amounts_in_minor_units(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, CURRENCIES[currency]) == minor


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["pay", "inf"], "digits with an optional decimal point"),
        (["pay", "nan"], "digits with an optional decimal point"),
        (["pay", "Infinity"], "digits with an optional decimal point"),
        (["pay", "sNaN"], "digits with an optional decimal point"),
        (["pay", "1e9"], "digits with an optional decimal point"),
        (["pay", "1e-2"], "digits with an optional decimal point"),
        (["pay", "-1"], "digits with an optional decimal point"),
        (["pay", "12,50"], "digits with an optional decimal point"),
        (["pay", "\u0661\u0662"], "digits with an optional decimal point"),  # Arabic-Indic 12
        (["pay", "0.00"], "more than zero"),
        (["pay", "1.005"], "at most 2 decimals in EUR"),
        (["pay", "99999999999"], "at most 9999999999.99 EUR (12 digits"),
        (["pay", "9" * 5000], "at most 9999999999.99 EUR (12 digits"),
        (["pay", "50000.01"], "over the contactless limit of every application (50000.00 EUR"),
        (["pay", "5000.01", "--currency", "INR"], "contactless limit of every application (5000"),
        (["pay", "12.50", "--currency", "JPY"], "JPY has no decimals"),
        (["pay", "1.00", "--currency", "XYZ"], "--currency 'XYZ': unknown currency"),
        (["refund", "1e9"], "digits with an optional decimal point"),
        (["refund", "99999999999"], "12 digits of minor units"),
        (["refund", "1.00", "--currency", "xyz"], "--currency 'xyz': unknown currency"),
    ],
)
def test_bad_amount_is_one_line_before_anything_opens(
        site: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str) -> None:
    assert main([*args, "--config", str(site)]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(f"pitap {args[0]}: ") and fragment in line, line
    assert len(line) < 200
    assert captured.out == ""
    assert not (site.parent / "state").exists()  # no journal, no reader: nothing was opened


def test_the_real_command_says_it_in_one_line() -> None:
    run = run_pitap("pay", "inf")
    assert run.returncode == 2
    assert run.stderr.strip() == ("pitap pay: amount 'inf': digits with an optional decimal "
                                  "point, e.g. 12.50")


def test_up_to_the_highest_contactless_limit_goes_to_the_tap() -> None:
    cfg = load_config()  # shipped AID table: Visa and Mastercard 50000.00 EUR, 5000.00 INR
    check_contactless_limit(cfg, 5_000_000, CURRENCIES["EUR"])
    check_contactless_limit(cfg, 500_000, CURRENCIES["INR"])
    with pytest.raises(UsageError, match="contactless limit"):
        check_contactless_limit(cfg, 5_000_001, CURRENCIES["EUR"])


def test_a_site_aid_table_raises_the_limit(tmp_path: Path) -> None:
    shipped = load_config().data_path("aids.toml").read_text()
    (tmp_path / "aids.toml").write_text(shipped.replace("contactless_txn_limit = 5000000",
                                                        "contactless_txn_limit = 9000000", 1))
    (tmp_path / "site.toml").write_text("")
    check_contactless_limit(load_config(tmp_path / "site.toml"), 9_000_000, CURRENCIES["EUR"])
