"""The terminal API on a real aiohttp server on 127.0.0.1, driven by an independent client
(http.client only): the service loop's real terminal takes each payment from a simulated phone
over nfcpy's udp: driver, authorized by the host simulator. Keys, idempotency, bad input,
events, cancel, receipt, void, totals, settlement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from api_support import EventReader, Running, call, serve
from card_data_scan import leaks, wallet_tokens
from run_support import wait_until

from firmware.api.keys import ApiKeys

REPO = Path(__file__).resolve().parents[1]


def test_a_payment_is_taken_followed_and_its_receipt_read(api: Running, phone,
                                                          host_sim) -> None:
    events = EventReader(api.base, api.key).start()
    phone("visa-online", api.cfg.reader.path)
    started = api.pay("12.50", reference="till-0001")
    assert started.status == 201, started.body
    pid = started["id"]
    assert started["amount"] == "12.50" and started["currency"] == "EUR"
    assert started["reference"] == "till-0001" and started["finished"] is False
    done = api.finished(pid)
    assert done["outcome"] == "approved", done
    masked = str(done["masked_pan"])
    assert masked.startswith("476173") and sum(ch.isdigit() for ch in masked) <= 10
    outcome = events.wait_for(lambda e: e["type"] == "outcome" and e["payment_id"] == pid)
    assert outcome["payment"]["outcome"] == "approved"  # type: ignore[index]
    kinds = [e["type"] for e in events.events if e.get("payment_id") == pid]
    assert kinds.index("waiting_for_card") < kinds.index("card_read") < kinds.index("outcome")
    events.close()
    told = json.dumps([events.events, done]).encode()
    assert leaks(told, wallet_tokens()) == []  # no card number in an answer or an event
    found = api.call("GET", "/v1/payments?reference=till-0001")
    assert [p["id"] for p in found["payments"]] == [pid]  # type: ignore[index, union-attr]
    receipt = api.call("GET", f"/v1/payments/{pid}/receipt")
    assert receipt.status == 200
    text = "\n".join(receipt["lines"])  # type: ignore[arg-type]
    last4 = str(done["masked_pan"])[-4:]
    assert "EUR 12.50" in text and f"**** {last4}" in text
    assert leaks(json.dumps(receipt.body).encode(), wallet_tokens()) == []
    import base64

    assert b"12.50" in base64.b64decode(str(receipt["escpos_base64"]))
    totals = api.call("GET", "/v1/totals")
    assert (totals["sales_count"], totals["sales"]) == (1, "12.50")
    assert [r["approved"] for r in host_sim.ledger.transactions()] == [1]


def test_the_same_idempotency_key_never_charges_twice(api: Running, phone, host_sim) -> None:
    phone("visa-online", api.cfg.reader.path)
    first = api.pay("7.00", key="sale-42")
    assert first.status == 201
    api.finished(first["id"])  # type: ignore[arg-type]
    again = api.pay("7.00", key="sale-42")
    assert again.status == 201 and again["id"] == first["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert again["outcome"] == "approved"
    other = api.pay("8.00", key="sale-42")
    assert other.status == 422 and other["field"] == "Idempotency-Key"
    assert len(host_sim.ledger.transactions()) == 1
    assert len(api.terminal.journal.payments()) == 1


def test_one_payment_at_a_time_and_cancel_ends_the_wait(api: Running) -> None:
    first = api.pay("3.00")
    assert first.status == 201
    pid = first["id"]
    busy = api.pay("4.00")
    assert busy.status == 409 and busy["running"] == pid
    status = api.call("GET", "/v1/status")
    assert (status["state"], status["running"]) == ("busy", pid)
    cancelled = api.call("POST", f"/v1/payments/{pid}/cancel")
    assert cancelled.status == 200, cancelled.body
    assert cancelled["outcome"] == "cancelled"
    again = api.call("POST", f"/v1/payments/{pid}/cancel")
    assert again.status == 409
    assert wait_until(lambda: api.call("GET", "/v1/status")["state"] == "ready", seconds=30)


def test_a_payment_keyed_on_the_terminal_shows_in_the_api_and_cancels_from_it(
        make_config, host_sim) -> None:
    import os

    from drivers.keypad import KeyboardKeypad

    master, slave = os.openpty()  # the terminal's keyboard, as on a desk
    stream = os.fdopen(slave, "r")
    keypad = KeyboardKeypad(stream)
    try:
        with serve(make_config(host_sim.port, presentment_timeout_s=60.0), keypad) as api:
            events = EventReader(api.base, api.key).start()
            os.write(master, b"450\n")  # 4.50 keyed on the terminal
            waiting = events.wait_for(lambda e: e["type"] == "waiting_for_card")
            pid = waiting["payment_id"]
            assert isinstance(pid, int)
            status = api.call("GET", "/v1/status")
            assert (status["state"], status["running"]) == ("busy", pid)
            assert api.pay("1.00").status == 409  # one payment at a time, whoever started it
            cancelled = api.call("POST", f"/v1/payments/{pid}/cancel")
            assert cancelled.status == 200 and cancelled["outcome"] == "cancelled"
            outcome = events.wait_for(lambda e: e["type"] == "outcome")
            assert outcome["payment_id"] == pid
            events.close()
    finally:
        keypad.close()
        stream.close()
        os.close(master)
    assert host_sim.ledger.transactions() == []


def test_keys_are_needed_and_bad_ones_slowed_down(api: Running) -> None:
    assert call(api.base, "GET", "/v1/status").status == 401
    assert call(api.base, "GET", "/v1/status", "pitap_wrong").status == 401
    assert call(api.base, "GET", "/v1/openapi.json").status == 401
    for _ in range(3):
        call(api.base, "GET", "/v1/status", "pitap_wrong")
    locked = call(api.base, "GET", "/v1/status", "pitap_wrong")
    assert locked.status == 429 and int(locked.headers["retry-after"]) > 0
    assert call(api.base, "GET", "/v1/status", api.key).status == 429  # the address waits
    page = call(api.base, "GET", "/")  # the page's own files need no key
    assert page.status == 200 and b"<html" in page.body  # type: ignore[operator]


def test_revoked_key_is_refused_at_once(api: Running) -> None:
    keys = ApiKeys(api.cfg.state_path(api.cfg.api.keys_file))
    other = keys.add("phone")
    assert call(api.base, "GET", "/v1/status", other).status == 200
    keys.revoke("phone")
    assert call(api.base, "GET", "/v1/status", other).status == 401


def test_a_foreign_origin_is_refused_and_no_cors_headers(api: Running) -> None:
    refused = api.call("GET", "/v1/status", headers={"Origin": "https://evil.example"})
    assert refused.status == 403
    own = api.call("GET", "/v1/status", headers={"Origin": api.base})
    assert own.status == 200
    assert not any(h.startswith("access-control-") for h in own.headers)
    page = call(api.base, "GET", "/", headers={"Origin": "https://evil.example"})
    assert page.status == 403
    page = call(api.base, "GET", "/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"amount": 12.5}', "amount"),
        (b'{"amount": "12.505"}', "amount"),
        (b'{"amount": "-1"}', "amount"),
        (b'{"amount": "0"}', "amount"),
        (b'{"amount": "1e3"}', "amount"),
        (b'{"amount": "12.50", "colour": "red"}', "colour"),
        (b'{"amount": "12.50", "currency": "XXX"}', "currency"),
        (b'{"amount": "12.50", "currency": 978}', "currency"),
        (b'{"amount": "12.50", "type": "preauthorization"}', "type"),
        (b'{"amount": "12.50", "reference": 7}', "reference"),
        (b'{"amount": "12.50", "refund_of": "1"}', "refund_of"),
        (b'{"amount": "99999999.00"}', "amount"),
        (b'{"currency": "EUR"}', "amount"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_nothing_starts(api: Running, raw: bytes,
                                                              field: str) -> None:
    answer = api.call("POST", "/v1/payments", raw=raw, headers={"Idempotency-Key": "k1"})
    assert answer.status == 400, answer.body
    assert answer["field"] == field, answer.body
    assert api.terminal.journal.payments() == []


def test_no_idempotency_key_is_400_and_unknown_ids_404(api: Running) -> None:
    answer = api.call("POST", "/v1/payments", {"amount": "1.00"})
    assert (answer.status, answer["field"]) == (400, "Idempotency-Key")
    for method, path in [("GET", "/v1/payments/999"), ("POST", "/v1/payments/999/cancel"),
                         ("GET", "/v1/payments/999/receipt"), ("POST", "/v1/payments/999/void"),
                         ("GET", "/v1/nothing")]:
        assert api.call(method, path).status == 404, path
    assert api.terminal.journal.payments() == []


def test_void_refund_and_settlement(api: Running, phone, host_sim) -> None:
    phone("visa-online", api.cfg.reader.path, taps=2)
    sale = api.pay("20.00")
    sale_id = sale["id"]
    assert api.finished(sale_id)["outcome"] == "approved"  # type: ignore[arg-type]
    refund = api.pay("5.00", type="refund", refund_of=sale_id)
    assert refund.status == 201, refund.body
    assert api.finished(refund["id"])["outcome"] == "approved"  # type: ignore[arg-type]
    voided = api.call("POST", f"/v1/payments/{sale_id}/void")
    assert voided.status == 409, voided.body  # refunded in part: refund the rest instead
    z = api.call("POST", "/v1/settlement")
    assert z.status == 200 and z["closed"] is True, z.body
    assert z["totals"] == {"sales_count": 1, "sales_amount": 2000, "refunds_count": 1,
                           "refunds_amount": 500}


def test_a_pre_authorization_is_held_raised_and_completed(api: Running, phone) -> None:
    phone("visa-online", api.cfg.reader.path)
    hold = api.pay("50.00", type="preauth")
    assert hold.status == 201 and hold["type"] == "preauth"
    assert api.finished(hold["id"])["outcome"] == "approved"  # type: ignore[arg-type]
    hid = hold["id"]
    raised = api.call("POST", f"/v1/payments/{hid}/increment", {"amount": "10.00"})
    assert raised.status == 200 and raised["done"] is True, raised.body
    assert raised["held"] == "60.00"
    bad = api.call("POST", f"/v1/payments/{hid}/complete", {"amount": "1.2.3"})
    assert (bad.status, bad["field"]) == (400, "amount")
    done = api.call("POST", f"/v1/payments/{hid}/complete", {"amount": "55.00"})
    assert done.status == 200 and done["done"] is True, done.body
    assert done["payment"]["type"] == "completion"  # type: ignore[index]
    late = api.call("POST", f"/v1/payments/{hid}/release")
    assert late.status == 409 and late["why"] == "completed"
    tipped = api.pay("5.00", type="preauth", tip="1.00")
    assert (tipped.status, tipped["field"]) == (400, "tip")


def test_the_served_openapi_document_is_the_repository_copy(api: Running) -> None:
    served = api.call("GET", "/v1/openapi.json")
    assert served.status == 200
    assert served.body == json.loads((REPO / "docs" / "openapi.json").read_text())
    paths = served["paths"]
    assert {"/v1/payments", "/v1/payments/{id}", "/v1/payments/{id}/cancel",
            "/v1/payments/{id}/receipt", "/v1/events", "/v1/status",
            "/v1/settlement"} <= set(paths)  # type: ignore[arg-type]


def test_off_loopback_the_api_is_https_with_the_fingerprint_diag_prints(make_config,
                                                                       host_sim) -> None:
    import hashlib
    import http.client
    import ssl

    from firmware.provision.diag import DiagContext, check_api

    with serve(make_config(host_sim.port), bind="127.0.0.2") as api:  # not 127.0.0.1
        assert api.base.startswith("https://127.0.0.2:")
        assert api.call("GET", "/v1/status").status == 200
        port = int(api.base.rsplit(":", 1)[1])
        plain = http.client.HTTPConnection("127.0.0.2", port, timeout=30)
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.request("GET", "/v1/status")
            plain.getresponse()
        plain.close()
        der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.2", port)))
        served = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
        results = check_api(DiagContext(api.cfg, interactive=False))
    assert [r.ok for r in results] == [True, True]
    assert served in results[1].detail
    key_file = api.cfg.state_path(api.cfg.api.tls_dir) / "key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
