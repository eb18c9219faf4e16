"""One clock per payment: the moment a payment starts is its journal time, EMV 9A/9F21 and
ISO 8583 fields 7/12/13, so they agree even when the payment runs across midnight."""

from __future__ import annotations

import datetime as dt

from firmware.emv import tlv
from firmware.terminal import Terminal

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
JUST_BEFORE_MIDNIGHT = dt.datetime(2026, 12, 31, 23, 59, 59, 900_000, tzinfo=IST)


def test_a_payment_at_midnight_has_one_time_everywhere(host_sim, make_config, phone) -> None:
    term = Terminal.from_config(make_config(host_sim.port))
    try:
        reads: list[dt.datetime] = []

        def clock() -> dt.datetime:  # every read is 200 ms later: past midnight from the second
            reads.append(JUST_BEFORE_MIDNIGHT + dt.timedelta(milliseconds=200 * len(reads)))
            return reads[-1]

        term.clock = clock
        sent: list[dict[str, str]] = []
        exchange = term.acquirer._exchange

        def recording(doc: dict[str, str]) -> dict[str, str]:
            sent.append(dict(doc))
            return exchange(doc)

        term.acquirer._exchange = recording
        kernel_saw = []
        process = term.kernel.process

        def kernel(card, txn):  # noqa: ANN001, ANN202 - the kernel's own signature
            kernel_saw.append(txn)
            return process(card, txn)

        term.kernel.process = kernel
        phone("visa-online", term.cfg.reader.path)
        result = term.pay(1250)
        assert result.outcome == "approved", result.reason
        created = term.journal.payment(result.id).created_at
    finally:
        term.close()

    assert len(reads) == 1  # taken once, at the start
    (request,) = [doc for doc in sent if doc["t"] in ("0100", "0200")]
    icc = tlv.flatten(tlv.decode(bytes.fromhex(request["55"])))
    local, utc = JUST_BEFORE_MIDNIGHT, JUST_BEFORE_MIDNIGHT.astimezone(dt.UTC)
    assert (request["13"], request["12"]) == (local.strftime("%m%d"), "235959")
    assert icc[bytes.fromhex("9A")].hex() == "261231"
    assert [t.when for t in kernel_saw] == [local]  # the kernel's 9A and 9F21 (PDOL, CDOL1)
    assert request["7"] == utc.strftime("%m%d%H%M%S") == "1231182959"
    assert dt.datetime.fromisoformat(str(created)) == utc
