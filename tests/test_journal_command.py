"""`pitap journal [--json]`: lists payments, with --json their history, never clear card data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from journal_support import VISA_TOKEN, auth_request, walk_to

from firmware.cli import main
from firmware.journal import Journal


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    cfg = tmp_path / "terminal.toml"
    cfg.write_text(f'[terminal]\nstate_dir = "{tmp_path / "state"}"\n')
    return cfg


def test_empty_journal(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = config.parent / "state"
    Journal.open(state / "journal.sqlite", state / "journal.key").close()
    assert main(["journal", "--config", str(config)]) == 0
    assert "no payments yet" in capsys.readouterr().out


@pytest.mark.parametrize("option", [[], ["--json"], ["--queue"], ["--check"]])
def test_no_journal_is_one_line_exit_2_and_none_is_made(
        config: Path, capsys: pytest.CaptureFixture[str], option: list[str]) -> None:
    assert main(["journal", *option, "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert "no journal at" in line and str(config.parent / "state" / "journal.sqlite") in line
    assert not (config.parent / "state").exists()


def test_lists_payments_and_history(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = config.parent / "state"
    j = Journal.open(state / "journal.sqlite", state / "journal.key")
    pid = j.new_payment("purchase", 1250, 978, "PITAP001")
    j.keep_card_data(pid, auth_request())
    walk_to(j, pid, "card_read", scheme="visa", masked_pan=VISA_TOKEN)
    walk_to(j, pid, "awaiting_reply", stan=7)
    j.enqueue("reversal", pid)
    j.close()

    assert main(["journal", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "12.50 EUR" in out and "476173******0010" in out and "1 reversal" in out

    assert main(["journal", "--json", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    (line,) = out.splitlines()
    rec = json.loads(line)
    assert rec["id"] == pid and rec["amount"] == 1250 and rec["stan"] == 7
    assert [h["state"] for h in rec["history"]] == [
        "started",
        "card_read",
        "awaiting_reply",
        "reversal_queued",
    ]
    assert VISA_TOKEN not in out


def test_bad_config_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["journal", "--config", str(tmp_path / "missing.toml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_queue_and_check(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = config.parent / "state"
    j = Journal.open(state / "journal.sqlite", state / "journal.key")
    pid = j.new_payment("purchase", 1250, 978, "PITAP001")
    j.keep_card_data(pid, auth_request())
    walk_to(j, pid, "awaiting_reply", stan=1)
    item = j.enqueue("reversal", pid)
    j.queue_retry_later(item, "connection refused")
    j.close()
    assert main(["journal", "--queue", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"payment #{pid}" in out and "connection refused" in out and "attempts=1" in out

    config.chmod(0o600)
    state.chmod(0o700)
    assert main(["journal", "--check", "--json", "--config", str(config)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["integrity"] == "ok" and report["queued"] == 1 and report["not_private"] == []
    config.chmod(0o644)
    assert main(["journal", "--check", "--config", str(config)]) == 1
    assert "chmod 600" in capsys.readouterr().out


def test_damaged_journal_is_one_line_exit_2(config: Path, capsys) -> None:
    state = config.parent / "state"
    state.mkdir()
    (state / "journal.sqlite").write_bytes(b"garbage" * 1000)
    assert main(["journal", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a usable journal" in err


def test_last_n(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = config.parent / "state"
    j = Journal.open(state / "journal.sqlite", state / "journal.key")
    ids = [j.new_payment("purchase", 100 * n, 978, "PITAP001") for n in range(1, 6)]
    assert [p.id for p in j.payments(last=2)] == ids[-2:]
    assert [p.id for p in j.payments()] == ids
    j.close()
    assert main(["journal", "--last", "3", "--json", "--config", str(config)]) == 0
    assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == ids[-3:]


def test_pay_with_a_damaged_journal_is_one_line_exit_2(config: Path, capsys) -> None:
    state = config.parent / "state"
    state.mkdir()
    (state / "journal.sqlite").write_bytes(b"garbage" * 1000)
    assert main(["pay", "1.00", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a usable journal" in err
