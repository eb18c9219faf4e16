"""Recovery at start: unknown outcomes reversed, offline approvals advised, settlement resumed."""

from __future__ import annotations

from pathlib import Path

import pytest
from journal_support import auth_request, walk_to

from firmware.journal import Journal
from firmware.money import CURRENCIES
from firmware.recovery import recover


@pytest.fixture()
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "journal.sqlite", tmp_path / "journal.key"


def _sent(j: Journal, amount: int) -> int:
    """A payment whose 0100 left, then the power went."""
    pid = j.new_payment("purchase", amount, 978, "PITAP001")
    walk_to(j, pid, "card_read", scheme="visa", masked_pan="476173******0010")
    j.keep_card_data(pid, auth_request(amount=amount))
    walk_to(j, pid, "awaiting_reply", stan=j.next_stan())
    return pid


def test_after_a_power_cut(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    waiting = _sent(j, 1000)
    reading = j.new_payment("purchase", 200, 978, "PITAP001")
    walk_to(j, reading, "card_read")
    offline = j.new_payment("purchase", 300, 978, "PITAP001")
    j.keep_card_data(offline, auth_request(amount=300, offline_approved=True))
    walk_to(j, offline, "approved", offline=True)
    done = _sent(j, 400)
    walk_to(j, done, "approved", auth_code="123456")
    j._conn.close()  # no clean close: as after SIGKILL

    j = Journal.open(*paths)
    report = recover(j)
    assert report.reversals_queued == [waiting]
    assert report.interrupted == [reading]
    assert report.advices_queued == [offline]
    assert [(q.kind, q.payment_id) for q in j.queue()] == [
        ("reversal", waiting),
        ("advice", offline),
    ]
    assert j.payment(waiting).outcome == "error"
    assert j.card_data(waiting) is not None  # the reversal needs it
    assert j.payment(reading).outcome == "error"
    assert j.payment(done).state == "approved"

    again = recover(j)  # a second start finds nothing new
    assert not again.reversals_queued and not again.advices_queued and not again.interrupted
    assert len(j.queue()) == 2
    j.close()


def test_a_reversal_queued_before_the_cut_is_not_doubled(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    pid = _sent(j, 500)
    j.enqueue("reversal", pid)
    j._conn.close()
    j = Journal.open(*paths)
    recover(j)
    assert [(q.kind, q.payment_id) for q in j.queue()] == [("reversal", pid)]
    assert j.payment(pid).outcome == "error"
    j.close()


def test_killed_after_the_card_data_was_forgotten_still_reverses(paths) -> None:
    """The soak's finding: 0110 in, card data deleted, power cut before "approved" was
    recorded. The host charged; the journal must reverse from the payment row."""
    j = Journal.open(*paths)
    pid = _sent(j, 2100)
    j.forget_card_data(pid)
    j._conn.close()
    j = Journal.open(*paths)
    report = recover(j)
    assert report.reversals_queued == [pid] and not report.problems
    assert [(q.kind, q.payment_id) for q in j.queue()] == [("reversal", pid)]
    j.close()


def test_awaiting_reply_without_a_stan_is_reported(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    pid = j.new_payment("purchase", 500, 978, "PITAP001")
    walk_to(j, pid, "awaiting_reply")
    report = recover(j)
    assert report.problems and str(pid) in report.problems[0]
    assert j.payment(pid).outcome == "error"
    j.close()


def test_half_finished_settlement_is_reported(paths: tuple[Path, Path]) -> None:
    j = Journal.open(*paths)
    a = j.new_payment("purchase", 1500, 978, "PITAP001")
    walk_to(j, a, "approved")
    s = j.begin_settlement(CURRENCIES["EUR"])
    j.record_settlement(s.id, "sent")
    j._conn.close()
    j = Journal.open(*paths)
    assert recover(j).settlements_to_resume == [s.id]
    (again,) = j.unfinished_settlements()
    assert again.batch == s.batch and again.totals.sales_amount == 1500
    j.close()


def test_open_journal_at_start_recovers(tmp_path: Path) -> None:
    from firmware.config import load_config
    from firmware.recovery import open_journal_at_start

    cfg_file = tmp_path / "terminal.toml"
    cfg_file.write_text(f'[terminal]\nstate_dir = "{tmp_path / "state"}"\n')
    cfg = load_config(cfg_file)
    j, report = open_journal_at_start(cfg)
    pid = _sent(j, 700)
    j._conn.close()
    j, report = open_journal_at_start(cfg)
    assert report.reversals_queued == [pid]
    assert "1 reversal(s) queued" in report.summary()
    j.close()
