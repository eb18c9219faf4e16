"""[offline] in the configuration: off by default, every limit checked at load with one line
naming the key, and in production mode no limit left to a default (the merchant carries the
risk). Also the journal migration that makes room for stored payments keeps what was queued."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from run_support import run_pitap

from firmware.config import ConfigError, load_config, parse_config
from firmware.journal import SCHEMA_VERSION, Journal
from firmware.journal.store import MIGRATIONS
from firmware.payment import QueueKind

EXPLICIT = ("[offline]\nenabled = true\nmax_amount = 3000\nmax_total = 20000\nmax_count = 10\n"
            "max_same_card = 1\nmax_age_h = 12\nschemes = ['visa']\n")


def test_off_by_default() -> None:
    assert load_config().offline.enabled is False


def test_explicit_limits_load() -> None:
    off = parse_config(EXPLICIT, Path("site.toml")).offline
    assert (off.enabled, off.max_amount, off.max_total, off.max_count) == (True, 3000, 20000, 10)
    assert (off.max_same_card, off.max_age_h, off.schemes) == (1, 12.0, ["visa"])


@pytest.mark.parametrize(("text", "fragment"), [
    ("[offline]\nmax_amount = 0\n", "'offline.max_amount' must be 1..999999999999"),
    ("[offline]\nmax_total = -5\n", "'offline.max_total' must be"),
    ("[offline]\nmax_count = 0\n", "'offline.max_count' must be 1..10000"),
    ("[offline]\nmax_age_h = 1000\n", "'offline.max_age_h' must be 0.1..720"),
    ("[offline]\nmax_same_card = 'two'\n", "'offline.max_same_card' must be int"),
    ("[offline]\nschemes = ['amex']\n", "offline.schemes: 'amex' is not one of"),
    ("[offline]\nmax_amount = 9000\nmax_total = 8000\n", "offline.max_amount: must not exceed"),
    ("[offline]\nenable = true\n", "unknown key 'offline.enable'"),
])
def test_a_bad_limit_is_one_line_naming_the_key(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("/etc/pitap/site.toml"))
    assert fragment in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("missing", ["max_amount", "max_total", "max_count", "max_same_card",
                                     "max_age_h", "schemes"])
def test_production_needs_every_limit_given(missing: str) -> None:
    text = "\n".join(line for line in EXPLICIT.splitlines() if not line.startswith(missing))
    with pytest.raises(ConfigError, match=f"'offline.{missing}' must be given explicitly"):
        parse_config('mode = "production"\n' + text, Path("site.toml"))
    parse_config(text, Path("site.toml"))  # test mode: the defaults do
    parse_config('mode = "production"\n[offline]\nenabled = false\n', Path("site.toml"))


def test_pitap_says_it_in_one_line_with_exit_2(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[offline]\nenabled = true\nmax_amount = 0\n", encoding="utf-8")
    run = run_pitap("journal", "--config", str(site))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "offline.max_amount" in run.stderr


def test_the_migration_keeps_queued_items_and_adds_the_stored_kind(tmp_path: Path) -> None:
    path, key = tmp_path / "journal.sqlite", tmp_path / "journal.key"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:  # a journal as the previous pitap left it (schema v3)
        conn.executescript(script)
    conn.execute("INSERT INTO payments (created_at, updated_at, txn_type, amount, currency,"
                 " terminal_id, batch, state, stan) VALUES ('2026-12-01T10:00:00.000+00:00',"
                 " '2026-12-01T10:00:00.000+00:00', 'purchase', 990, 978, 'PITAP001', 1,"
                 " 'reversal_queued', 7)")
    conn.execute("INSERT INTO queue (kind, payment_id, created_at, attempts)"
                 " VALUES ('reversal', 1, '2026-12-01T10:00:01.000+00:00', 2)")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    with Journal.open(path, key) as j:
        assert j.schema_version() == SCHEMA_VERSION
        (item,) = j.queue()
        assert (item.kind, item.payment_id, item.attempts) == (QueueKind.REVERSAL, 1, 2)
        assert j.stored_totals(978).run == 0
        pid = j.new_payment("purchase", 500, 978, "PITAP001")
        j.record(pid, "card_read")
        j.record(pid, "awaiting_reply", stan=8)
        j.store_for_forwarding(pid, "stored")
        assert [q.kind for q in j.queue()] == [QueueKind.REVERSAL, QueueKind.DEFERRED]
        assert (j.stored_totals(978).count, j.stored_totals(978).run) == (1, 1)
