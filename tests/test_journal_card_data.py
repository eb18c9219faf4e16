"""Card data at rest: encrypted, bound to its payment, kept only while something needs it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from journal_support import VISA_TOKEN, auth_request, walk_to

from firmware.host.acquirer import AuthRequest
from firmware.journal import Journal, JournalError


@pytest.fixture()
def journal(tmp_path: Path):
    j = Journal.open(tmp_path / "journal.sqlite", tmp_path / "journal.key")
    yield j
    j.close()


def test_card_data_round_trips_every_field(journal: Journal) -> None:
    pid = journal.new_payment("purchase", 1250, 978, "PITAP001")
    req = auth_request(stan=42, auth_code="A1B2C3", offline_approved=True)
    journal.keep_card_data(pid, req)
    assert AuthRequest.from_bytes(journal.card_data(pid) or b"") == req
    assert journal.payment(pid).card_data_kept is True


def test_serialization_is_json_with_hex_bytes() -> None:
    req = auth_request()
    raw = bytes(req)
    assert req.track2.hex().encode() in raw
    assert AuthRequest.from_bytes(raw) == req
    assert {f.name for f in dataclasses.fields(req)} <= set(__import__("json").loads(raw))


def test_no_card_data_is_none(journal: Journal) -> None:
    pid = journal.new_payment("purchase", 1, 978, "PITAP001")
    assert journal.card_data(pid) is None


def test_clear_token_is_not_in_the_file(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "j.sqlite", tmp_path / "j.key")
    pid = j.new_payment("purchase", 1250, 978, "PITAP001")
    j.keep_card_data(pid, auth_request())
    # Data is still in the WAL here (no checkpoint yet): look there and in the main file.
    blobs = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert VISA_TOKEN.encode() not in blobs
    assert bytes.fromhex(VISA_TOKEN) not in blobs
    assert VISA_TOKEN.encode().hex().encode() not in blobs
    j.close()


def test_data_moved_to_another_payment_does_not_decrypt(journal: Journal) -> None:
    a = journal.new_payment("purchase", 1, 978, "PITAP001")
    b = journal.new_payment("purchase", 2, 978, "PITAP001")
    journal.keep_card_data(a, auth_request())
    journal._conn.execute("UPDATE card_data SET payment_id = ? WHERE payment_id = ?", (b, a))
    with pytest.raises(JournalError, match="does not decrypt"):
        journal.card_data(b)


def test_another_terminals_key_cannot_read_it(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "j.sqlite", tmp_path / "j.key")
    pid = j.new_payment("purchase", 1, 978, "PITAP001")
    j.keep_card_data(pid, auth_request())
    j.close()
    (tmp_path / "j.key").unlink()
    j = Journal.open(tmp_path / "j.sqlite", tmp_path / "j.key")  # a fresh key (test mode)
    with pytest.raises(JournalError, match="does not decrypt"):
        j.card_data(pid)
    j.close()


@pytest.mark.parametrize("final", ["declined", "no_card", "try_again", "error"])
def test_forgotten_when_the_payment_ends(journal: Journal, final: str) -> None:
    pid = journal.new_payment("purchase", 1, 978, "PITAP001")
    journal.keep_card_data(pid, auth_request())
    walk_to(journal, pid, final)
    assert journal.card_data(pid) is None


def test_online_approval_forgets_offline_approval_keeps_for_the_advice(journal: Journal) -> None:
    online = journal.new_payment("purchase", 1, 978, "PITAP001")
    journal.keep_card_data(online, auth_request())
    walk_to(journal, online, "approved", auth_code="123456")
    assert journal.card_data(online) is None

    offline = journal.new_payment("purchase", 2, 978, "PITAP001")
    journal.keep_card_data(offline, auth_request(offline_approved=True))
    walk_to(journal, offline, "approved", offline=True)
    assert journal.card_data(offline) is not None
    item = journal.enqueue("advice", offline)
    journal.queue_done(item)
    assert journal.card_data(offline) is None
    assert journal.payment(offline).state == "advised"


def test_kept_while_a_reversal_waits(journal: Journal) -> None:
    pid = journal.new_payment("purchase", 1, 978, "PITAP001")
    journal.keep_card_data(pid, auth_request())
    walk_to(journal, pid, "awaiting_reply", stan=1)
    item = journal.enqueue("reversal", pid)
    walk_to(journal, pid, "error", reason="no reply from the host")
    assert journal.card_data(pid) is not None  # the reversal still needs it
    journal.queue_done(item)
    assert journal.card_data(pid) is None


def test_forget_explicitly(journal: Journal) -> None:
    pid = journal.new_payment("purchase", 1, 978, "PITAP001")
    journal.keep_card_data(pid, auth_request())
    journal.forget_card_data(pid)
    assert journal.card_data(pid) is None
    assert journal.payment(pid).card_data_kept is False
