"""Issue 15's check: a till written from docs/openapi.json alone (tests/openapi_client.py: the
document, http.client and jsonschema, none of pitap's code) against `pitap run` as a real
process with [api] enabled, its key made with `pitap api-key add`, the host simulator on
127.0.0.1 and a simulated phone on nfcpy's udp: link. It takes a payment with a tap, queries it
by id and by reference, cancels a second while it waits for the card, refunds the first, reads
the receipt, the status and the events, closes the day; bad JSON, unknown fields, wrong types
and bad keys are refused as the document says, nothing started; and a retried POST with the same
Idempotency-Key after a kill -9 of the terminal (its authorization booked at the host, the
answer lost) answers with the same payment, charged once. Every answer must be one the
document declares (status, content type, schema)."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from api_support import EventReader, site
from card_data_scan import leaks, wallet_tokens
from host_support import HoldingHost
from openapi_client import Client, Document
from run_support import run_pitap, start_pitap, wait_until

from simulators.wallet.phone import SimulatedPhone

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")

PAYMENTS = "/v1/payments"
PAYMENT = "/v1/payments/{id}"
STATUS = "/v1/status"


@pytest.fixture(scope="module")
def doc() -> Document:
    return Document()


def test_the_document_is_whole(doc: Document) -> None:
    """Every schema it names resolves and is a valid schema; every operation declares what a
    bad key (401, 429) and a foreign origin (403) get; every request body refuses unknown
    fields."""
    for op in doc.operations():
        responses = op.spec["responses"]
        assert {"401", "403", "429"} <= set(responses), (op.method, op.path)
        for declared in responses.values():
            for content in declared.get("content", {}).values():
                jsonschema.Draft7Validator.check_schema(doc.schema(content["schema"]))
        body = op.spec.get("requestBody")
        if body is not None:
            schema = doc.schema(body["content"]["application/json"]["schema"])
            assert schema.get("additionalProperties") is False, (op.method, op.path)


def _up(till: Client) -> bool:
    try:
        return till.call("GET", STATUS).status == 200
    except OSError:
        return False


def _pay(till: Client, key: str | None = None, **body: object) -> dict[str, object]:
    answer = till.call("POST", PAYMENTS, body, headers={"Idempotency-Key": key or str(
        uuid.uuid4())})
    assert answer.status == 201, answer.body
    assert isinstance(answer.body, dict)
    return answer.body


def _ended(till: Client, pid: object) -> dict[str, object]:
    """Payment `pid` once it has ended and the terminal is ready for the next."""
    assert wait_until(lambda: till.call("GET", PAYMENT, id=pid)["finished"], seconds=120)
    assert wait_until(lambda: till.call("GET", STATUS)["state"] == "ready", seconds=120)
    body = till.call("GET", PAYMENT, id=pid).body
    assert isinstance(body, dict)
    return body


def _tap(reader: str) -> SimulatedPhone:
    phone = SimulatedPhone("visa-online", reader)
    phone.start(taps=1, timeout=120.0)
    return phone


@pytest.fixture
def terminal(tmp_path: Path, host_sim) -> Iterator[tuple[Client, str, subprocess.Popen[str]]]:
    """`pitap run` with the API on (a key made by `pitap api-key add`): (a till by the
    document, the reader's path, the process)."""
    config, reader, base = site(tmp_path, host_sim.port)
    made = run_pitap("api-key", "add", "till", "--config", str(config))
    assert made.returncode == 0, made.stderr
    till = Client(base, made.stdout.strip(), Document())
    proc = start_pitap("run", "--config", str(config), stdin=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: _up(till), seconds=120), "the API never answered"
        yield till, reader, proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
        proc.wait()


def test_a_till_by_the_document_takes_cancels_refunds_and_queries(terminal, host_sim) -> None:
    till, reader, _proc = terminal
    doc = till.doc
    events_op = doc.operation("GET", "/v1/events")
    assert "text/event-stream" in events_op.spec["responses"]["200"]["content"]
    assert till.key is not None
    events = EventReader(till.base, till.key).start()  # (Authorization: Bearer, as documented)

    phone = _tap(reader)
    sale = _pay(till, "till-sale-1", amount="12.50", reference="till-0001")
    assert (sale["amount"], sale["reference"], sale["finished"]) == ("12.50", "till-0001", False)
    pid = sale["id"]
    done = _ended(till, pid)
    phone.stop()
    assert (done["outcome"], done["type"]) == ("approved", "purchase"), done
    outcome = events.wait_for(lambda e: e["type"] == "outcome" and e["payment_id"] == pid)
    for event in events.events:  # each as the document's Event
        doc.validate(event, {"$ref": "#/components/schemas/Event"}, f"event {event}")
    assert outcome["payment"]["outcome"] == "approved"  # type: ignore[index]
    kinds = [e["type"] for e in events.events if e.get("payment_id") == pid]
    assert kinds.index("waiting_for_card") < kinds.index("outcome")
    events.close()
    again = till.call("POST", PAYMENTS, {"amount": "12.50", "reference": "till-0001"},
                      headers={"Idempotency-Key": "till-sale-1"})
    assert (again.status, again["id"], again.headers.get("idempotent-replayed")) == (
        201, pid, "true")
    other = till.call("POST", PAYMENTS, {"amount": "13.00"},
                      headers={"Idempotency-Key": "till-sale-1"})
    assert (other.status, other["field"]) == (422, "Idempotency-Key")
    found = till.call("GET", PAYMENTS, reference="till-0001")
    assert [p["id"] for p in found["payments"]] == [pid]  # type: ignore[index, union-attr]
    assert till.call("GET", PAYMENTS, last=5).status == 200

    second = _pay(till, amount="3.00")  # no phone near: it waits for a card
    assert wait_until(lambda: till.call("GET", STATUS)["running"] == second["id"], seconds=60)
    busy = till.call("POST", PAYMENTS, {"amount": "1.00"},
                     headers={"Idempotency-Key": str(uuid.uuid4())})
    assert (busy.status, busy["running"]) == (409, second["id"])
    cancelled = till.call("POST", "/v1/payments/{id}/cancel", id=second["id"])
    assert (cancelled.status, cancelled["outcome"]) == (200, "cancelled"), cancelled.body
    assert till.call("POST", "/v1/payments/{id}/cancel", id=second["id"]).status == 409
    assert till.call("GET", "/v1/payments/{id}/receipt", id=second["id"]).status == 200
    _ended(till, second["id"])

    phone = _tap(reader)  # the refund goes to the card that paid
    refund = _pay(till, amount="5.00", type="refund", refund_of=pid)
    refunded = _ended(till, refund["id"])
    phone.stop()
    assert (refunded["outcome"], refunded["refund_of"]) == ("approved", pid), refunded
    assert till.call("GET", "/v1/payments/{id}/receipt", id=refund["id"]).status == 200

    for path, body in [("/v1/payments/{id}/void", None), ("/v1/payments/{id}/tip", {"tip": "1.00"}),
                       ("/v1/payments/{id}/increment", {"amount": "1.00"}),
                       ("/v1/payments/{id}/complete", None), ("/v1/payments/{id}/release", None)]:
        refused = till.call("POST", path, body, id=pid)  # refunded in part; tips off; no hold
        assert refused.status == 409 and refused["why"], (path, refused.body)
    receipt = till.call("GET", "/v1/payments/{id}/receipt", id=pid)
    assert receipt.status == 200 and "EUR 12.50" in "\n".join(receipt["lines"])  # type: ignore
    status = till.call("GET", STATUS)
    assert (status["state"], status["running"]) == ("ready", None)
    totals = till.call("GET", "/v1/totals")
    assert (totals["sales"], totals["refunds"], totals["net"]) == ("12.50", "5.00", "7.50")
    z = till.call("POST", "/v1/settlement")
    assert (z.status, z["closed"]) == (200, True), z.body
    assert z["totals"] == {"sales_count": 1, "sales_amount": 1250, "refunds_count": 1,
                           "refunds_amount": 500}
    assert till.call("GET", PAYMENT, id=999_999).status == 404
    served = till.call("GET", "/v1/openapi.json")
    assert served.body == doc.doc  # what the terminal serves is the document this till read
    charged = [(r["kind"], r["amount"]) for r in host_sim.ledger.transactions()
               if r["approved"]]
    assert sorted(charged) == [("refund", 500), ("sale", 1250)]

    _bad_input_is_refused_and_nothing_starts(till, host_sim)
    _bad_keys_are_refused_then_slowed_down(till)
    every = {(op.method, op.path) for op in doc.operations()}
    assert every == till.called  # every operation of the document was called (and checked)


def _bad_input_is_refused_and_nothing_starts(till: Client, host_sim) -> None:
    booked = host_sim.ledger.transactions()
    before = till.call("GET", PAYMENTS, last=500)["payments"]
    for raw, field in [(b"{not json", "body"), (b"[1, 2]", "body"), (b"", "body"),
                       (b'{"amount": "1.00", "colour": "red"}', "colour"),
                       (b'{"amount": 1.00}', "amount"), (b'{"amount": "1.00", "type": 7}', "type"),
                       (b'{"amount": "-1"}', "amount"), (b'{"amount": "1.00", "currency": "XXX"}',
                                                         "currency"),
                       (b'{"amount": "1.00", "refund_of": "1"}', "refund_of"),
                       (b'{"amount": "1.00", "type": "refund", "refund_of": 1' + b"0" * 30 + b"}",
                        "refund_of"),
                       (b"[" * 60_000, "body")]:
        bad = till.call("POST", PAYMENTS, raw=raw, valid=False,
                        headers={"Idempotency-Key": str(uuid.uuid4()),
                                 "Content-Type": "application/json"})
        assert (bad.status, bad["field"]) == (400, field), (raw, bad.body)
    no_key = till.call("POST", PAYMENTS, {"amount": "1.00"}, valid=False)
    assert (no_key.status, no_key["field"]) == (400, "Idempotency-Key")
    for path in ("/v1/payments/{id}/tip", "/v1/payments/{id}/increment",
                 "/v1/payments/{id}/complete", "/v1/payments/{id}/release"):
        bad = till.call("POST", path, raw=b'{"amount": ', valid=False, id=before[0]["id"])
        assert bad.status == 400, (path, bad.body)
    assert till.call("GET", PAYMENTS, last=0, valid=False).status == 400
    huge = b'{"amount": "1.00", "reference": "' + b"x" * 70_000 + b'"}'
    assert till.call("POST", PAYMENTS, raw=huge, valid=False,
                     headers={"Idempotency-Key": str(uuid.uuid4())}).status == 413
    foreign = till.call("POST", PAYMENTS, {"amount": "1.00"},
                        headers={"Idempotency-Key": str(uuid.uuid4()),
                                 "Origin": "http://shop.example"})
    assert (foreign.status, foreign["field"]) == (403, "Origin")
    assert till.call("GET", PAYMENTS, last=500)["payments"] == before  # nothing started
    assert host_sim.ledger.transactions() == booked
    assert till.call("GET", STATUS)["state"] == "ready"


def _bad_keys_are_refused_then_slowed_down(till: Client) -> None:
    """Last: after the bad keys, this address waits (429) even with a good key."""
    none = till.call("GET", "/v1/events", key=None)
    assert (none.status, none["field"]) == (401, "Authorization")
    refused = [till.call("GET", STATUS, key=f"pitap_wrong{n}").status for n in range(4)]
    assert refused == [401] * 4
    slowed = till.call("POST", PAYMENTS, {"amount": "1.00"},
                       headers={"Idempotency-Key": str(uuid.uuid4())})
    assert slowed.status == 429 and int(slowed.headers["retry-after"]) > 0, slowed.body
    assert till.call("GET", STATUS).status == 429


def _approval(m: dict[str, str], _d: object) -> bool:
    return m["t"] in ("0100", "0200") and m.get("4", "").lstrip("0") == "990"


def _nothing(_m: dict[str, str], _d: object) -> bool:
    return False


# Where the terminal is killed, each point waited for on state, never on a clock:
# "in flight": the host has booked the authorization and holds its answer back (the answer is
#     lost with the terminal): the restarted terminal reverses it, the payment is not approved;
# "ended": the journal has the outcome (the till's GET says finished), the till lost it.
KILL_POINTS = {"in flight": (_approval, False), "ended": (_nothing, True)}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_retry_after_kill_9_is_the_same_payment_charged_once(tmp_path: Path,
                                                                point: str) -> None:
    """The till never got the outcome of its POST (the terminal was killed -9) and POSTs again
    with its Idempotency-Key to the restarted terminal: the same payment, one booking at the
    host, and the payment's outcome agrees with the host's ledger."""
    hold_back, approved = KILL_POINTS[point]
    host = HoldingHost(hold_back, port=0, ledger_file=tmp_path / "ledger.sqlite")
    with host:
        config, reader, base = site(tmp_path, host.port, host="response_timeout_s = 120\n")
        key = run_pitap("api-key", "add", "till", "--config", str(config)).stdout.strip()
        till = Client(base, key, Document())
        request = {"amount": "9.90", "reference": "T-77"}
        retry = {"Idempotency-Key": "till-sale-77"}
        proc = start_pitap("run", "--config", str(config), stdin=subprocess.DEVNULL)
        phone = _tap(reader)
        try:
            assert wait_until(lambda: _up(till), seconds=120), "the API never answered"
            first = till.call("POST", PAYMENTS, request, headers=retry)
            assert first.status == 201, first.body
            pid = first["id"]
            if approved:
                assert wait_until(lambda: till.call("GET", PAYMENT, id=pid)["finished"],
                                  seconds=120)
            else:
                assert host.held.wait(timeout=240), "the authorization never reached the host"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            host.let_go()
            phone.stop()
        proc = start_pitap("run", "--config", str(config), stdin=subprocess.DEVNULL)
        try:
            assert wait_until(lambda: _up(till), seconds=120), "the API never came back"
            again = till.call("POST", PAYMENTS, request, headers=retry)
            assert again.status == 201 and again["id"] == pid, again.body
            assert again.headers.get("idempotent-replayed") == "true"
            view = _ended(till, pid)
            assert till.call("GET", "/v1/payments/{id}/receipt", id=pid).status == 200
            assert (view["outcome"] == "approved") is approved, view
            found = till.call("GET", PAYMENTS, reference="T-77")
            assert [p["id"] for p in found["payments"]] == [pid]  # type: ignore[index]
            shown = json.dumps([first.body, again.body, found.body]).encode()
            assert leaks(shown, wallet_tokens()) == []  # first 6 / last 4 at most
            booked = [r for r in host.ledger.transactions() if r["amount"] == 990]
            assert len(booked) == 1, booked  # one authorization: never a second charge
            # the host's ledger agrees with the outcome: a charge kept only when approved
            assert wait_until(lambda: [r["reversed"] for r in host.ledger.transactions()
                                       if r["amount"] == 990] == [int(not approved)],
                              seconds=120), host.ledger.transactions()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            proc.kill()
            proc.wait()
