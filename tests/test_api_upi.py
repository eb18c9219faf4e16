"""UPI through the terminal API: `POST /v1/payments` with `"tender": "upi"` on an INR terminal
with [upi] configured, on a real aiohttp server, the real PSP simulator on 127.0.0.1 (its clock
moved by the test: the simulated payer pays when the test says, no timing luck), a real SQLite
journal, an independent client (http.client only, tests/api_support.py). Approved only after
the PSP's SUCCESS; a failing payer declined; an idempotent retry is the same request at the PSP;
cancel withdraws it; the receipt, the refund through the PSP and the void refused; a EUR
terminal or a tip refuses the tender with 400."""

from __future__ import annotations

import json

import pytest
from api_support import EventReader, Running, StoppedClock

from firmware.upi.psp import mask_vpa
from simulators.upi.psp import PAYER_VPA, PspSimulator


def qr_shown(events: EventReader, pid: object) -> dict[str, object]:
    return events.wait_for(lambda e: e["type"] == "upi_qr" and e["payment_id"] == pid)


def test_a_upi_payment_is_approved_only_after_the_psps_success(
        upi_api: Running, upi_psp: PspSimulator, psp_clock: StoppedClock) -> None:
    status = upi_api.call("GET", "/v1/status")
    assert status["upi"] is True and status["currency"] == "INR"
    events = EventReader(upi_api.base, upi_api.key).start()
    started = upi_api.pay("250.00", tender="upi", reference="till-upi-1")
    assert started.status == 201, started.body
    pid = started["id"]
    assert (started["tender"], started["finished"], started["currency"]) == ("upi", False,
                                                                             "INR")
    reference = started["upi_reference"]
    qr_shown(events, pid)  # shown once the PSP holds the request
    assert isinstance(reference, str) and reference in upi_psp.requests
    pending = upi_api.call("GET", f"/v1/payments/{pid}")
    assert (pending["state"], pending["outcome"], pending["finished"]) == (
        "upi_pending", None, False)  # the QR is up, the payer has not paid: not approved
    assert pending["psp_reference"] is None and pending["payer_vpa"] is None
    assert upi_api.call("GET", "/v1/status")["state"] == "busy"
    psp_clock.payer_acts()  # the payer pays: the PSP says SUCCESS at the next status query
    done = upi_api.finished(pid)  # type: ignore[arg-type]
    assert (done["outcome"], done["state"]) == ("approved", "approved"), done
    assert done["payer_vpa"] == mask_vpa(PAYER_VPA)
    assert str(done["psp_reference"]).isdigit()
    outcome = events.wait_for(lambda e: e["type"] == "outcome" and e["payment_id"] == pid)
    assert outcome["payment"]["outcome"] == "approved"  # type: ignore[index]
    kinds = [e["type"] for e in events.events if e.get("payment_id") == pid]
    assert kinds.index("upi_qr") < kinds.index("outcome")
    events.close()
    assert PAYER_VPA not in json.dumps([events.events, done])  # the payer's VPA masked only
    receipt = upi_api.call("GET", f"/v1/payments/{pid}/receipt")
    assert receipt.status == 200, receipt.body
    text = "\n".join(receipt["lines"])  # type: ignore[arg-type]
    assert "UPI" in text and str(done["psp_reference"]) in text and reference in text
    found = upi_api.call("GET", "/v1/payments?reference=till-upi-1")
    assert [p["id"] for p in found["payments"]] == [pid]  # type: ignore[index, union-attr]


def test_a_upi_payment_is_refunded_through_the_psp_and_never_voided(
        upi_api: Running, upi_psp: PspSimulator, psp_clock: StoppedClock) -> None:
    events = EventReader(upi_api.base, upi_api.key).start()
    sale = upi_api.pay("250.00", tender="upi")
    assert sale.status == 201, sale.body
    qr_shown(events, sale["id"])  # the PSP holds the request: now the payer pays
    events.close()
    psp_clock.payer_acts()
    assert upi_api.finished(sale["id"])["outcome"] == "approved"  # type: ignore[arg-type]
    voided = upi_api.call("POST", f"/v1/payments/{sale['id']}/void")
    assert voided.status == 409, voided.body  # the CLI's line: the acquirer never saw it
    assert voided["error"] == f"payment {sale['id']}: UPI: refund it instead"
    refund = upi_api.pay("100.00", type="refund", refund_of=sale["id"])
    assert refund.status == 201, refund.body
    done = upi_api.finished(refund["id"])  # type: ignore[arg-type]
    assert (done["outcome"], done["tender"], done["refund_of"]) == ("approved", "upi",
                                                                   sale["id"])
    assert done["psp_reference"] and done["upi_reference"] in upi_psp.refunds
    over = upi_api.pay("200.00", type="refund", refund_of=sale["id"])
    assert (over.status, over["field"]) == (409, "refund_of")  # only 150.00 left: nothing sent
    assert "150.00 INR left" in str(over["error"])
    assert len(upi_psp.refunds) == 1


