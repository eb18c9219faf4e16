"""The API's routes (aiohttp): /v1 for tills, / for the cashier page.

Every handler answers JSON (errors: {"error": ..., "field": ...}); the payment work itself runs
on the service loop (firmware.api.jobs), the handlers only check, queue, wait and show. The
OpenAPI document (openapi.json beside this module) describes every route; a test keeps the
repository's copy (docs/openapi.json) equal to what is served.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from drivers.printer import encode
from firmware.api import API_VERSION
from firmware.api.auth import BadKeys, auth_middleware, error
from firmware.api.events import EventHub
from firmware.api.jobs import CallJob, NotStarted, PaymentJob
from firmware.api.keys import ApiKeys
from firmware.api.requests import (
    BadRequest,
    hold_amount,
    idempotency_key,
    parse_json,
    payment_request,
    tip_request,
)
from firmware.api.views import RUNNING, decimal, payment_view
from firmware.config import Config
from firmware.journal import Journal, UnknownPayment
from firmware.payment import PaymentOutcome, PaymentState, Tender
from firmware.receipt import ReceiptBuilder, receipt_lines, receipt_qr_payload
from firmware.service import TerminalService
from firmware.terminal import RefundRefused
from firmware.upi.tender import UpiRefused
from ui.lang import load as load_language

__all__ = ["ApiContext", "TerminalStatus", "make_app", "openapi_document"]

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC = HERE / "static"
MAX_BODY = 64 * 1024
START_WAIT_S = 30.0  # how long a POST waits for the loop to take its payment
END_WAIT_S = 120.0  # how long a cancel (or void...) waits for the loop's answer
POLL_S = 0.05
KEEPALIVE_S = 15.0
T = TypeVar("T")


class TerminalStatus(enum.StrEnum):
    """`GET /v1/status`'s state."""

    READY = "ready"
    BUSY = "busy"  # a payment runs (or a till's waits to start)
    OUT_OF_SERVICE = "out_of_service"  # the screen says so (a reader fault, ...)


# Every answer: no sniffing of types, no framing by other sites, the page's own files only.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3 document shipped in the package."""
    doc: dict[str, Any] = json.loads((HERE / "openapi.json").read_text(encoding="utf-8"))
    return doc


@dataclass
class ApiContext:
    """What the handlers share: the service (its terminal, journal, screen) and the API's own
    state (keys, bad keys, events, the payment job in flight by Idempotency-Key)."""

    service: TerminalService
    keys: ApiKeys
    bad: BadKeys = field(default_factory=BadKeys)
    hub: EventHub | None = None
    pending: dict[str, PaymentJob] = field(default_factory=dict)
    current: PaymentJob | None = None

    @property
    def cfg(self) -> Config:
        return self.service.terminal.cfg

    @property
    def journal(self) -> Journal:
        return self.service.terminal.journal

    def view(self, payment_id: int) -> dict[str, object]:
        """The payment as the API shows it, with the till's reference when a till started it."""
        asked = self.journal.api_requests.by_payment(payment_id)
        return payment_view(self.journal.payment(payment_id), asked.reference if asked else "")

    def running(self) -> int | None:
        """The payment that runs now (keypad or API), or None."""
        if self.service.running_id is not None:
            return self.service.running_id
        job = self.current
        if job is not None and not job.done.done() and not job.started.done():
            return 0  # queued, or taken and not journalled yet
        return None  # (a started job's payment is the service's running_id until it ends)


CONTEXT = web.AppKey("pitap_api", ApiContext)


def ctx_of(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]


async def wait(fut: Future[T], seconds: float) -> T:
    """A concurrent future's result, awaited without cancelling it on a timeout."""
    return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), seconds)


async def run_job(ctx: ApiContext, call: Callable[[TerminalService], T],
                  then: Callable[[TerminalService], object] | None = None) -> T:
    job: CallJob[T] = CallJob(call, then=then)
    ctx.service.jobs.put(job)
    return await wait(job.done, END_WAIT_S)


