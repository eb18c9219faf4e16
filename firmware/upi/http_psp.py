"""The default PSP plug-in (`http` in the `pitap.upi` group): a JSON-over-HTTP client of a
PSP's collect/intent API, on the standard library's http.client (one connection a call;
https verified against the system's CAs).

The API it speaks (simulators.upi implements it; a real PSP's is bridged to it):
  POST {psp_url}/v1/requests                 create: {"reference", "amount" ("250.00"),
                                             "currency": "INR", "payee_vpa", "payee_name", "mcc",
                                             "note", "expires_in_s"} -> 201/200 a payment
  GET  {psp_url}/v1/requests/{reference}     status -> 200 a payment, 404 unknown
  POST {psp_url}/v1/requests/{reference}/cancel  -> 200 a payment
  POST {psp_url}/v1/requests/{reference}/refund  {"refund_reference", "amount"} -> 200 a
                                             payment whose reference is the refund's
A payment: {"reference", "status" (SUCCESS|FAILURE|PENDING|EXPIRED), "amount", "psp_reference",
"payer_vpa", "reason"}. The payer's VPA is masked here, before it goes anywhere else.

Errors: no connection (or the request could not be sent whole) -> PspUnavailable; a timeout
after the request went out, a dropped connection, a server error or a body that is not such a
payment -> PspNoReply; another 4xx -> PspRejected (404 -> UnknownRequest).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from firmware.upi.link import REFERENCE, rupees
from firmware.upi.psp import (
    CollectRequest,
    PspNoReply,
    PspRejected,
    PspUnavailable,
    UnknownRequest,
    UpiPayment,
    UpiStatus,
    mask_vpa,
)

if TYPE_CHECKING:
    from firmware.upi.config import UpiSection

log = logging.getLogger(__name__)

MAX_REPLY = 64 * 1024  # bytes of a PSP reply read, at most


class HttpPsp:
    """`HttpPsp(settings)`: the PSP at `settings.psp_url`. One HTTP request a call."""

    def __init__(self, settings: UpiSection) -> None:
        self.url = urlsplit(settings.psp_url)
        self.prefix = self.url.path.rstrip("/")
        self.connect_timeout_s = settings.connect_timeout_s
        self.response_timeout_s = settings.response_timeout_s

    # ---- the Psp protocol ----------------------------------------------------------------
    def create(self, request: CollectRequest) -> UpiPayment:
        body = {"reference": request.reference, "amount": rupees(request.amount),
                "currency": "INR", "payee_vpa": request.payee_vpa,
                "payee_name": request.payee_name, "mcc": request.mcc, "note": request.note,
                "expires_in_s": request.expires_in_s}
        payment = self._call("POST", "/v1/requests", body)
        if payment.reference != request.reference or payment.amount != request.amount:
            raise PspNoReply(f"PSP answered for {payment.reference} {rupees(payment.amount)} "
                             f"INR, not the request {request.reference}")
        return payment

    def status(self, reference: str) -> UpiPayment:
        return self._expect(reference, self._call("GET", self._path(reference)))

    def cancel(self, reference: str) -> UpiPayment:
        return self._expect(reference, self._call("POST", self._path(reference) + "/cancel", {}))

    def refund(self, reference: str, refund_reference: str, amount: int) -> UpiPayment:
        self._path(refund_reference)  # checked like any reference
        body = {"refund_reference": refund_reference, "amount": rupees(amount)}
        answer = self._call("POST", self._path(reference) + "/refund", body)
        if answer.reference != refund_reference or answer.amount != amount:
            raise PspNoReply(f"PSP answered for {answer.reference} {rupees(answer.amount)} INR, "
                             f"not the refund {refund_reference}")
        return answer

    def close(self) -> None:
        """Nothing held between calls."""

    # ---- HTTP ----------------------------------------------------------------------------
    @staticmethod
    def _path(reference: str) -> str:
        if not REFERENCE.fullmatch(reference):
            raise PspRejected(f"not a UPI transaction reference: {reference[:40]!r}")
        return f"/v1/requests/{quote(reference)}"

    @staticmethod
    def _expect(reference: str, payment: UpiPayment) -> UpiPayment:
        if payment.reference != reference:
            raise PspNoReply(f"PSP answered for {payment.reference}, not {reference}")
        return payment

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> UpiPayment:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        where = f"PSP {method} {path}"
        conn = self._connection()
        try:
            try:
                conn.connect()
                assert conn.sock is not None
                conn.sock.settimeout(self.response_timeout_s)
                conn.request(method, self.prefix + path, body=data, headers=headers)
            except OSError as exc:  # refused, unreachable, TLS failed, or not sent whole
                raise PspUnavailable(f"{where}: PSP unavailable ({exc})") from None
            # the whole reply within response_timeout_s: a PSP dripping bytes is cut off too
            sock, cut = conn.sock, threading.Event()

            def cut_off() -> None:
                cut.set()
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

            watchdog = threading.Timer(self.response_timeout_s, cut_off)
            watchdog.daemon = True
            watchdog.start()
            try:
                reply = conn.getresponse()
                raw = reply.read(MAX_REPLY + 1)
            except (OSError, http.client.HTTPException) as exc:  # timeout, dropped, garbled
                raise PspNoReply(f"{where}: no reply ({exc or type(exc).__name__})") from None
            finally:
                watchdog.cancel()
            if cut.is_set():
                raise PspNoReply(f"{where}: no reply within {self.response_timeout_s:g} s")
        finally:
            conn.close()
        return self._payment(where, reply.status, raw)

    def _connection(self) -> http.client.HTTPConnection:
        if self.url.scheme == "https":
            return http.client.HTTPSConnection(self.url.hostname or "", self.url.port,
                                               timeout=self.connect_timeout_s,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.url.hostname or "", self.url.port,
                                          timeout=self.connect_timeout_s)

    @staticmethod
    def _payment(where: str, code: int, raw: bytes) -> UpiPayment:
        message = _json(raw)
        why = str(message.get("error", "")) if isinstance(message, dict) else ""
        if code == 404:
            raise UnknownRequest(f"{where}: the PSP knows no such request")
        if 400 <= code < 500:
            raise PspRejected(f"{where}: refused ({code}{': ' + why[:120] if why else ''})")
        if code not in (200, 201):
            raise PspNoReply(f"{where}: PSP error {code}")
        try:
            assert isinstance(message, dict)
            amount = _paise(message["amount"])
            payer = message.get("payer_vpa") or ""
            return UpiPayment(
                reference=_text(message["reference"]), status=UpiStatus(message["status"]),
                amount=amount, psp_reference=_text(message.get("psp_reference") or ""),
                payer=mask_vpa(_text(payer)) if payer else "",
                reason=_text(message.get("reason") or ""))
        except (AssertionError, KeyError, ValueError, TypeError):
            log.warning("%s: unusable reply (%d bytes)", where, len(raw))
            raise PspNoReply(f"{where}: unusable reply") from None


def _json(raw: bytes) -> object:
    if len(raw) > MAX_REPLY:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _text(value: object, limit: int = 256) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError("not a short text")
    return value


def _paise(value: object) -> int:
    """'250.00' -> 25000; anything but rupees with two decimals is a ValueError."""
    text = _text(value, 16)
    whole, dot, frac = text.partition(".")
    if not (whole.isdigit() and dot and len(frac) == 2 and frac.isdigit() and whole.isascii()
            and frac.isascii()):
        raise ValueError(f"not an amount: {text!r}")
    return int(whole) * 100 + int(frac)
