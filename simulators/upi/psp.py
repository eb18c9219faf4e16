"""The PSP simulator: the JSON API firmware.upi.http_psp speaks, served by aiohttp on 127.0.0.1,
and a simulated payer who scans the QR and pays `pay_delay_s` after the request is created.

Test amounts, by the amount's last two digits in paise (e.g. 250.05 INR -> 05):
  05  the payer declines: FAILURE ("payer declined") after pay_delay_s
  07  pending, then success: PENDING for slow_pay_delay_s, then SUCCESS
  08  the payer never pays: PENDING until the request expires (expires_in_s), then EXPIRED
  96  no answer: the request is booked and paid as usual, but the reply to its create never
      comes (the terminal must ask the status to learn the outcome)
  anything else: SUCCESS after pay_delay_s
A pending request that is cancelled ends EXPIRED ("cancelled"); one already paid stays SUCCESS.
A paid request can be refunded (POST .../refund, our refund reference and an amount): SUCCESS at
once while the refunds stay within what was paid, FAILURE past it or for an unpaid request; the
same refund asked again gets the same answer.
Time is the simulator's `clock` (time.monotonic), read when a request is asked about: nothing
runs in the background.

    with PspSimulator(pay_delay_s=1.0) as psp:
        psp.url  # "http://127.0.0.1:<port from the OS>"

`python -m simulators.upi.psp [--port P] [--pay-delay S]` runs it in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

DECLINES, PAYS_LATE, NEVER_PAYS, NEVER_ANSWERS = 5, 7, 8, 96
PAYER_VPA = "testpayer.rahul@okicici"
REFERENCE = re.compile(r"[A-Za-z0-9]{1,35}")
AMOUNT = re.compile(r"[0-9]{1,7}\.[0-9]{2}")
VPA = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}@[A-Za-z][A-Za-z0-9.-]{1,63}")


@dataclass
class _Request:
    """One collect request as the simulated PSP holds it."""

    reference: str
    amount: str  # "250.00", as asked
    body: dict[str, Any]  # the create request, to recognise a repeat
    created: float
    expires: float
    cancelled_at: float | None = None
    psp_reference: str = ""

    @property
    def code(self) -> int:
        return int(self.amount.replace(".", "")) % 100


class PspSimulator:
    """`PspSimulator(port=0).start()`; `.url`, `.port`; `.stop()` (or use it as a context)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, pay_delay_s: float = 1.0,
                 slow_pay_delay_s: float = 4.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.host, self._port = host, port
        self.pay_delay_s, self.slow_pay_delay_s = pay_delay_s, slow_pay_delay_s
        self.clock = clock
        self.requests: dict[str, _Request] = {}
        self.refunds: dict[str, dict[str, Any]] = {}  # refund reference -> its answer
        self._lock = threading.Lock()
        self._rrn = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def start(self) -> PspSimulator:
        loop = asyncio.new_event_loop()
        started: list[BaseException | None] = []
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_site())
                started.append(None)
            except BaseException as exc:  # reported to start()'s caller
                started.append(exc)
            ready.set()
            if started[0] is None:
                loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="psp-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if started[0] is not None:
            self._thread.join()
            raise started[0]
        log.info("PSP simulator on %s", self.url)
        return self

    async def _start_site(self) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.add_routes([web.post("/v1/requests", self._create),
                        web.get("/v1/requests/{reference}", self._status),
                        web.post("/v1/requests/{reference}/cancel", self._cancel),
                        web.post("/v1/requests/{reference}/refund", self._refund)])
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shut() -> None:
            assert self._stopping is not None and self._runner is not None
            self._stopping.set()  # requests left unanswered on purpose end now
            await self._runner.cleanup()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        self._loop = self._thread = None

    def __enter__(self) -> PspSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the payer -------------------------------------------------------------------------
    def _state(self, req: _Request) -> dict[str, Any]:
        """The request as the PSP reports it now."""
        now = self.clock()
        delay = self.slow_pay_delay_s if req.code == PAYS_LATE else self.pay_delay_s
        acts_at = None if req.code == NEVER_PAYS else req.created + delay
        ended = req.expires if req.cancelled_at is None else min(req.expires, req.cancelled_at)
        status, reason, payer = "PENDING", "", ""
        if acts_at is not None and acts_at <= now and acts_at < ended:
            if req.code == DECLINES:
                status, reason = "FAILURE", "payer declined"
            else:
                status, payer = "SUCCESS", PAYER_VPA
                if not req.psp_reference:
                    req.psp_reference = f"{633600000000 + next(self._rrn):012d}"
        elif ended <= now:
            cancelled = req.cancelled_at is not None and req.cancelled_at <= req.expires
            status, reason = "EXPIRED", "cancelled" if cancelled else "request expired"
        return {"reference": req.reference, "status": status, "amount": req.amount,
                "psp_reference": req.psp_reference if status == "SUCCESS" else "",
                "payer_vpa": payer, "reason": reason}

    # ---- the API ---------------------------------------------------------------------------
    async def _create(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "body is not JSON")
        problem = _create_problem(body)
        if problem:
            return _error(400, problem)
        with self._lock:
            known = self.requests.get(body["reference"])
            if known is not None and known.body != body:
                return _error(409, "reference already used for another payment")
            if known is None:
                now = self.clock()
                known = self.requests[body["reference"]] = _Request(
                    body["reference"], body["amount"], body, now, now + body["expires_in_s"])
                log.info("PSP: request %s for %s INR", known.reference, known.amount)
            state = self._state(known)
        if known.code == NEVER_ANSWERS:
            assert self._stopping is not None
            await self._stopping.wait()
            raise web.HTTPServiceUnavailable()
        return web.json_response(state, status=201)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            req = self.requests.get(request.match_info["reference"])
            if req is None:
                return _error(404, "no such request")
            return web.json_response(self._state(req))

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            req = self.requests.get(request.match_info["reference"])
            if req is None:
                return _error(404, "no such request")
            if self._state(req)["status"] == "PENDING":
                req.cancelled_at = self.clock()
            return web.json_response(self._state(req))


    async def _refund(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "body is not JSON")
        if not (isinstance(body, dict) and isinstance(body.get("refund_reference"), str)
                and REFERENCE.fullmatch(body["refund_reference"])
                and isinstance(body.get("amount"), str) and AMOUNT.fullmatch(body["amount"])
                and body["amount"] != "0.00"):
            return _error(400, "refund_reference, amount: missing or malformed")
        with self._lock:
            req = self.requests.get(request.match_info["reference"])
            if req is None:
                return _error(404, "no such request")
            key = body["refund_reference"]
            known = self.refunds.get(key)
            if known is not None:
                if known["of"] != req.reference or known["amount"] != body["amount"]:
                    return _error(409, "refund reference already used for another refund")
                return web.json_response(known["answer"])
            paid = self._state(req)["status"] == "SUCCESS"
            done = sum(_paise(r["amount"]) for r in self.refunds.values()
                       if r["of"] == req.reference and r["answer"]["status"] == "SUCCESS")
            ok = paid and done + _paise(body["amount"]) <= _paise(req.amount)
            answer = {"reference": key, "status": "SUCCESS" if ok else "FAILURE",
                      "amount": body["amount"],
                      "psp_reference": f"{733600000000 + next(self._rrn):012d}" if ok else "",
                      "payer_vpa": PAYER_VPA if ok else "",
                      "reason": "" if ok else ("not paid" if not paid else "more than paid")}
            self.refunds[key] = {"of": req.reference, "amount": body["amount"], "answer": answer}
            log.info("PSP: refund %s of %s: %s", key, req.reference, answer["status"])
            return web.json_response(answer)