def payment_id(request: web.Request) -> int:
    """The {id} of the path, known to the journal; 404 otherwise."""
    pid = int(request.match_info["id"])
    try:
        ctx_of(request).journal.payment(pid)
    except UnknownPayment:
        raise web.HTTPNotFound(text=json.dumps({"error": f"no payment {pid}", "field": "id"}),
                               content_type="application/json") from None
    return pid


async def body_of(request: web.Request) -> dict[str, object]:
    return parse_json(await request.read())


# ---- middlewares --------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """BadRequest -> 400 naming the field; aiohttp's own (404, 405, 413) as JSON; anything else
    500 in one line, the traceback in the terminal's log only."""
    try:
        return await handler(request)
    except BadRequest as exc:
        return error(400, str(exc), exc.field)
    except web.HTTPException as exc:
        if exc.content_type == "application/json":
            raise
        return error(exc.status, exc.reason)
    except Exception:
        log.exception("API %s %s failed", request.method, request.path)
        return error(500, "the terminal failed to answer (see its log)")


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No caching (answers change with every payment) and SECURITY_HEADERS."""
    response = await handler(request)
    if not response.prepared:  # (an event stream has sent its headers already)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.update(SECURITY_HEADERS)
    return response


# ---- the page -----------------------------------------------------------------------------

async def page(_request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


# ---- /v1 ----------------------------------------------------------------------------------

async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def status(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    running = ctx.running()
    shown = ctx.service.feedback.last_screen
    state = TerminalStatus.BUSY if running is not None else (
        TerminalStatus.OUT_OF_SERVICE if shown is not None and shown.name == "out_of_service"
        else TerminalStatus.READY)
    stored = ctx.service.terminal.stored()
    cur = ctx.cfg.currency
    return web.json_response({
        "state": state.value, "running": running or None,
        "terminal_id": ctx.cfg.terminal.terminal_id,
        "currency": cur.alpha, "batch": ctx.journal.open_batch(), "api_version": API_VERSION,
        "upi": ctx.service.upi is not None,  # tender "upi" is taken (INR, [upi] configured)
        "stored_offline": {"count": stored.count, "amount": decimal(stored.amount, cur.exponent),
                           "declined_late": stored.declined_late},
    })


async def create_payment(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    upi = ctx.service.upi
    req = payment_request(ctx.cfg, await body_of(request), upi_ready=upi is not None)
    if req.tender is Tender.UPI and upi is not None:
        try:  # its amount as the link takes it (upi.max_amount, ...): nothing started
            upi.check(req.amount, ctx.cfg.currency)
        except UpiRefused as exc:
            raise BadRequest(str(exc), "amount") from None
    key = idempotency_key(request.headers.get("Idempotency-Key"))
    fingerprint = req.fingerprint()
    job = ctx.pending.get(key)
    known = None if job is not None else ctx.journal.api_requests.by_key(key)
    if (job is not None and job.request.fingerprint() != fingerprint) or (
            known is not None and known.fingerprint != fingerprint):
        return error(422, "this Idempotency-Key was used for another request",
                     "Idempotency-Key")
    if known is not None:
        return replayed(ctx, known.payment_id)
    if job is None:
        running = ctx.running()
        if running is not None:
            return error(409, "a payment is running; one at a time", running=running or None)
        job = PaymentJob(req, key)
        ctx.pending[key], ctx.current = job, job
        ctx.service.jobs.put(job)
        fresh = True
    else:
        fresh = False
    try:
        pid = await wait(job.started, START_WAIT_S)
    except TimeoutError:
        job.abandoned = True
        return error(503, "the terminal did not take the payment; nothing started")
    except NotStarted:
        return error(500, "the payment did not start; nothing charged")
    except (RefundRefused, UpiRefused) as exc:  # nothing started
        return error(409, str(exc), "refund_of")
    finally:
        if ctx.pending.get(key) is job and job.started.done():
            del ctx.pending[key]
    return replayed(ctx, pid) if not fresh else web.json_response(ctx.view(pid), status=201)


def replayed(ctx: ApiContext, pid: int) -> web.Response:
    return web.json_response(ctx.view(pid), status=201, headers={"Idempotent-Replayed": "true"})


async def list_payments(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    unknown = set(request.query) - {"reference", "last"}
    if unknown:
        raise BadRequest(f"unknown query parameter {sorted(unknown)[0][:40]!r}",
                         sorted(unknown)[0][:40])
    if "reference" in request.query:
        found = ctx.journal.api_requests.by_reference(request.query["reference"])
        return web.json_response({"payments": [ctx.view(r.payment_id) for r in found]})
    last = request.query.get("last", "20")
    if not last.isdigit() or not 1 <= int(last) <= 500:
        raise BadRequest("last: a whole number 1..500", "last")
    payments = ctx.journal.payments(last=int(last))
    return web.json_response({"payments": [ctx.view(p.id) for p in payments]})


async def get_payment(request: web.Request) -> web.Response:
    return web.json_response(ctx_of(request).view(payment_id(request)))


async def cancel_payment(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    pid = payment_id(request)
    p = ctx.journal.payment(pid)
    if p.state in (PaymentState.CARD_READ, PaymentState.AWAITING_REPLY) or p.state not in RUNNING:
        why = "the card is already read" if p.state in RUNNING else "the payment has ended"
        return error(409, f"payment {pid} cannot be cancelled: {why}", payment=ctx.view(pid))
    if not ctx.service.cancel(pid):
        return error(409, f"payment {pid} is not running here", payment=ctx.view(pid))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + END_WAIT_S
    while ctx.journal.payment(pid).state in RUNNING and loop.time() < deadline:
        await asyncio.sleep(POLL_S)  # the loop ends the wait at its next poll of the reader
    view = ctx.view(pid)
    if view["outcome"] != PaymentOutcome.CANCELLED.value:
        first = "the payer had paid first" if p.tender is Tender.UPI else "the card was read first"
        return error(409, f"payment {pid} was not cancelled: {first}", payment=view)
    return web.json_response(view)


async def receipt(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    pid = payment_id(request)
    p = ctx.journal.payment(pid)
    if p.state in RUNNING:
        return error(409, f"payment {pid} is still running: no receipt yet")
    feedback = ctx.service.feedback
    lang = feedback.lang if feedback.lang.printable else load_language("en")
    builder = feedback.receipt_builder or ReceiptBuilder.from_config(ctx.cfg)
    data = p.as_dict()
    lines = receipt_lines(builder, data, "customer", lang)
    qr = receipt_qr_payload(builder, data, feedback.lang)
    return web.json_response({
        "payment_id": pid,
        "lines": [line.text for line in lines],
        "escpos_base64": base64.b64encode(encode(lines)).decode("ascii"),
        "qr": qr,
        "url": qr if builder.url else None,  # the e-receipt address, when one is configured
    })


async def void(request: web.Request) -> web.Response:
    from firmware.void import VoidRefused

    ctx = ctx_of(request)
    pid = payment_id(request)
    if ctx.running() is not None:
        return error(409, "a payment is running; one at a time", running=ctx.running() or None)
    try:
        result = await run_job(ctx, lambda s: s.void_shown(pid), then=lambda s: s.hold())
    except VoidRefused as exc:
        return error(409, str(exc), why=exc.why.value)
    return web.json_response({"voided": result.voided, "pending": result.pending,
                              "payment": ctx.view(pid)})


async def tip(request: web.Request) -> web.Response:
    from firmware.tips import TipRefused, adjust_tip

    ctx = ctx_of(request)
    pid = payment_id(request)
    amount = tip_request(ctx.cfg, await body_of(request))
    cfg = ctx.cfg
    try:
        result = await run_job(ctx, lambda s: adjust_tip(
            s.terminal.journal, s.terminal.saf, pid, amount, cfg.tips, cfg.currency))
    except TipRefused as exc:
        return error(409, str(exc), "tip", why=exc.why.value)
    return web.json_response({"adjusted": result.adjusted, "pending": result.pending,
                              "refused": result.refused, "payment": ctx.view(pid)})


async def on_hold(request: web.Request) -> web.Response:
    """increment / complete / release of a pre-authorization's hold (firmware.preauth)."""
    from firmware.preauth import (
        HoldRefused,
        HoldResult,
        complete_hold,
        increment_hold,
        release_hold,
    )

    ctx = ctx_of(request)
    hold_id = payment_id(request)
    action = request.match_info["action"]
    data = await body_of(request) if request.can_read_body else {}
    if action == "release" and data:
        raise BadRequest("release takes no body fields", sorted(data)[0][:40])
    amount = hold_amount(ctx.cfg, data, required=action == "increment") if data or \
        action == "increment" else None
    if ctx.running() is not None:
        return error(409, "a payment is running; one at a time", running=ctx.running() or None)
    cfg = ctx.cfg

    def act(s: TerminalService) -> HoldResult:
        t = s.terminal
        if action == "increment":
            assert amount is not None
            return increment_hold(t.journal, t.acquirer, t.saf, hold_id, amount, cfg)
        if action == "complete":
            return complete_hold(t.journal, t.saf, hold_id, amount, cfg)
        return release_hold(t.journal, t.saf, hold_id, cfg)

    try:
        result = await run_job(ctx, act)
    except HoldRefused as exc:
        return error(409, str(exc), why=exc.why.value)
    return web.json_response({"action": result.action, "done": result.done,
                              "pending": result.pending, "held": decimal(
                                  result.hold.held, cfg.currency.exponent),
                              "hold": ctx.view(result.hold.id),
                              "payment": ctx.view(result.payment.id)})


