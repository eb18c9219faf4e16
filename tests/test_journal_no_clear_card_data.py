"""No clear card number or token in the journal file, its WAL, or the log output.

Payments in the three test token ranges go through the journal the way the terminal drives it
(card read, card data kept, awaiting reply, approved/declined/no reply + reversal, offline advice)
with every logger at DEBUG; then the files and the log are searched in ASCII, hex and BCD."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from card_data_scan import forms, leaks, leaks_in_files
from journal_support import auth_request

from firmware.emv.outcome import mask_pan
from firmware.host.acquirer import AuthRequest
from firmware.journal import Journal
from firmware.recovery import recover

TOKENS = ["4761739001010010", "5413330089010434", "6083260000000013"]


def test_the_scanner_finds_each_form() -> None:
    for name, needle in forms(TOKENS[0]).items():
        assert leaks(b"xx" + needle + b"yy", TOKENS) == [f"476173...0010 as {name}"]
    assert leaks(mask_pan(TOKENS[0]).encode(), TOKENS) == []


def _flow(j: Journal, token: str, ending: str) -> None:
    pid = j.new_payment("purchase", 1234, 978, "PITAP001")
    j.record(pid, "card_read", scheme="visa", masked_pan=mask_pan(token), card_in_field_ms=210.0)
    req = auth_request(stan=j.next_stan(), pan=token, offline_approved=ending == "offline")
    j.keep_card_data(pid, req)
    if ending == "offline":
        j.record(pid, "approved", offline=True, auth_code="Y1")
        item = j.enqueue("advice", pid)
        j.queue_retry_later(item, f"host down while advising {token}")
        return
    j.record(pid, "awaiting_reply", stan=req.stan)
    if ending == "no_reply":
        item = j.enqueue("reversal", pid)
        j.record(pid, "error", reason=f"no reply for card {token}")
        j.queue_retry_later(item, "timeout")
        j.queue_done(item)
    elif ending == "crash":
        return  # recovery takes it from here
    else:
        j.record(pid, ending, response_code="00", auth_code="123456", rrn="633112345678")


@pytest.mark.parametrize("checkpoint", [False, True])
def test_journal_and_logs_hold_no_clear_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, checkpoint: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    j = Journal.open(tmp_path / "journal.sqlite", tmp_path / "journal.key")
    for token in TOKENS:
        for ending in ("approved", "declined", "no_reply", "offline", "crash"):
            _flow(j, token, ending)
    recover(j)
    if checkpoint:
        j.close()  # checkpoints the WAL into the main file
    files = sorted(tmp_path.iterdir())
    assert any(p.name.endswith("-wal") for p in files) or checkpoint
    assert leaks_in_files(files, TOKENS) == []
    assert leaks(caplog.text.encode(), TOKENS) == []
    if not checkpoint:
        # The data is really there, encrypted: the reversals and advices can still be sent.
        kept = (j.card_data(q.payment_id) for q in j.queue())
        assert {AuthRequest.from_bytes(r).pan for r in kept if r} == set(TOKENS)
        j.close()
