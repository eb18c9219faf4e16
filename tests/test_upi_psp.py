"""The UPI PSP link: the real HTTP client (firmware.upi.http_psp, loaded through the `pitap.upi`
entry point) against the real simulated PSP (aiohttp on 127.0.0.1, a port from the OS). Every
test amount ends as documented; states are polled until they are final, with generous limits,
and no test asserts how long anything took."""

from __future__ import annotations

import dataclasses
import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from firmware.config import ConfigError
from firmware.upi.config import UpiSection
from firmware.upi.http_psp import HttpPsp
from firmware.upi.link import new_reference
from firmware.upi.psp import (
    CollectRequest,
    Psp,
    PspNoReply,
    PspRejected,
    PspUnavailable,
    UnknownRequest,
    UpiPayment,
    UpiStatus,
    connect_psp,
    mask_vpa,
    psp_names,
)
from simulators.upi.psp import PAYER_VPA, PspSimulator

LIMIT_S = 60.0  # a generous ceiling for a state the simulator reaches in a second or four


@pytest.fixture(scope="module")
def psp_sim() -> Iterator[PspSimulator]:
    with PspSimulator(pay_delay_s=0.5, slow_pay_delay_s=2.0) as sim:
        yield sim


def settings(url: str, **changes: object) -> UpiSection:
    return dataclasses.replace(UpiSection(payee_vpa="pitapdemo@okaxis", mcc="5411",
                                          psp_url=url, response_timeout_s=30.0), **changes)


@pytest.fixture
def client(psp_sim: PspSimulator) -> Psp:
    return connect_psp(settings(psp_sim.url))


def collect(amount: int, expires_in_s: int = 120) -> CollectRequest:
    return CollectRequest(reference=new_reference("PITAP001"), amount=amount,
                          payee_vpa="pitapdemo@okaxis", payee_name="Pitap Demo Shop",
                          mcc="5411", note="Sale", expires_in_s=expires_in_s)


def poll_until(check: Callable[[], UpiPayment], done: Callable[[UpiPayment], bool]
               ) -> tuple[UpiPayment, list[UpiStatus]]:
    """Ask until `done`, at most LIMIT_S; every status seen on the way, in order."""
    seen: list[UpiStatus] = []
    deadline = time.monotonic() + LIMIT_S
    while True:
        payment = check()
        seen.append(payment.status)
        if done(payment):
            return payment, seen
        assert time.monotonic() < deadline, f"still {payment.status} after {LIMIT_S} s"
        time.sleep(0.05)


def test_the_http_plugin_is_found_by_name() -> None:
    assert "http" in psp_names()
    assert isinstance(connect_psp(settings("http://127.0.0.1:9")), HttpPsp)
    with pytest.raises(ConfigError, match="upi.psp: no PSP plug-in named 'acme'"):
        connect_psp(settings("http://127.0.0.1:9", psp="acme"))


def test_a_payment_is_pending_until_the_payer_pays(client: Psp) -> None:
    request = collect(25000)
    created = client.create(request)
    assert (created.status, created.amount, created.reference) == (
        UpiStatus.PENDING, 25000, request.reference)
    paid, seen = poll_until(lambda: client.status(request.reference), lambda p: p.status.final)
    assert paid.status is UpiStatus.SUCCESS and set(seen[:-1]) <= {UpiStatus.PENDING}
    assert paid.amount == 25000 and paid.psp_reference.isdigit()
    assert paid.payer == mask_vpa(PAYER_VPA) and PAYER_VPA not in repr(paid)
    assert PAYER_VPA.split("@")[0] not in paid.payer
    # final stays final, and a repeated create (answer lost, asked again) is the same payment
    assert client.status(request.reference) == paid
    assert client.create(request) == paid


def test_declining_payer_is_a_failure(client: Psp) -> None:
    request = collect(25005)
    client.create(request)
    failed, _ = poll_until(lambda: client.status(request.reference), lambda p: p.status.final)
    assert failed.status is UpiStatus.FAILURE and failed.reason == "payer declined"
    assert failed.psp_reference == "" and failed.payer == ""


def test_pending_then_success(client: Psp) -> None:
    request = collect(25007)
    client.create(request)
    paid, seen = poll_until(lambda: client.status(request.reference), lambda p: p.status.final)
    assert paid.status is UpiStatus.SUCCESS
    assert seen.count(UpiStatus.PENDING) >= 1 and seen[-1] is UpiStatus.SUCCESS


def test_a_payer_who_never_pays_expires(client: Psp) -> None:
    request = collect(25008, expires_in_s=1)
    client.create(request)
    ended, seen = poll_until(lambda: client.status(request.reference), lambda p: p.status.final)
    assert ended.status is UpiStatus.EXPIRED and ended.reason == "request expired"
    assert UpiStatus.SUCCESS not in seen


