"""The `pitap` command as a user meets it: one-line errors, exit codes, the demo's output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from run_support import run_pitap


@pytest.mark.parametrize(
    ("toml", "key"),
    [("[host]\nprot = 8583\n", "host.prot"), ("[reader]\npath = 5\n", "reader.path"),
     ("[terminal]\ncurrency = 'ABC'\n", "terminal.currency")],
)
def test_config_typo_is_one_line_and_exit_2(tmp_path: Path, toml: str, key: str) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text(toml)
    run = run_pitap("pay", "1.00", "--config", str(cfg))
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert key in lines[0] and str(cfg) in lines[0]
    assert "Traceback" not in run.stderr


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    run = run_pitap("pay", "1.00", "--config", str(tmp_path / "missing.toml"))
    assert run.returncode == 2
    assert "not found" in run.stderr and len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("amount", ["abc", "-1", "1.005"])
def test_bad_amount_is_a_usage_error(amount: str) -> None:
    run = run_pitap("pay", amount)
    assert run.returncode == 2
    assert "amount" in run.stderr and "Traceback" not in run.stderr


def test_demo_json_takes_the_scripted_payments(tmp_path: Path) -> None:
    screens = tmp_path / "screens"
    run = run_pitap("demo", "--json", "--screens", str(screens), "--state", str(tmp_path / "state"),
                    cwd=tmp_path)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    payments, summary = lines[:-1], lines[-1]["summary"]
    assert run.returncode == 0, run.stdout + run.stderr
    for p in payments:
        assert {"id", "amount", "currency", "scheme", "outcome", "reason", "auth_code",
                "card_in_field_ms", "total_ms"} <= p.keys()
        assert p["outcome"] == p["expected"], p
    outcomes = {p["outcome"] for p in payments}
    assert {"approved", "declined", "no_card"} <= outcomes
    assert {p["scheme"] for p in payments if p["outcome"] == "approved"} >= {"visa", "mastercard"}
    assert summary["payments"] == summary["as_scripted"] == len(payments)
    assert len(list(screens.glob("*.png"))) >= len(payments)


def test_verbose_logs_the_payment_and_never_a_full_token(tmp_path: Path) -> None:
    run = run_pitap("-vv", "demo", "--payments", "2", "--screens", str(tmp_path / "s"),
                    "--state", str(tmp_path / "state"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "DEBUG firmware." in run.stderr or "INFO firmware." in run.stderr
    assert not re.search(r"(476173|541333|608326)\d{10}", run.stdout + run.stderr)


def test_settle_json_with_the_host_down_is_still_json(tmp_path: Path, unused_tcp_port: int) -> None:
    from firmware.journal import Journal

    Journal.open(tmp_path / "state" / "journal.sqlite", tmp_path / "state" / "journal.key").close()
    site = tmp_path / "site.toml"
    site.write_text(f"[terminal]\nstate_dir = '{tmp_path / 'state'}'\n"
                    f"[host]\nport = {unused_tcp_port}\nconnect_timeout_s = 1.0\n")
    run = run_pitap("settle", "--json", "--config", str(site), cwd=tmp_path)
    assert run.returncode == 1
    assert json.loads(run.stdout)["closed"] is False
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "args",
    [("demo", "--payments", "-1"), ("journal", "--last", "-3"), ("run", "--max-payments", "-1"),
     ("run", "--hold", "-2")],
)
def test_negative_counts_are_usage_errors(args: tuple[str, ...]) -> None:
    run = run_pitap(*args)
    assert run.returncode == 2
    assert "negative" in run.stderr and "Traceback" not in run.stderr