def test_a_payer_who_declines_ends_declined(upi_api: Running, psp_clock: StoppedClock) -> None:
    events = EventReader(upi_api.base, upi_api.key).start()
    started = upi_api.pay("250.05", tender="upi")  # ...05: the simulated payer declines
    assert started.status == 201, started.body
    qr_shown(events, started["id"])
    events.close()
    psp_clock.payer_acts()
    done = upi_api.finished(started["id"])  # type: ignore[arg-type]
    assert (done["outcome"], done["psp_reference"]) == ("declined", None)
    assert "payer declined" in str(done["reason"])


def test_the_same_idempotency_key_is_one_request_at_the_psp(
        upi_api: Running, upi_psp: PspSimulator, psp_clock: StoppedClock) -> None:
    events = EventReader(upi_api.base, upi_api.key).start()
    first = upi_api.pay("250.00", key="upi-sale-7", tender="upi")
    assert first.status == 201, first.body
    qr_shown(events, first["id"])
    events.close()
    again = upi_api.pay("250.00", key="upi-sale-7", tender="upi")  # the till's answer was lost
    assert again.status == 201 and again["id"] == first["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert again["upi_reference"] == first["upi_reference"]
    card = upi_api.pay("250.00", key="upi-sale-7")  # the same key, a card: another request
    assert card.status == 422 and card["field"] == "Idempotency-Key"
    psp_clock.payer_acts()
    assert upi_api.finished(first["id"])["outcome"] == "approved"  # type: ignore[arg-type]
    replay = upi_api.pay("250.00", key="upi-sale-7", tender="upi")
    assert (replay["id"], replay["outcome"]) == (first["id"], "approved")
    assert list(upi_psp.requests) == [first["upi_reference"]]
    assert len(upi_api.terminal.journal.payments()) == 1


def test_cancel_withdraws_the_request_at_the_psp(upi_api: Running,
                                                 upi_psp: PspSimulator) -> None:
    events = EventReader(upi_api.base, upi_api.key).start()
    started = upi_api.pay("250.00", tender="upi")
    assert started.status == 201, started.body
    pid = started["id"]
    qr_shown(events, pid)
    events.close()
    assert upi_api.pay("10.00").status == 409  # one payment at a time, a card too
    cancelled = upi_api.call("POST", f"/v1/payments/{pid}/cancel")
    assert cancelled.status == 200, cancelled.body
    assert (cancelled["outcome"], cancelled["tender"]) == ("cancelled", "upi")
    assert upi_psp.requests[str(started["upi_reference"])].cancelled_at is not None
    assert upi_api.finished(pid)["outcome"] == "cancelled"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "250.00", "tender": "upi", "tip": "10.00"}, "tip"),
        ({"amount": "250.00", "tender": "cash"}, "tender"),
        ({"amount": "250.00", "tender": "upi", "type": "preauth"}, "tender"),
        ({"amount": "250.001", "tender": "upi"}, "amount"),
        ({"amount": "200000.00", "tender": "upi"}, "amount"),  # over UPI's per-payment limit
    ],
)
def test_bad_upi_requests_are_400_and_nothing_starts(upi_api: Running, upi_psp: PspSimulator,
                                                     body: dict[str, object],
                                                     field: str) -> None:
    answer = upi_api.call("POST", "/v1/payments", body, headers={"Idempotency-Key": "k"})
    assert (answer.status, answer["field"]) == (400, field), answer.body
    assert upi_api.terminal.journal.payments() == [] and upi_psp.requests == {}


def test_tender_upi_on_a_eur_terminal_is_400(api: Running) -> None:
    assert api.call("GET", "/v1/status")["upi"] is False
    answer = api.pay("12.50", tender="upi")
    assert (answer.status, answer["field"]) == (400, "tender"), answer.body
    assert "INR only" in str(answer["error"])
    assert api.terminal.journal.payments() == []
