"""Shared test data for the journal tests: a realistic AuthRequest with a test token."""

from __future__ import annotations

import datetime as dt

from firmware.host.acquirer import AuthRequest

VISA_TOKEN = "4761739001010010"


def auth_request(
    stan: int = 1, amount: int = 1250, pan: str = VISA_TOKEN, **over: object
) -> AuthRequest:
    fields: dict[str, object] = dict(
        stan=stan,
        amount=amount,
        currency=978,
        txn_type="purchase",
        pan=pan,
        pan_sequence=1,
        expiry="2812",
        track2=bytes.fromhex(pan + "D28122010000000000000F"),
        icc_data=bytes.fromhex("9F2608A1B2C3D4E5F607089F2701809F3602001A"),
        terminal_id="PITAP001",
        merchant_id="000000000000001",
        when=dt.datetime(2026, 11, 27, 10, 30, 5),
    )
    fields.update(over)
    return AuthRequest(**fields)  # type: ignore[arg-type]


def walk_to(journal: object, payment_id: int, target: str, **fields: object) -> None:
    """Record the shortest legal path (firmware.payment.LEGAL_TRANSITIONS) from the payment's
    state to `target`, `fields` with the last step: a test that needs an approved payment gets
    one the way the terminal makes it (card read, then the host's answer)."""
    from collections import deque

    from firmware.journal import Journal
    from firmware.payment import LEGAL_TRANSITIONS, PaymentState

    assert isinstance(journal, Journal)
    start, goal = journal.payment(payment_id).state, PaymentState(target)
    paths: deque[list[PaymentState]] = deque([[start]])
    seen = {start}
    while paths:
        path = paths.popleft()
        if path[-1] is goal and len(path) > 1:
            break
        for nxt in sorted(LEGAL_TRANSITIONS.get(path[-1], frozenset())):
            if nxt is goal or nxt not in seen:
                seen.add(nxt)
                paths.append([*path, nxt])
    else:
        raise AssertionError(f"no legal path from {start} to {goal}")
    for step in path[1:-1]:
        journal.record(payment_id, step)
    journal.record(payment_id, goal, **fields)
