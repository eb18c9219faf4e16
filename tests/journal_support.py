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
