"""The parts of a void on their own: the journal's states and migration, the 0400 it sends, the
dialect's reason code."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from journal_support import auth_request, walk_to

from firmware.config import ConfigError, shipped_config_dir
from firmware.host import messages
from firmware.host.dialect import load_dialect, parse_dialect
from firmware.journal import MIGRATIONS, IllegalTransition, Journal
from firmware.money import currency
from firmware.payment import PaymentState, QueueKind, is_legal


def test_a_version_3_journal_keeps_its_queue_and_takes_voids(tmp_path: Path) -> None:
    db, key = tmp_path / "journal.sqlite", tmp_path / "journal.key"
    conn = sqlite3.connect(db)
    for script in MIGRATIONS[:3]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 3")
    conn.execute(
        "INSERT INTO payments (created_at, updated_at, txn_type, amount, currency, terminal_id,"
        " batch, state, outcome, stan) VALUES ('t', 't', 'purchase', 999, 978, 'OLD', 1,"
        " 'reversal_queued', 'error', 7)")
    conn.execute("INSERT INTO queue (kind, payment_id, created_at, attempts) VALUES"
                 " ('reversal', 1, 't', 2)")
    conn.commit()
    conn.close()
    with Journal.open(db, key) as j:
        (item,) = j.queue()
        assert (item.kind, item.payment_id, item.attempts) == (QueueKind.REVERSAL, 1, 2)
        pid = j.new_payment("purchase", 100, 978, "PITAP001")
        walk_to(j, pid, "awaiting_reply", stan=j.next_stan())
        j.record(pid, "approved", auth_code="123456")
        j.enqueue(QueueKind.VOID, pid)
        assert j.payment(pid).state is PaymentState.VOID_QUEUED
        assert j.enqueue(QueueKind.VOID, pid) == j.queue(QueueKind.VOID)[0].id  # never two
        j.queue_done(j.queue(QueueKind.VOID)[0].id)
        assert j.payment(pid).state is PaymentState.VOIDED
        assert j.batch_totals(1, currency(978)).sales_count == 0  # a voided payment: in no total
        assert j.charged_payments(1) == [] and not j.payment(pid).charged
        assert j.outcome_counts(1) == {"error": 1, "voided": 1}


def test_an_unsent_advice_is_dropped_with_the_void_in_one_step(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite", tmp_path / "j.key") as j:
        pid = j.new_payment("purchase", 500, 978, "PITAP001")
        j.record(pid, "card_read")
        j.keep_card_data(pid, auth_request(stan=j.next_stan(), amount=500, offline_approved=True))
        j.record(pid, "approved", offline=True, auth_code="Y1")
        j.enqueue(QueueKind.ADVICE, pid)
        assert j.drop_advice(pid, "voided")
        assert j.payment(pid).state is PaymentState.VOIDED and j.queue() == []
        assert j.card_data(pid) is None
        assert not j.drop_advice(pid, "voided")  # nothing pending any more: nothing written
        with pytest.raises(IllegalTransition):
            j.record(pid, "refunded")


def test_only_a_standing_approval_can_be_voided() -> None:
    S = PaymentState
    for state in (S.APPROVED, S.ADVISED):
        assert is_legal(state, S.VOID_QUEUED)
    assert is_legal(S.ADVICE_QUEUED, S.VOIDED) and is_legal(S.VOID_QUEUED, S.VOIDED)
    for state in (S.DECLINED, S.REFUNDED, S.REVERSED, S.ERROR, S.VOIDED, S.AWAITING_REPLY):
        assert not is_legal(state, S.VOID_QUEUED) and not is_legal(state, S.VOIDED)


@pytest.mark.parametrize("name", ["pitap-default", "bcd-tpdu", "ascii4-binary"])
def test_the_void_reversal_names_its_reason_and_original_in_every_dialect(name: str) -> None:
    dialect = load_dialect(name, shipped_config_dir())
    req = auth_request(stan=42, amount=400, offline_approved=True, pan="")
    doc = messages.reversal(req, dialect, "0220", reason_code=dialect.void_reason)
    back = dialect.decode(dialect.encode(doc))
    assert (back["t"], back["11"], back["4"]) == ("0400", "000042", "000000000400")
    assert back["25"] == "17" and back["90"].startswith("0220000042")
    timeout = dialect.decode(dialect.encode(messages.reversal(req, dialect, "0100")))
    assert timeout["25"] == "00" and timeout["90"].startswith("0100")


@pytest.mark.parametrize("bad", ["7", "ab", 17, "170"])
def test_a_bad_void_reason_is_a_configuration_error(tmp_path: Path, bad: object) -> None:
    data = {"fields": {"t": {"data_enc": "ascii", "max_len": 4},
                       "p": {"data_enc": "ascii", "max_len": 16}}, "void_reason": bad}
    with pytest.raises(ConfigError, match="void_reason"):
        parse_dialect(data, tmp_path / "d.toml")


def test_a_partial_purchase_is_unfinished_until_its_parts_add_up(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite", tmp_path / "j.key") as j:
        def part(asked: int, charged: int, code: str, part_of: int | None = None) -> int:
            pid = j.new_payment("purchase", asked, 978, "PITAP001", part_of=part_of)
            walk_to(j, pid, "awaiting_reply", stan=j.next_stan())
            j.record(pid, "approved", amount=charged, response_code=code, auth_code="123456")
            return pid

        paid = part(3110, 1555, "10")
        part(1555, 1555, "00", part_of=paid)
        cut = part(3110, 1555, "10")
        rest = j.new_payment("purchase", 1555, 978, "PITAP001", part_of=cut)
        walk_to(j, rest, "error")
        mine = part(3110, 1555, "10")
        voided = part(1555, 1555, "00", part_of=mine)
        j.enqueue(QueueKind.VOID, voided)  # the shopkeeper voided the second part
        assert [(first.id, parts) for first, parts in j.unfinished_partials()] == [(cut, [])]
        assert j.payment(rest).part_of == cut and j.history(rest)[0].get("part_of") == cut
