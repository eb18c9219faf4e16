"""Store-and-forward: reversals and advices kept in order across restarts, with backoff."""

from __future__ import annotations

from pathlib import Path

import pytest
from journal_support import auth_request, walk_to

from firmware.journal import Journal, JournalError, backoff_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _payment(j: Journal, amount: int = 100) -> int:
    pid = j.new_payment("purchase", amount, 978, "PITAP001")
    j.keep_card_data(pid, auth_request(amount=amount))
    walk_to(j, pid, "awaiting_reply", stan=pid)
    return pid


def _offline_approval(j: Journal, amount: int = 100) -> int:
    pid = j.new_payment("purchase", amount, 978, "PITAP001")
    j.keep_card_data(pid, auth_request(amount=amount, offline_approved=True))
    walk_to(j, pid, "approved", offline=True, stan=pid)
    return pid


def test_queue_keeps_order_across_restart(tmp_path: Path) -> None:
    paths = (tmp_path / "j.sqlite", tmp_path / "j.key")
    j = Journal.open(*paths)
    a, b, c = _payment(j, 1), _offline_approval(j, 2), _payment(j, 3)
    ia = j.enqueue("reversal", a)
    ib = j.enqueue("advice", b)
    ic = j.enqueue("reversal", c)
    j.close()
    j = Journal.open(*paths)
    assert [(q.id, q.kind, q.payment_id) for q in j.queue()] == [
        (ia, "reversal", a),
        (ib, "advice", b),
        (ic, "reversal", c),
    ]
    assert [q.payment_id for q in j.queue("reversal")] == [a, c]
    assert j.payment(a).state == "reversal_queued"
    j.close()


def test_enqueue_twice_is_one_reversal(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "j.sqlite", tmp_path / "j.key")
    pid = _payment(j)
    assert j.enqueue("reversal", pid) == j.enqueue("reversal", pid)
    assert len(j.queue()) == 1
    j.close()


def test_enqueue_without_card_data_is_refused(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "j.sqlite", tmp_path / "j.key")
    pid = j.new_payment("purchase", 1, 978, "PITAP001")
    with pytest.raises(JournalError, match="neither card data nor a STAN"):
        j.enqueue("reversal", pid)
    with pytest.raises(ValueError):
        j.enqueue("refund", pid)
    j.close()


def test_retry_backs_off_and_done_records_the_state(tmp_path: Path) -> None:
    clock = Clock()
    j = Journal.open(tmp_path / "j.sqlite", tmp_path / "j.key", clock=clock)
    pid = _payment(j)
    item = j.enqueue("reversal", pid)
    assert j.queue()[0].due(clock.now)
    j.queue_retry_later(item, "connection refused")
    q = j.queue()[0]
    assert q.attempts == 1 and q.last_error == "connection refused"
    assert not q.due(clock.now) and q.due(clock.now + backoff_seconds(1))
    j.queue_retry_later(item, "timeout")
    assert j.queue()[0].next_attempt_at == clock.now + backoff_seconds(2)
    j.queue_done(item)
    j.queue_done(item)  # a repeat changes nothing
    assert j.queue() == []
    states = [h.state for h in j.history(pid)]
    assert states == ["started", "card_read", "awaiting_reply", "reversal_queued", "reversed"]
    j.close()


def test_backoff_doubles_up_to_five_minutes() -> None:
    assert [backoff_seconds(n) for n in range(1, 5)] == [5, 10, 20, 40]
    assert backoff_seconds(30) == 300
