"""UPI through the terminal API: `POST /v1/payments` with `"tender": "upi"` on an INR terminal
with [upi] configured, on a real aiohttp server, the real PSP simulator on 127.0.0.1 (its clock
moved by the test: the simulated payer pays when the test says, no timing luck), a real SQLite
journal, an independent client (http.client only, tests/api_support.py). Approved only after
the PSP's SUCCESS; a failing payer declined; an idempotent retry is the same request at the PSP;
cancel withdraws it; the receipt, the refund through the PSP and the void refused; a EUR
terminal or a tip refuses the tender with 400."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from api_support import EventReader, Running, serve

from firmware.upi.psp import mask_vpa
from simulators.upi.psp import PAYER_VPA, PspSimulator

PAY_DELAY_S = 3.0  # the simulated payer pays this long (on the PSP's clock) after the create


class StoppedClock:
    """The simulated PSP's clock, moved only by the test: its payer pays when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def payer_acts(self) -> None:
        self.now += PAY_DELAY_S + 1


@pytest.fixture
def clock() -> StoppedClock:
    return StoppedClock()


@pytest.fixture
def psp_sim(clock: StoppedClock) -> Iterator[PspSimulator]:
    with PspSimulator(pay_delay_s=PAY_DELAY_S, clock=clock) as sim:
        yield sim


@pytest.fixture
def upi_api(make_config, host_sim, psp_sim: PspSimulator) -> Iterator[Running]:
    """The API of an INR terminal with [upi] configured, its PSP the simulator."""
    cfg = make_config(host_sim.port, presentment_timeout_s=60.0)
    cfg = dataclasses.replace(
        cfg, terminal=dataclasses.replace(cfg.terminal, currency="INR"),
        upi={"payee_vpa": "pitapdemo@okaxis", "mcc": "5411", "psp_url": psp_sim.url,
             "poll_interval_s": 0.2, "request_expiry_s": 600})
    with serve(cfg) as running:
        yield running


def qr_shown(events: EventReader, pid: object) -> dict[str, object]:
    return events.wait_for(lambda e: e["type"] == "upi_qr" and e["payment_id"] == pid)


def test_a_upi_payment_is_approved_only_after_the_psps_success(
        upi_api: Running, psp_sim: PspSimulator, clock: StoppedClock) -> None:
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
    assert isinstance(reference, str) and reference in psp_sim.requests
    pending = upi_api.call("GET", f"/v1/payments/{pid}")
    assert (pending["state"], pending["outcome"], pending["finished"]) == (
        "upi_pending", None, False)  # the QR is up, the payer has not paid: not approved
    assert pending["psp_reference"] is None and pending["payer_vpa"] is None
    assert upi_api.call("GET", "/v1/status")["state"] == "busy"
    clock.payer_acts()  # the payer pays: the PSP says SUCCESS at the next status query
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
        upi_api: Running, psp_sim: PspSimulator, clock: StoppedClock) -> None:
    events = EventReader(upi_api.base, upi_api.key).start()
    sale = upi_api.pay("250.00", tender="upi")
    assert sale.status == 201, sale.body
    qr_shown(events, sale["id"])  # the PSP holds the request: now the payer pays
    events.close()
    clock.payer_acts()
    assert upi_api.finished(sale["id"])["outcome"] == "approved"  # type: ignore[arg-type]
    voided = upi_api.call("POST", f"/v1/payments/{sale['id']}/void")
    assert voided.status == 409, voided.body  # the CLI's line: the acquirer never saw it
    assert voided["error"] == f"payment {sale['id']}: UPI: refund it instead"
    refund = upi_api.pay("100.00", type="refund", refund_of=sale["id"])
    assert refund.status == 201, refund.body
    done = upi_api.finished(refund["id"])  # type: ignore[arg-type]
    assert (done["outcome"], done["tender"], done["refund_of"]) == ("approved", "upi",
                                                                   sale["id"])
    assert done["psp_reference"] and done["upi_reference"] in psp_sim.refunds
    over = upi_api.pay("200.00", type="refund", refund_of=sale["id"])
    assert (over.status, over["field"]) == (409, "refund_of")  # only 150.00 left: nothing sent
    assert "150.00 INR left" in str(over["error"])
    assert len(psp_sim.refunds) == 1


def test_a_payer_who_declines_ends_declined(upi_api: Running, clock: StoppedClock) -> None:
    events = EventReader(upi_api.base, upi_api.key).start()
    started = upi_api.pay("250.05", tender="upi")  # ...05: the simulated payer declines
    assert started.status == 201, started.body
    qr_shown(events, started["id"])
    events.close()
    clock.payer_acts()
    done = upi_api.finished(started["id"])  # type: ignore[arg-type]
    assert (done["outcome"], done["psp_reference"]) == ("declined", None)
    assert "payer declined" in str(done["reason"])


def test_the_same_idempotency_key_is_one_request_at_the_psp(
        upi_api: Running, psp_sim: PspSimulator, clock: StoppedClock) -> None:
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
    clock.payer_acts()
    assert upi_api.finished(first["id"])["outcome"] == "approved"  # type: ignore[arg-type]
    replay = upi_api.pay("250.00", key="upi-sale-7", tender="upi")
    assert (replay["id"], replay["outcome"]) == (first["id"], "approved")
    assert list(psp_sim.requests) == [first["upi_reference"]]
    assert len(upi_api.terminal.journal.payments()) == 1


def test_cancel_withdraws_the_request_at_the_psp(upi_api: Running,
                                                 psp_sim: PspSimulator) -> None:
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
    assert psp_sim.requests[str(started["upi_reference"])].cancelled_at is not None
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
def test_bad_upi_requests_are_400_and_nothing_starts(upi_api: Running, psp_sim: PspSimulator,
                                                     body: dict[str, object],
                                                     field: str) -> None:
    answer = upi_api.call("POST", "/v1/payments", body, headers={"Idempotency-Key": "k"})
    assert (answer.status, answer["field"]) == (400, field), answer.body
    assert upi_api.terminal.journal.payments() == [] and psp_sim.requests == {}


def test_tender_upi_on_a_eur_terminal_is_400(api: Running) -> None:
    assert api.call("GET", "/v1/status")["upi"] is False
    answer = api.pay("12.50", tender="upi")
    assert (answer.status, answer["field"]) == (400, "tender"), answer.body
    assert "INR only" in str(answer["error"])
    assert api.terminal.journal.payments() == []
