"""The API's requests as jobs of the service loop (firmware.service.Job): run between taps, on
the terminal and screen the keypad uses, one at a time.

A `PaymentJob` (a card payment, or with tender "upi" a UPI one: TerminalService.take_upi, as
the keypad's B; the refund of a UPI payment goes to its payer through the PSP, as
`pitap refund --of`) answers twice: `started` (the journal payment's id, once its
Idempotency-Key is recorded with it: the 201) and `done` (the PaymentResult). A `CallJob`
runs one function with the service (a void, a tip adjustment, a settlement) and answers with
what it returns or raises.
Both answer through concurrent futures, which the API's event loop awaits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from firmware.api.requests import PaymentRequest
from firmware.errors import PitapError
from firmware.payment import PaymentOutcome, Tender, TxnType
from firmware.service import CANCELLED_SHOWN_S, TerminalService

if TYPE_CHECKING:
    from firmware.terminal import PaymentResult

__all__ = ["CallJob", "PaymentJob"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class NotStarted(PitapError, RuntimeError):
    """The payment ended before it was journalled (nothing charged)."""


@dataclass
class PaymentJob:
    request: PaymentRequest
    idempotency_key: str
    started: Future[int] = field(default_factory=Future)
    done: Future[PaymentResult] = field(default_factory=Future)
    abandoned: bool = False  # the requester gave up before the loop took it: never run

    def run(self, service: TerminalService) -> None:
        if self.abandoned:
            self.started.cancel()
            self.done.cancel()
            return
        req = self.request

        def journalled(pid: int) -> None:
            try:
                service.terminal.journal.api_requests.remember(
                    self.idempotency_key, pid, req.reference, req.fingerprint())
            except Exception as exc:
                self.started.set_exception(exc)
                raise  # the payment ends as an error before any wait: nothing charged
            self.started.set_result(pid)

        try:
            if req.tender is Tender.UPI:  # a dynamic QR (firmware.upi.tender)
                result = service.take_upi(req.amount, on_started=journalled)
            elif req.txn_type is TxnType.REFUND and service.upi is not None and \
                    service.paid_by_upi(req.refund_of):  # back to its payer, as refund --of
                assert req.refund_of is not None
                result = service.refund_upi(req.refund_of, req.amount, on_started=journalled)
            else:
                result = service.take(req.amount, req.txn_type, tip=req.tip,
                                      refund_of=req.refund_of, on_started=journalled)
        except Exception as exc:  # RefundRefused, UpiRefused: nothing started
            if not self.started.done():
                self.started.set_exception(exc)
            self.done.set_exception(exc)
            return
        if not self.started.done():
            self.started.set_exception(NotStarted("the payment did not start"))
        self.done.set_result(result)
        service.hold(CANCELLED_SHOWN_S if result.outcome is PaymentOutcome.CANCELLED else None)


@dataclass
class CallJob(Generic[T]):
    """`call(service)` answered through `done`; then `then(service)` (a hold of the screen it
    left), after the answer went."""

    call: Callable[[TerminalService], T]
    then: Callable[[TerminalService], object] | None = None
    done: Future[T] = field(default_factory=Future)

    def run(self, service: TerminalService) -> None:
        try:
            self.done.set_result(self.call(service))
        except Exception as exc:
            self.done.set_exception(exc)
            return
        if self.then is not None:
            self.then(service)