async def totals(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    cur = ctx.cfg.currency
    batch = ctx.journal.open_batch()
    t = ctx.journal.batch_totals(batch, cur)
    tips_count, tips = ctx.journal.tip_totals(batch, cur)
    return web.json_response({
        "batch": batch, "currency": cur.alpha,
        "sales_count": t.sales_count, "sales": decimal(t.sales_amount, cur.exponent),
        "refunds_count": t.refunds_count, "refunds": decimal(t.refunds_amount, cur.exponent),
        "net": decimal(t.net.minor, cur.exponent),
        "tips_count": tips_count, "tips": decimal(tips.minor, cur.exponent),
    })


async def settlement(request: web.Request) -> web.Response:
    from firmware.host.acquirer import HostUnavailable, NoReply
    from firmware.host.settlement import BatchNotClosed

    ctx = ctx_of(request)
    if ctx.running() is not None:
        return error(409, "a payment is running; one at a time", running=ctx.running() or None)
    try:
        report = await run_job(ctx, lambda s: s.close_batch(), then=lambda s: s.hold())
    except (BatchNotClosed, HostUnavailable, NoReply) as exc:
        return error(503, f"batch not closed: {exc}", closed=False)
    return web.json_response(report.as_dict(), status=200 if report.closed else 502)


async def events(request: web.Request) -> web.StreamResponse:
    hub = ctx_of(request).hub
    if hub is None:
        return error(503, "events are not available")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
    await response.prepare(request)
    q = hub.subscribe()
    try:
        await response.write(b": pitap events\n\n")
        while True:
            try:
                event = await asyncio.wait_for(q.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:  # the server stops
                break
            seq, kind, body = event
            await response.write(
                f"id: {seq}\nevent: {kind}\ndata: {json.dumps(body)}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        hub.unsubscribe(q)
    return response


def make_app(ctx: ApiContext) -> web.Application:
    app = web.Application(middlewares=[errors, headers, auth_middleware(ctx.keys, ctx.bad)],
                          client_max_size=MAX_BODY)
    app[CONTEXT] = ctx
    pid = "{id:[0-9]{1,18}}"
    app.router.add_get("/", page)
    app.router.add_static("/static/", STATIC, show_index=False)
    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_get("/v1/status", status)
    app.router.add_post("/v1/payments", create_payment)
    app.router.add_get("/v1/payments", list_payments)
    app.router.add_get(f"/v1/payments/{pid}", get_payment)
    app.router.add_post(f"/v1/payments/{pid}/cancel", cancel_payment)
    app.router.add_get(f"/v1/payments/{pid}/receipt", receipt)
    app.router.add_post(f"/v1/payments/{pid}/void", void)
    app.router.add_post(f"/v1/payments/{pid}/tip", tip)
    app.router.add_post(f"/v1/payments/{pid}/{{action:increment|complete|release}}", on_hold)
    app.router.add_get("/v1/totals", totals)
    app.router.add_post("/v1/settlement", settlement)
    app.router.add_get("/v1/events", events)
    return app
