"""The journal keeps every payment and each state change durably, across reopen."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from journal_support import VISA_TOKEN, walk_to

from firmware.journal import (
    MIGRATIONS,
    SCHEMA_VERSION,
    IllegalTransition,
    Journal,
    JournalCorrupt,
    JournalError,
)
from firmware.money import CURRENCIES, BatchTotals
from firmware.payment import PaymentState


@pytest.fixture()
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "state" / "journal.sqlite", tmp_path / "state" / "journal.key"


def test_payment_and_history_survive_reopen(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    pid = j.new_payment("purchase", 1250, 978, "PITAP001")
    walk_to(j, pid, "card_read", scheme="visa", masked_pan="476173******0010")
    walk_to(j, pid, "awaiting_reply", stan=17)
    walk_to(j, pid, "approved",
        auth_code="A1B2C3",
        response_code="00",
        rrn="123456789012",
        card_in_field_ms=212.5,
    )
    j.close()

    j = Journal.open(*paths)
    p = j.payment(pid)
    assert p.amount == 1250 and p.currency == 978 and p.txn_type == "purchase"
    assert p.state == "approved" and p.outcome == "approved"
    assert p.auth_code == "A1B2C3" and p.stan == 17 and p.scheme == "visa"
    assert [h.state for h in j.history(pid)] == [
        "started",
        "card_read",
        "awaiting_reply",
        "approved",
    ]
    assert j.history(pid)[2].fields["stan"] == 17
    assert [x.id for x in j.payments()] == [pid]
    j.close()


def test_wal_full_sync_and_schema_version(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    j.close()
    conn = sqlite3.connect(paths[0])
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    j = Journal.open(*paths)
    assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    j.close()


def test_files_are_private(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    j.new_payment("purchase", 1, 978, "T")
    for p in (paths[0], paths[1], Path(str(paths[0]) + "-wal")):
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p
    j.close()


def test_unknown_state_or_field_is_refused(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    pid = j.new_payment("purchase", 100, 978, "PITAP001")
    with pytest.raises(ValueError, match="unknown payment state"):
        j.record(pid, "paid")
    with pytest.raises(ValueError, match="unknown journal field"):
        j.record(pid, "approved", pan=VISA_TOKEN)
    with pytest.raises(ValueError, match="must be int"):
        j.record(pid, "awaiting_reply", stan="12")
    with pytest.raises(JournalError, match="no payment"):
        j.record(pid + 1, "approved")
    assert [h.state for h in j.history(pid)] == ["started"]
    assert set(PaymentState) >= {"reversal_queued", "advised", "refunded"}
    j.close()


def test_full_card_number_never_lands_in_a_column(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    pid = j.new_payment("purchase", 100, 978, "PITAP001")
    walk_to(j, pid, "error", masked_pan=VISA_TOKEN, reason=f"card {VISA_TOKEN} refused")
    p = j.payment(pid)
    assert p.masked_pan == "476173******0010"
    assert VISA_TOKEN not in json.dumps(p.as_dict())
    assert VISA_TOKEN not in json.dumps([h.as_dict() for h in j.history(pid)])
    j.close()


def test_stan_is_persistent_and_wraps(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    assert [j.next_stan() for _ in range(3)] == [1, 2, 3]
    j.close()
    j = Journal.open(*paths)
    assert j.next_stan() == 4
    j._conn.execute("UPDATE counters SET value = 999998 WHERE name = 'stan'")
    assert [j.next_stan() for _ in range(3)] == [999999, 1, 2]
    j.close()


def test_a_damaged_file_is_refused_with_a_clear_error(paths: tuple[Path, Path]) -> None:
    paths[0].parent.mkdir(parents=True)
    paths[0].write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalCorrupt, match="not a usable journal"):
        Journal.open(*paths)


def test_a_corrupted_page_fails_the_integrity_check(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    for i in range(200):
        pid = j.new_payment("purchase", i, 978, "PITAP001")
        walk_to(j, pid, "declined", reason="do not honour " * 5)
    j.close()
    data = bytearray(paths[0].read_bytes())
    page = 4096
    # Scribble over the b-tree page headers and cell pointers of pages 2 to 5.
    for n in range(1, 5):
        data[n * page : n * page + 16] = b"\x0d" + b"\xff" * 15
    paths[0].write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        Journal.open(*paths)


def test_a_newer_schema_is_refused(paths: tuple[Path, Path]) -> None:
    Journal.open(*paths).close()
    conn = sqlite3.connect(paths[0])
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="newer than this pitap"):
        Journal.open(*paths)


def test_key_readable_by_others_is_refused(paths: tuple[Path, Path]) -> None:
    Journal.open(*paths).close()
    os.chmod(paths[1], 0o644)
    with pytest.raises(JournalError, match="chmod 600"):
        Journal.open(*paths)


def test_missing_key_is_not_created_in_production(paths: tuple[Path, Path]) -> None:
    with pytest.raises(JournalError, match="provision"):
        Journal.open(*paths, create_key=False)
    assert not paths[1].exists()


def test_settlement_totals_count_only_charged_payments(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    a = j.new_payment("purchase", 1000, 978, "T")
    walk_to(j, a, "approved")
    b = j.new_payment("purchase", 500, 978, "T")
    walk_to(j, b, "declined")
    c = j.new_payment("refund", 300, 978, "T")
    walk_to(j, c, "approved")
    s = j.begin_settlement(CURRENCIES["EUR"])
    assert s.state == "started" and s.batch == 1
    assert s.totals == BatchTotals(1, CURRENCIES["EUR"], sales_count=1, sales_amount=1000,
                                   refunds_count=1, refunds_amount=300)
    d = j.new_payment("purchase", 700, 978, "T")
    assert j.payment(d).batch == 2
    assert [x.id for x in j.unfinished_settlements()] == [s.id]
    j.record_settlement(s.id, "done", "00", "Approved")
    assert j.unfinished_settlements() == []
    assert [(x.batch, x.state) for x in j.settlements()] == [(1, "done")]
    j.close()


def test_a_twelve_digit_rrn_is_kept_as_is(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    pid = j.new_payment("purchase", 100, 978, "PITAP001")
    walk_to(j, pid, "approved", rrn="633112345678", auth_code="004217")
    assert j.payment(pid).rrn == "633112345678"
    j.close()


def test_a_version_1_journal_is_migrated_keeping_its_payments(paths: tuple[Path, Path]) -> None:
    from firmware import journal as journal_module

    paths[0].parent.mkdir(parents=True)
    conn = sqlite3.connect(paths[0])
    conn.executescript(journal_module.MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO payments (created_at, updated_at, txn_type, amount, currency, terminal_id,"
        " batch, state, outcome) VALUES ('t', 't', 'purchase', 999, 978, 'OLD', 1, 'approved',"
        " 'approved')"
    )
    conn.commit()
    conn.close()
    j = Journal.open(*paths)
    assert j.schema_version() == SCHEMA_VERSION
    (old,) = j.payments()
    assert old.amount == 999 and old.refund_of is None
    refund = j.new_payment("refund", 500, 978, "PITAP001", refund_of=old.id)
    assert j.payment(refund).refund_of == old.id
    j.close()


def test_refund_of_an_unknown_payment_is_refused(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    with pytest.raises(ValueError, match="no payment 41"):
        j.new_payment("refund", 500, 978, "PITAP001", refund_of=41)
    pid = j.new_payment("refund", 500, 978, "PITAP001")
    with pytest.raises(ValueError, match="no payment 41"):
        walk_to(j, pid, "approved", refund_of=41)
    with pytest.raises(ValueError, match="no payment 77"):
        j.payment(77)
    j.close()


def test_a_full_disk_is_a_clear_error_and_keeps_what_was_written(
    paths: tuple[Path, Path],
) -> None:
    j = Journal.open(*paths)
    pid = j.new_payment("purchase", 100, 978, "PITAP001")
    walk_to(j, pid, "awaiting_reply", stan=j.next_stan())
    pages = j._conn.execute("PRAGMA page_count").fetchone()[0]
    j._conn.execute(f"PRAGMA max_page_count = {pages}")  # as if the SD card were full
    with pytest.raises(JournalError, match="cannot write the journal: database or disk is full"):
        for _ in range(200):
            j.new_payment("purchase", 1, 978, "x" * 2000)
    j.close()
    j = Journal.open(*paths)
    assert j.payment(pid).stan == 1
    assert j.next_stan() == 2
    j.close()


def test_an_illegal_transition_is_refused_and_nothing_is_written(
    paths: tuple[Path, Path],
) -> None:
    j = Journal.open(*paths)
    pid = j.new_payment("purchase", 100, 978, "PITAP001")
    with pytest.raises(IllegalTransition, match="'started' cannot go to 'approved'"):
        j.record(pid, "approved", auth_code="A1")  # never read a card, never asked the host
    j.record(pid, "card_read")
    j.record(pid, "declined", reason="do not honour")
    for later in ("approved", "awaiting_reply", "reversed", "card_read"):
        with pytest.raises(IllegalTransition, match="'declined' cannot go to"):
            j.record(pid, later)  # a declined payment is final
    assert [h.state for h in j.history(pid)] == ["started", "card_read", "declined"]
    assert j.payment(pid).outcome == "declined" and j.payment(pid).auth_code == ""
    j.close()


def test_the_label_and_aid_are_kept_and_an_old_journal_gains_the_columns(
    paths: tuple[Path, Path],
) -> None:
    paths[0].parent.mkdir(parents=True)
    conn = sqlite3.connect(paths[0])
    for script in MIGRATIONS[:2]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO payments (created_at, updated_at, txn_type, amount, currency, terminal_id,"
        " batch, state, outcome) VALUES ('t', 't', 'purchase', 999, 978, 'OLD', 1, 'approved',"
        " 'approved')"
    )
    conn.commit()
    conn.close()
    j = Journal.open(*paths)
    (old,) = j.payments()
    assert old.application_label == "" and old.aid == ""
    pid = j.new_payment("purchase", 100, 978, "PITAP001")
    j.record(pid, "card_read", scheme="mastercard", application_label="Debit Mastercard",
             aid="A0000000041010")
    j.close()
    j = Journal.open(*paths)
    p = j.payment(pid)
    assert (p.application_label, p.aid) == ("Debit Mastercard", "A0000000041010")
    j.close()


def test_batch_totals_and_refunded_so_far_are_queries_over_the_charged_payments(
    paths: tuple[Path, Path],
) -> None:
    j = Journal.open(*paths)
    expected = {"sales_count": 0, "sales_amount": 0, "refunds_count": 0, "refunds_amount": 0}
    sale = 0
    for i, (kind, amount, end) in enumerate([
        ("purchase", 1000, "approved"), ("purchase", 250, "declined"),
        ("purchase", 700, "approved"), ("refund", 300, "approved"), ("refund", 90, "error"),
        ("purchase", 5000, "reversed"),
    ]):
        pid = j.new_payment(kind, amount, 978 if i != 2 else 840, "T",
                            refund_of=sale if kind == "refund" else None)
        sale = sale or pid
        walk_to(j, pid, "awaiting_reply", stan=i + 1)
        if end == "reversed":
            walk_to(j, pid, "approved")
            j.forget_card_data(pid)
            j._conn.execute("INSERT INTO history (payment_id, at, state) VALUES (?, 't',"
                            " 'reversed')", (pid,))  # a charge the host took back
        else:
            walk_to(j, pid, end)
        if end == "approved" and i != 2:
            key = "sales" if kind == "purchase" else "refunds"
            expected[f"{key}_count"] += 1
            expected[f"{key}_amount"] += amount
    totals = j.batch_totals(1, CURRENCIES["EUR"])
    assert totals.counts() == expected
    assert j.begin_settlement(CURRENCIES["EUR"]).totals == totals
    assert j.refunded_amount(sale) == 300  # the refund that failed does not count
    assert j.other_currencies(1, CURRENCIES["EUR"]) == {840: [1, 700]}
    j.close()
