"""Journal speed: what one payment's durable writes cost, and what the start-up check costs.

Prints figures; asserts nothing. Runs in well under a minute on a laptop (a Pi's SD card is
slower: run it there to size the presentment budget).
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware.host.acquirer import AuthRequest  # noqa: E402
from firmware.journal import Journal  # noqa: E402

TOKEN = "4761739001010010"


def request(stan: int) -> AuthRequest:
    return AuthRequest(
        stan=stan,
        amount=1250,
        currency=978,
        txn_type="purchase",
        pan=TOKEN,
        pan_sequence=1,
        expiry="2812",
        track2=bytes.fromhex(TOKEN + "D28122010000000000000F"),
        icc_data=bytes(180),
        terminal_id="PITAP001",
        merchant_id="000000000000001",
        when=dt.datetime.now(),
    )


def one_payment(j: Journal) -> tuple[float, float]:
    """The writes of an online approval; returns (ms before the 0100 may leave, ms total)."""
    t0 = time.perf_counter()
    pid = j.new_payment("purchase", 1250, 978, "PITAP001")
    j.record(pid, "card_read", scheme="visa", masked_pan="476173******0010")
    stan = j.next_stan()
    j.keep_card_data(pid, request(stan))
    j.record(pid, "awaiting_reply", stan=stan)
    t1 = time.perf_counter()
    j.record(pid, "approved", auth_code="123456", response_code="00", rrn="633112345678")
    t2 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t0) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        path, key = Path(d) / "journal.sqlite", Path(d) / "journal.key"
        t = time.perf_counter()
        j = Journal.open(path, key)
        print(f"open new journal (key, schema):        {(time.perf_counter() - t) * 1000:7.1f} ms")
        before, total = zip(*(one_payment(j) for _ in range(200)), strict=True)
        print(
            f"writes before the 0100 leaves (median): {statistics.median(before):7.2f} ms"
            f"  (p95 {sorted(before)[189]:.2f})"
        )
        print(f"all writes of one online payment:       {statistics.median(total):7.2f} ms")
        t = time.perf_counter()
        for _ in range(200):
            j.next_stan()
        print(f"next_stan (durable):                    {(time.perf_counter() - t) * 5:7.2f} ms")
        j._conn.execute("PRAGMA synchronous = OFF")  # fill quickly for the start-up figure
        for _ in range(4800):
            one_payment(j)
        j.close()
        t = time.perf_counter()
        j = Journal.open(path, key)
        ms = (time.perf_counter() - t) * 1000
        print(
            f"open + integrity check, 5000 payments:  {ms:7.1f} ms"
            f"  ({path.stat().st_size / 1e6:.1f} MB)"
        )
        j.close()


if __name__ == "__main__":
    main()
