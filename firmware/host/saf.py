"""Store-and-forward: send the journal's queued reversals, advices and deferred authorizations
(payments stored while the acquirer was unreachable, [offline]) to the acquirer, in order.

The queue lives in the journal (persisted, ordered, survives restarts; it also keeps the
backoff). This module only drains it: on start, in the background, and before settlement. The
head of the queue goes first; a failure stops the round (order is kept) and is recorded with the
journal's backoff. A reversal is sent as 0400 the first time and 0401 when repeated. A deferred
authorization goes as the dialect's deferred message (0200, field 25 "deferred" by default); its
answer is recorded once: "forwarded", or "declined after the fact" (never retried). Sending it
again after a lost answer or a kill is safe: the host answers a repeat (same terminal, STAN and
deferred condition) with its first answer and books it once. A tip adjustment (`pitap tip`)
goes with its own STAN and the tip it sets (absolute, so a repeat is harmless); the host's
answer is final: accepted, the journal amends the payment's amount and tip; refused, the payment
stays as it was (logged, never retried).
Nothing here logs card data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from firmware.host.acquirer import (
    Acquirer,
    AuthRequest,
    HostUnavailable,
    NoReply,
    OwnConnections,
    PaymentData,
    ReversalReason,
    ReversalRefused,
    TipAdjustments,
)
from firmware.payment import QueueKind

log = logging.getLogger(__name__)


class QueuedItem(Protocol):
    """One queued reversal or advice, as store-and-forward reads it (a journal QueueItem)."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> QueueKind: ...
    @property
    def payment_id(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def amount(self) -> int | None: ...
    @property
    def stan(self) -> int | None: ...
    def due(self, now: float | None = None) -> bool: ...


class Outbox(Protocol):
    """What store-and-forward needs of the journal (firmware.journal.Journal is one)."""

    def queue(self) -> Sequence[QueuedItem]: ...
    def card_data(self, payment_id: int) -> bytes | None: ...
    def payment(self, payment_id: int) -> PaymentData: ...
    def queue_done(self, item_id: int) -> None: ...
    def queue_retry_later(self, item_id: int, error: str) -> None: ...
    def deferred_answered(self, item_id: int, approved: bool, **fields: object) -> None: ...
    def tip_answered(self, item_id: int, accepted: bool, reason: str = "") -> None: ...
    def void_refused(self, item_id: int, reason: str) -> None: ...


@dataclass
class DrainReport:
    sent: list[int] = field(default_factory=list)  # queue item ids acknowledged
    declined_late: list[int] = field(default_factory=list)  # stored payments the host declined
    void_refused: list[int] = field(default_factory=list)  # payments whose void the host refused
    failed: str = ""  # why the round stopped early ("" = it did not)
    remaining: int = 0  # items still queued after the round

    @property
    def complete(self) -> bool:
        return self.remaining == 0


class StoreAndForward:
    """Drains `journal`'s queue through `acquirer`. `drain()` once, or `start()` a thread."""

    def __init__(self, journal: Outbox, acquirer: Acquirer, merchant_id: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.journal = journal
        self.acquirer = acquirer  # the background thread swaps in a connection of its own
        self._shared_acquirer = acquirer
        self.merchant_id = merchant_id
        self.clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()  # a void holds it around its own drain (held())

    def _request(self, item: QueuedItem) -> AuthRequest | None:
        # A tip adjustment references the payment (no card data): its RRN and approval code.
        kept = None if item.kind is QueueKind.TIP else self.journal.card_data(item.payment_id)
        if kept is not None:
            return AuthRequest.from_bytes(kept)
        if item.kind is QueueKind.DEFERRED:  # no authorization without the card's cryptogram
            return None
        try:
            payment = self.journal.payment(item.payment_id)
        except Exception:  # an unknown payment: nothing we can send
            return None
        if not payment.stan:
            return None
        return AuthRequest.from_payment(payment, self.merchant_id)

    def _forward(self, item: QueuedItem, req: AuthRequest, report: DrainReport) -> None:
        """A stored payment's deferred authorization: the host's answer is final either way."""
        response = self.acquirer.authorize(dataclasses.replace(req, deferred=True))
        reason = (response.message if response.approved
                  else f"declined after the fact: {response.message}")
        self.journal.deferred_answered(
            item.id, response.approved, response_code=response.response_code,
            auth_code=response.auth_code or None, rrn=response.rrn or None, reason=reason)
        if not response.approved:
            report.declined_late.append(item.payment_id)
            log.warning("stored payment %d declined after the fact (%s)", item.payment_id,
                        response.response_code)

    def _adjust(self, item: QueuedItem, req: AuthRequest) -> None:
        """A tip adjustment: the host's answer is final either way (firmware.tips)."""
        if not isinstance(self.acquirer, TipAdjustments) or item.amount is None or not item.stan:
            self.journal.tip_answered(item.id, False, "this acquirer takes no tip adjustments")
            return
        response = self.acquirer.adjust_tip(req, item.amount, item.stan,
                                            repeat=item.attempts > 0)
        self.journal.tip_answered(item.id, response.approved,
                                  "" if response.approved else
                                  f"tip adjustment refused: {response.response_code} "
                                  f"{response.message}")
        if not response.approved:
            log.warning("tip adjustment of payment %d refused (%s)", item.payment_id,
                        response.response_code)

    def _send(self, item: QueuedItem, req: AuthRequest) -> bool:
        repeat = item.attempts > 0
        if item.kind is QueueKind.REVERSAL:
            return bool(self.acquirer.reverse(req, ReversalReason.NO_REPLY, repeat=repeat))
        if item.kind is QueueKind.VOID:
            return bool(self.acquirer.reverse(req, ReversalReason.VOID, repeat=repeat))
        return bool(self.acquirer.advise(req, repeat=repeat))

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No round runs within (one in progress is waited for): a void decides on a queued
        advice without store-and-forward sending it meanwhile."""
        with self._lock:
            yield

    def drain(self, include_not_due: bool = False) -> DrainReport:
        """One round over the queue, oldest first; stops at the first failure."""
        report = DrainReport()
        with self._lock:
            for item in self.journal.queue():
                if not include_not_due and not item.due(self.clock()):
                    report.failed = report.failed or "waiting for the next retry"
                    break
                req = self._request(item)
                if req is None:
                    self.journal.queue_retry_later(item.id, "nothing to send: no STAN/card data")
                    report.failed = f"queue item {item.id} has nothing to send"
                    break
                try:
                    if item.kind is QueueKind.DEFERRED:
                        self._forward(item, req, report)
                        report.sent.append(item.id)
                        continue
                    if item.kind is QueueKind.TIP:
                        self._adjust(item, req)
                        report.sent.append(item.id)
                        continue
                    ok = self._send(item, req)
                except ReversalRefused as exc:  # final: the approval stands, refund it instead
                    self.journal.void_refused(item.id, f"void refused: {exc}: refund it "
                                                        "instead")
                    report.void_refused.append(item.payment_id)
                    log.warning("void of payment %d refused by the host: %s", item.payment_id,
                                exc)
                    continue
                except (HostUnavailable, NoReply) as exc:
                    self.journal.queue_retry_later(item.id, str(exc))
                    report.failed = str(exc)
                    log.info("%s of payment %d not acknowledged: %s", item.kind,
                             item.payment_id, exc)
                    break
                if not ok:
                    self.journal.queue_retry_later(item.id, "host refused the message")
                    report.failed = "host refused the message"
                    break
                self.journal.queue_done(item.id)
                report.sent.append(item.id)
                log.info("%s of payment %d acknowledged", item.kind, item.payment_id)
            report.remaining = len(self.journal.queue())
        return report

    # ---- in the background --------------------------------------------------------------
    def start(self, interval_s: float = 2.0) -> threading.Thread:
        """Drain now and then every `interval_s` (and on `wake()`) until `stop()`."""
        self._stop.clear()
        # In the background, its own connection when the acquirer offers one
        # (the OwnConnections capability): a reversal waiting for its answer must not hold up a
        # customer's authorization. A one-off drain() in the foreground uses the shared one.
        if isinstance(self._shared_acquirer, OwnConnections):
            self.acquirer = self._shared_acquirer.companion()

        def run() -> None:
            while not self._stop.is_set():
                try:
                    self.drain()
                except Exception:  # never let the background thread die silently
                    log.exception("store-and-forward round failed")
                self._wake.wait(interval_s)
                self._wake.clear()

        self._thread = threading.Thread(target=run, name="store-and-forward", daemon=True)
        self._thread.start()
        return self._thread

    def wake(self) -> None:
        """Something was queued: try now rather than at the next interval."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.acquirer is not self._shared_acquirer:
            self.acquirer.close()
            self.acquirer = self._shared_acquirer
