"""Property tests (hypothesis) of the journal: any sequence of calls keeps it consistent."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.host.acquirer import AuthRequest
from firmware.journal import FIELD_TYPES, STAN_MAX, IllegalTransition, Journal, JournalError, scrub
from firmware.payment import LEGAL_TRANSITIONS, PaymentOutcome, PaymentState

FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("journal")
    j = Journal.open(d / "j.sqlite", d / "j.key")
    # Property runs make hundreds of writes: durability is not what they test.
    j._conn.execute("PRAGMA synchronous = OFF")
    yield j
    j.close()


digits = st.text(alphabet="0123456789", min_size=13, max_size=19)
auth_requests = st.builds(
    AuthRequest,
    stan=st.integers(1, STAN_MAX),
    amount=st.integers(0, 10**12),
    currency=st.integers(1, 999),
    txn_type=st.sampled_from(["purchase", "refund"]),
    pan=digits,
    pan_sequence=st.none() | st.integers(0, 99),
    expiry=st.text(alphabet="0123456789", min_size=4, max_size=4),
    track2=st.binary(max_size=19),
    icc_data=st.binary(max_size=255),
    terminal_id=st.text(max_size=8),
    merchant_id=st.text(max_size=15),
    when=st.datetimes(timezones=st.none() | st.just(dt.UTC)),
    offline_approved=st.booleans(),
    auth_code=st.text(max_size=6),
    rrn=st.text(max_size=12),
)


@FAST
@given(auth_requests)
def test_card_data_round_trips(request_: AuthRequest) -> None:
    assert AuthRequest.from_bytes(bytes(request_)) == request_


@FAST
@given(auth_requests)
def test_card_data_is_stored_encrypted(journal: Journal, request_: AuthRequest) -> None:
    pid = journal.new_payment("purchase", 1, 978, "PITAP001")
    journal.keep_card_data(pid, request_)
    row = journal._conn.execute(
        "SELECT ciphertext FROM card_data WHERE payment_id = ?", (pid,)
    ).fetchone()
    assert request_.pan.encode() not in bytes(row[0])
    assert AuthRequest.from_bytes(journal.card_data(pid) or b"") == request_
    journal.forget_card_data(pid)
    assert journal.card_data(pid) is None


field_values = {
    "scheme": st.text(max_size=20),
    "masked_pan": st.text(max_size=25),
    "stan": st.integers(1, STAN_MAX),
    "rrn": st.text(max_size=12),
    "auth_code": st.text(max_size=6),
    "response_code": st.text(max_size=2),
    "reason": st.text(max_size=80),
    "outcome": st.sampled_from(list(PaymentOutcome)),
    "card_in_field_ms": st.floats(0, 10_000),
    "offline": st.booleans(),
}
field_values["application_label"] = st.text(max_size=16)
field_values["aid"] = st.binary(max_size=16).map(lambda b: b.hex().upper())
field_values["amount"] = st.integers(0, 10**12)  # a partial approval's amount charged
field_values["cvm"] = st.sampled_from(["", "cdcvm", "no_cvm", "signature", "online_pin", "failed"])
field_values["expires_at"] = st.text(max_size=25)  # a hold's expiry
# refund_of: tested in test_api; hold_of (a reference too): in test_preauth
field_values["tip"] = st.integers(0, 10**12)  # the part of the amount that is a tip
field_values["payer_vpa"] = st.sampled_from(["", "ra*****@okicici", "a***@ybl"])  # UPI, masked
field_values["psp_reference"] = st.from_regex(r"[0-9A-Z]{0,20}", fullmatch=True)
assert set(field_values) == set(FIELD_TYPES) - {"refund_of", "hold_of"}
steps = st.lists(
    st.tuples(
        st.integers(0, 99),  # which next state: legal ones by index, or any one (refused)
        st.booleans(),  # True: pick any state at all, legal or not
        st.fixed_dictionaries({}, optional=field_values),
    ),
    max_size=12,
)


@FAST
@given(steps)
def test_history_is_every_legal_state_change_in_order(journal: Journal, changes: list) -> None:
    pid = journal.new_payment("purchase", 100, 978, "PITAP001")
    expected = [PaymentState.STARTED]
    for pick, anything, fields in changes:
        current = expected[-1]
        # a card payment never goes to upi_pending (the journal refuses it: a UPI state)
        legal = sorted(LEGAL_TRANSITIONS.get(current, frozenset()) - {PaymentState.UPI_PENDING})
        options = list(PaymentState) if anything or not legal else legal
        state = options[pick % len(options)]
        if state not in legal and not (state == current and not fields):
            with pytest.raises(IllegalTransition):
                journal.record(pid, state, **fields)
            continue
        journal.record(pid, state, **fields)
        if not (current == state and not fields):
            expected.append(state)
    assert [h.state for h in journal.history(pid)] == expected
    p = journal.payment(pid)
    assert p.state == expected[-1]
    for entry in journal.history(pid):
        for value in entry.as_dict().values():
            assert not (isinstance(value, str) and re.search(r"\d{13}", value))


@FAST
@given(st.integers(0, STAN_MAX - 1), st.integers(1, 30))
def test_stan_counts_1_to_999999_and_wraps(journal: Journal, start: int, n: int) -> None:
    journal._conn.execute("UPDATE counters SET value = ? WHERE name = 'stan'", (start,))
    got = [journal.next_stan() for _ in range(n)]
    assert got == [(start + i) % STAN_MAX + 1 for i in range(n)]
    assert all(1 <= s <= STAN_MAX for s in got)


@given(st.text())
def test_scrub_leaves_no_card_number(text: str) -> None:
    out = scrub(text)
    assert not re.search(r"(?:\d[ -]?){12}\d", out)


@given(st.text(alphabet="0123456789 -", max_size=12))
def test_scrub_leaves_short_numbers_alone(text: str) -> None:
    assert scrub(text) == text


@FAST
@given(st.lists(st.tuples(st.sampled_from(["enqueue", "done", "retry"]), st.integers(0, 5))))
def test_queue_matches_a_simple_model(journal: Journal, ops: list) -> None:
    for item in journal.queue():
        journal.queue_done(item.id)
    pids = []
    for _ in range(6):
        pid = journal.new_payment("purchase", 1, 978, "PITAP001")
        journal.keep_card_data(
            pid,
            AuthRequest(
                1,
                1,
                978,
                "purchase",
                "4761730000000000",
                None,
                "2812",
                b"",
                b"",
                "T",
                "M",
                dt.datetime(2026, 1, 1),
            ),
        )
        journal.record(pid, "card_read")
        journal.record(pid, "awaiting_reply")  # no STAN: once reversed, nothing to send
        pids.append(pid)
    model: list[tuple[int, int]] = []  # (item id, payment id), pending, in order
    reversed_: set[int] = set()  # card data is gone once reversed: no second reversal
    for op, n in ops:
        pid = pids[n]
        if op == "enqueue":
            if pid in reversed_:
                with pytest.raises(JournalError, match="neither card data nor a STAN"):
                    journal.enqueue("reversal", pid)
                continue
            item = journal.enqueue("reversal", pid)
            if all(p != pid for _, p in model):
                model.append((item, pid))
            else:
                assert (item, pid) in model
        elif op == "done" and model:
            item, done_pid = model.pop(n % len(model))
            journal.queue_done(item)
            reversed_.add(done_pid)
        elif op == "retry" and model:
            journal.queue_retry_later(model[n % len(model)][0], "timeout")
    assert [(q.id, q.payment_id) for q in journal.queue()] == model
