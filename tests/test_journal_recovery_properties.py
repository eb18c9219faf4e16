"""Stateful property test: any sequence of payment steps, power cuts and restarts leaves the
journal in a state store-and-forward can finish, without losing or doubling anything.

Invariants checked after every restart (recovery) and at every step:
- no payment is left in "started", "card_read" or "awaiting_reply" after recovery;
- every payment whose 0100 may have left and that has no outcome from the host has exactly one
  pending reversal; no payment ever has two pending items of one kind;
- card data exists only for payments with something pending (or mid-flight);
- the STAN never repeats.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from journal_support import auth_request

from firmware.journal import Journal
from firmware.recovery import recover

MIDFLIGHT = ("started", "card_read", "awaiting_reply")


class PowerCuts(RuleBasedStateMachine):
    @initialize()
    def open_journal(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pitap-j-"))
        self.j = Journal.open(self.dir / "j.sqlite", self.dir / "j.key")
        self.stans: list[int] = []
        self.sent: set[int] = set()  # payments whose 0100 may have left
        self.answered: set[int] = set()  # ... and got an answer recorded

    def teardown(self) -> None:
        self.j.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _open(self, state: str) -> list[int]:
        return [p.id for p in self.j.payments_in_state(state)]

    @rule(amount=st.integers(1, 10**6))
    def start(self, amount: int) -> None:
        pid = self.j.new_payment("purchase", amount, 978, "PITAP001")
        self.j.record(pid, "card_read", scheme="visa", masked_pan="476173******0010")

    @rule(data=st.data())
    def send(self, data: st.DataObject) -> None:
        ready = self._open("card_read")
        if not ready:
            return
        pid = data.draw(st.sampled_from(ready))
        stan = self.j.next_stan()
        self.stans.append(stan)
        self.j.keep_card_data(pid, auth_request(stan=stan))
        self.j.record(pid, "awaiting_reply", stan=stan)
        self.sent.add(pid)

    @rule(data=st.data(), answer=st.sampled_from(["approved", "declined", "no_reply"]))
    def reply(self, data: st.DataObject, answer: str) -> None:
        waiting = self._open("awaiting_reply")
        if not waiting:
            return
        pid = data.draw(st.sampled_from(waiting))
        if answer == "no_reply":
            self.j.enqueue("reversal", pid)
            self.j.record(pid, "error", reason="no reply")
        else:
            self.j.forget_card_data(pid)  # as the terminal does, before recording the outcome
            self.j.record(pid, answer, response_code="00" if answer == "approved" else "05")
            self.answered.add(pid)

    @rule(data=st.data())
    def offline_approval(self, data: st.DataObject) -> None:
        ready = self._open("card_read")
        if not ready:
            return
        pid = data.draw(st.sampled_from(ready))
        stan = self.j.next_stan()
        self.stans.append(stan)
        self.j.keep_card_data(pid, auth_request(stan=stan, offline_approved=True))
        self.j.record(pid, "approved", offline=True, stan=stan, auth_code="Y1")

    @rule(acknowledge=st.booleans())
    def store_and_forward(self, acknowledge: bool) -> None:
        queue = self.j.queue()
        if not queue:
            return
        if acknowledge:
            self.j.queue_done(queue[0].id)
        else:
            self.j.queue_retry_later(queue[0].id, "host down")

    @rule()
    def power_cut_and_restart(self) -> None:
        self.j._conn.close()  # no checkpoint, no clean close
        self.j = Journal.open(self.dir / "j.sqlite", self.dir / "j.key")
        report = recover(self.j)
        assert not report.problems
        for state in MIDFLIGHT:
            assert self._open(state) == []
        for p in self.j.payments():
            pending = [q for q in self.j.queue() if q.payment_id == p.id]
            if p.id in self.sent and p.id not in self.answered:
                reversed_ = any(h.state == "reversed" for h in self.j.history(p.id))
                assert reversed_ or [q.kind for q in pending] == ["reversal"], p
            if p.offline and p.outcome == "approved":
                advised = any(h.state == "advised" for h in self.j.history(p.id))
                assert advised or [q.kind for q in pending] == ["advice"], p

    @invariant()
    def one_pending_item_per_kind(self) -> None:
        if not hasattr(self, "j"):
            return
        keys = [(q.kind, q.payment_id) for q in self.j.queue()]
        assert len(keys) == len(set(keys))

    @invariant()
    def card_data_only_while_needed(self) -> None:
        if not hasattr(self, "j"):
            return
        pending = {q.payment_id for q in self.j.queue()}
        for p in self.j.payments():
            if p.card_data_kept:
                assert p.id in pending or p.state in MIDFLIGHT or (
                    p.offline and p.state == "approved"
                ), p

    @invariant()
    def stans_never_repeat(self) -> None:
        if hasattr(self, "stans"):
            assert len(self.stans) == len(set(self.stans))


PowerCuts.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
test_power_cuts = PowerCuts.TestCase