def _paise(amount: str) -> int:
    return int(amount.replace(".", ""))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _create_problem(body: object) -> str:
    """Why a create request is malformed ('' when it is not), as a PSP would refuse it."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    checks = {
        "reference": lambda v: isinstance(v, str) and REFERENCE.fullmatch(v),
        "amount": lambda v: isinstance(v, str) and AMOUNT.fullmatch(v) and v != "0.00",
        "currency": lambda v: v == "INR",
        "payee_vpa": lambda v: isinstance(v, str) and VPA.fullmatch(v),
        "payee_name": lambda v: isinstance(v, str) and 0 < len(v) <= 99,
        "mcc": lambda v: isinstance(v, str) and re.fullmatch(r"[0-9]{4}", v),
        "note": lambda v: isinstance(v, str) and len(v) <= 50,
        "expires_in_s": lambda v: type(v) is int and 1 <= v <= 3600,
    }
    for key, ok in checks.items():
        if key not in body or not ok(body[key]):
            return f"{key}: missing or malformed"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.upi.psp",
                                     description="Run the simulated UPI PSP on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8600, help="TCP port (0: any free)")
    parser.add_argument("--pay-delay", type=float, default=3.0, metavar="S",
                        help="seconds the simulated payer takes to pay (default 3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        sim = PspSimulator(port=args.port, pay_delay_s=args.pay_delay).start()
    except OSError as exc:
        print(f"PSP simulator: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}")
        return 2
    print(f"PSP simulator on {sim.url} (Ctrl-C stops it)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
