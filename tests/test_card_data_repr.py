"""Card data never rides on a repr: a log line or an assertion message that shows a payment's
objects shows no token, track 2 or ICC data."""

from __future__ import annotations

import datetime as dt

from firmware.emv.oda import IccKey
from firmware.emv.outcome import Outcome, OutcomeKind
from firmware.host.acquirer import AuthRequest

TOKEN = "4761731000000019"
TRACK2 = bytes.fromhex("4761731000000019D28122010000000000000F")


def test_outcome_and_request_reprs_hold_no_card_data() -> None:
    outcome = Outcome(OutcomeKind.ONLINE_REQUEST, "online", pan=TOKEN, track2=TRACK2,
                      icc_data=bytes.fromhex("9F2608") + TRACK2[:8])
    request = AuthRequest(stan=1, amount=100, currency=978, txn_type="purchase", pan=TOKEN,
                          pan_sequence=1, expiry="2812", track2=TRACK2, icc_data=b"\x9f\x26",
                          terminal_id="T1", merchant_id="M1", when=dt.datetime(2026, 11, 27))
    key = IccKey(modulus=b"\x07", exponent=3, pan=bytes.fromhex("4761731000000019FFFF"),
                 expiry="1230", serial=b"\x01")
    for thing in (outcome, request, key):
        text = repr(thing)
        assert TOKEN not in text and TRACK2.hex() not in text.lower(), text
        assert "4761731000000019" not in text.replace(" ", "")
    assert outcome.masked_pan == "476173******0019"