def test_cancel_withdraws_a_pending_request(client: Psp) -> None:
    request = collect(25008)
    client.create(request)
    cancelled = client.cancel(request.reference)
    assert cancelled.status is UpiStatus.EXPIRED and cancelled.reason == "cancelled"
    assert client.status(request.reference).status is UpiStatus.EXPIRED


def test_cancel_after_the_payer_paid_is_still_money_received(client: Psp) -> None:
    request = collect(25000)
    client.create(request)
    poll_until(lambda: client.status(request.reference), lambda p: p.status.final)
    assert client.cancel(request.reference).status is UpiStatus.SUCCESS


def test_no_answer_to_create_then_the_status_tells(psp_sim: PspSimulator) -> None:
    impatient = connect_psp(settings(psp_sim.url, response_timeout_s=0.5))
    request = collect(25096)
    with pytest.raises(PspNoReply, match="no reply"):
        impatient.create(request)  # booked at the PSP; its answer never comes
    client = connect_psp(settings(psp_sim.url))
    paid, _ = poll_until(lambda: client.status(request.reference), lambda p: p.status.final)
    assert paid.status is UpiStatus.SUCCESS and paid.amount == 25096


def test_unknown_reference_and_conflicting_reuse_are_refused(client: Psp) -> None:
    with pytest.raises(UnknownRequest):
        client.status("NEVERCREATED1")
    request = collect(10000)
    client.create(request)
    with pytest.raises(PspRejected, match="409"):
        client.create(dataclasses.replace(request, amount=20000))
    with pytest.raises(PspRejected, match="not a UPI transaction reference"):
        client.status("../../etc")


def test_a_malformed_request_is_refused_by_the_psp(client: Psp) -> None:
    with pytest.raises(PspRejected, match="400.*payee_vpa"):
        client.create(dataclasses.replace(collect(100), payee_vpa="not-a-vpa"))


def test_nobody_listening_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(PspUnavailable, match="PSP unavailable"):
            connect_psp(settings(f"http://127.0.0.1:{port}")).create(collect(100))


class Garbler(http.server.BaseHTTPRequestHandler):
    """A server answering each request with something that is not a payment."""

    replies: list[tuple[int, bytes]] = []

    def _answer(self) -> None:
        code, body = self.replies.pop(0)
        if code == 0:  # drop the connection without a word
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (200, b"not json"),
        (200, b"[]"),
        (200, b'{"reference": "R1", "status": "PAID", "amount": "1.00"}'),
        (200, b'{"reference": "R1", "status": "SUCCESS", "amount": "1.0"}'),
        (200, b'{"reference": "R1", "status": "SUCCESS", "amount": "-1.00"}'),
        (200, b'{"reference": "R2", "status": "SUCCESS", "amount": "1.00"}'),
        (200, b'{"status": "SUCCESS", "amount": "1.00"}'),
        (200, b"[" * 100_000),
        (200, b'{"reference": "R1", "status": "SUCCESS", "amount": "1.00", "x": "'
              + b"y" * 200_000 + b'"}'),
        (500, b'{"reference": "R1", "status": "SUCCESS", "amount": "1.00"}'),
        (0, b""),
    ],
)
def test_a_garbled_answer_is_no_reply_never_a_success(code: int, body: bytes) -> None:
    Garbler.replies = [(code, body)]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = connect_psp(settings(f"http://127.0.0.1:{server.server_address[1]}"))
        with pytest.raises(PspNoReply):
            client.status("R1")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("vpa", "masked"), [("rahul.k@okicici", "ra*****@okicici"),
                                             ("abc@ybl", "a***@ybl"), ("x@ybl", "x***@ybl")])
def test_payer_vpas_are_masked(vpa: str, masked: str) -> None:
    assert mask_vpa(vpa) == masked


def test_the_simulator_command_on_a_taken_port_is_one_line(capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    from simulators.upi.psp import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["--port", str(taken.getsockname()[1])]) == 2
    out = capsys.readouterr().out
    assert out.startswith("PSP simulator: cannot listen on 127.0.0.1:") and out.count("\n") == 1


class Dripper(http.server.BaseHTTPRequestHandler):
    """A valid SUCCESS reply, a byte at a time, far slower than the client's reply limit."""

    def do_GET(self) -> None:
        body = b'{"reference": "R1", "status": "SUCCESS", "amount": "1.00"}'
        head = (b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() +
                b"\r\n\r\n")
        try:
            for byte in head + body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.1)  # 50+ bytes: 5 s or more, against a 0.5 s limit
        except OSError:
            pass  # the client gave up on us, as it should

    def log_message(self, *args: object) -> None:
        pass


def test_a_reply_dripping_in_is_cut_off_as_no_reply() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dripper)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = connect_psp(settings(f"http://127.0.0.1:{server.server_address[1]}",
                                      response_timeout_s=0.5))
        with pytest.raises(PspNoReply):
            client.status("R1")
    finally:
        server.shutdown()
        server.server_close()
