"""UPI as a tender: one payment by dynamic QR, from the PSP's request to the outcome spoken.

    UpiTender(journal, psp, feedback, settings, ...).take(amount, cancelled) -> PaymentResult

The order, each step journalled before the effect it announces:
1. the link is built and checked (a bad field: UpiRefused, nothing journalled, nothing asked);
2. the payment is journalled "started", then "upi_pending" with our reference `tr`, and only
   then is the PSP asked to expect it (so a crash at any point leaves a request recovery asks
   the PSP about: firmware.recovery);
3. PspUnavailable: nothing was created at the PSP, the payment ends "error" (not charged); a
   PspNoReply: the status is asked again, as long as the request may be paid;
4. the QR is shown once the PSP holds the request, and the status polled every
   `poll_interval_s` until it is final, the request's expiry passes, or the shopkeeper cancels
   (then the request is withdrawn at the PSP, whose answer is the outcome: a payer who paid
   first is still approved);
5. the outcome is journalled: approved only on the PSP's SUCCESS (with its reference and the
   payer's masked VPA), declined on FAILURE or EXPIRED, cancelled when withdrawn; when the
   PSP cannot be reached to learn it, the payment stays "upi_pending" for recovery, never
   approved;
6. the outcome is shown, the receipt printed (or its QR shown), and spoken ([voice]).

A refund of a UPI payment goes back to its payer through the PSP (`refund`), never by card.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware.config import Config
from firmware.errors import PitapError
from firmware.feedback import Feedback
from firmware.journal import Journal, UnknownPayment
from firmware.money import Currency, Money
from firmware.money import currency as currency_of
from firmware.payment import PaymentOutcome, PaymentState, Tender, TxnType
from firmware.reasons import Reason
from firmware.terminal import PaymentResult
from firmware.upi.bharatqr import build_bharatqr
from firmware.upi.config import UpiSection, upi_settings, voice_settings
from firmware.upi.link import PaymentLink, UpiLinkError, build_link, new_reference
from firmware.upi.outcome import reason_text, record_answer, settle_refund
from firmware.upi.psp import (
    CollectRequest,
    Psp,
    PspError,
    PspNoReply,
    PspRejected,
    PspUnavailable,
    UpiPayment,
    connect_psp,
)
from firmware.voice import Announcer, Phrase
from ui.money import operator_text
from ui.qr import QrDoesNotFit, qr_on_screen

log = logging.getLogger(__name__)

INR = currency_of("INR")
NOTE = "Sale"  # tn: what the payer's app shows
# Card declines a phone cannot fix (the issuer wants the card's PIN; the amount is over the
# card's contactless limit, so another interface): the service then offers UPI.
UPI_FIXES = frozenset({Reason.PIN_NEEDED, Reason.LIMIT})
GRACE_S = 10.0  # asked past the request's expiry, for the PSP's final word


class UpiRefused(PitapError, ValueError):
    """A UPI payment or refund refused before anything was asked of the PSP (one line)."""


@dataclass
class UpiTender:
    """Takes UPI payments for one terminal: its journal, PSP, screens and [upi] settings."""

    journal: Journal
    psp: Psp
    feedback: Feedback
    settings: UpiSection
    terminal_id: str
    merchant_name: str
    merchant_city: str = ""
    announcer: Announcer | None = None
    wait: Callable[[float], None] = time.sleep  # between status queries
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def for_terminal(cls, cfg: Config, journal: Journal, feedback: Feedback) -> UpiTender:
        """The configuration's UPI ([upi], [voice], the PSP plug-in) on this journal and
        screen. ConfigError for a mistake in [upi] or an unknown PSP plug-in."""
        settings = upi_settings(cfg)
        return cls(journal, connect_psp(settings, cfg.source), feedback, settings,
                   cfg.terminal.terminal_id, cfg.terminal.merchant_name,
                   cfg.terminal.merchant_city,
                   Announcer(voice_settings(cfg), cfg.terminal.language))

    @classmethod
    def at_hand(cls, cfg: Config, journal: Journal, feedback: Feedback) -> UpiTender | None:
        """`for_terminal` when the shop takes UPI (the terminal's currency INR, [upi]
        configured: `pitap run`'s B key and the API's tender "upi"), else None."""
        if cfg.currency != INR or not upi_settings(cfg).enabled:
            return None
        return cls.for_terminal(cfg, journal, feedback)

    def close(self) -> None:
        self.psp.close()

    # ---- a payment ---------------------------------------------------------------------
    def qr_payload(self, link: PaymentLink) -> str:
        if self.settings.qr_form == "bharatqr":
            return build_bharatqr(link, self.merchant_city or "India")
        return build_link(link)

    def check(self, amount: int, currency: Currency = INR) -> tuple[PaymentLink, str]:
        """The link and QR text of a payment of `amount` paise; UpiRefused (one line) when UPI
        cannot take it: not configured, not INR, a field the link refuses, a panel too small."""
        if not self.settings.enabled:
            raise UpiRefused("UPI is not configured (upi.payee_vpa)")
        if currency != INR:
            raise UpiRefused(f"UPI takes INR only, not {currency.alpha}")
        try:
            link = PaymentLink(payee_vpa=self.settings.payee_vpa,
                               payee_name=self.settings.payee_name or self.merchant_name,
                               amount=amount, reference=new_reference(self.terminal_id),
                               note=NOTE, mcc=self.settings.mcc,
                               max_amount=self.settings.max_amount)
            payload = self.qr_payload(link)
            display = self.feedback.display
            qr_on_screen(payload, display.width, display.height)
        except (UpiLinkError, QrDoesNotFit) as exc:
            raise UpiRefused(str(exc)) from None
        return link, payload

    def take(self, amount: int, cancelled: Callable[[], bool] | None = None,
             currency: Currency = INR,
             on_started: Callable[[int], None] | None = None) -> PaymentResult:
        """One UPI payment of `amount` paise (see the module's docstring). UpiRefused before
        anything is journalled; otherwise never raises for anything the PSP does.
        `on_started(id)` once it is journalled, before the PSP is asked (the terminal API
        records its Idempotency-Key there); when it fails the payment ends "error", nothing
        asked of the PSP."""
        started = self.clock()
        cancelled = cancelled or (lambda: False)
        link, payload = self.check(amount, currency)
        money = Money(amount, INR)
        pid = self.journal.new_payment(TxnType.PURCHASE, amount, INR.numeric, self.terminal_id,
                                       tender=Tender.UPI, upi_reference=link.reference)
        result = PaymentResult(pid, amount, INR, TxnType.PURCHASE, PaymentOutcome.ERROR, "",
                               scheme="UPI", tender=Tender.UPI.value,
                               upi_reference=link.reference)
        if not self._started(result, on_started):
            return result
        self.journal.record(pid, PaymentState.UPI_PENDING, reason="UPI: request sent to the PSP")
        request = CollectRequest(reference=link.reference, amount=amount,
                                 payee_vpa=link.payee_vpa, payee_name=link.payee_name,
                                 mcc=link.mcc, note=link.note,
                                 expires_in_s=self.settings.request_expiry_s)
        deadline = self.clock() + self.settings.request_expiry_s + GRACE_S
        answer: UpiPayment | None = None
        try:
            answer = self.psp.create(request)
        except (PspUnavailable, PspRejected) as exc:  # nothing was created (or it was refused)
            self.journal.record(pid, PaymentState.ERROR, reason=f"UPI: {exc}"[:200])
            result.reason, result.decline = f"UPI: {exc}", Reason.ERROR
            self.feedback.not_charged(Reason.ERROR, detail=str(exc))
            result.total_ms = (self.clock() - started) * 1000.0
            return result
        except PspNoReply as exc:
            log.warning("UPI %s: %s; asking its status", link.reference, exc)
        answer = self._follow(link.reference, payload, money, answer, deadline, cancelled, pid)
        self._end(result, answer)
        result.total_ms = (self.clock() - started) * 1000.0
        return result

    def _started(self, result: PaymentResult,
                 on_started: Callable[[int], None] | None) -> bool:
        """Tell `on_started` the journalled payment; False (the payment ended "error", nothing
        asked of the PSP) when it raised."""
        if on_started is None:
            return True
        try:
            on_started(result.id)
        except Exception as exc:  # noqa: BLE001 - ends the payment, nothing asked, not charged
            log.exception("payment %d: its start could not be recorded", result.id)
            result.reason, result.decline = f"terminal error: {type(exc).__name__}", Reason.ERROR
            self.journal.record(result.id, PaymentState.ERROR, reason=result.reason)
            return False
        return True

    def _follow(self, reference: str, payload: str, money: Money, answer: UpiPayment | None,
                deadline: float, cancelled: Callable[[], bool],
                payment_id: int | None = None) -> UpiPayment | None:
        """Show the QR and ask the PSP until its answer is final (None: it could not be
        learnt, the payment stays pending for recovery)."""
        shown = False
        withdrawn = False
        while True:
            if answer is not None and answer.status.final:
                return answer
            if answer is not None and not shown:
                self.feedback.upi_qr(payload, money, payment_id)
                shown = True
            if not withdrawn and (cancelled() or self.clock() >= deadline):
                withdrawn = True
                log.info("UPI %s: %s; withdrawing the request", reference,
                         "cancelled" if cancelled() else "timed out")
                answer = self._ask(lambda: self.psp.cancel(reference), reference) or answer
                deadline = self.clock() + GRACE_S  # the PSP's word on the withdrawal
                continue
            if withdrawn and self.clock() >= deadline:
                return None
            self.wait(self.settings.poll_interval_s)
            answer = self._ask(lambda: self.psp.status(reference), reference) or answer

    @staticmethod
    def _ask(call: Callable[[], UpiPayment], reference: str) -> UpiPayment | None:
        try:
            return call()
        except PspError as exc:  # UnknownRequest too: a create whose answer was lost may land
            log.warning("UPI %s: %s", reference, exc)
            return None

    def _end(self, result: PaymentResult, answer: UpiPayment | None) -> None:
        pid = result.id
        if answer is None:  # never approved without SUCCESS, never declined without a word
            result.outcome, result.decline = PaymentOutcome.ERROR, Reason.UPI_UNKNOWN
            result.reason = "UPI: the PSP did not say; asked again at the next start"
            log.error("payment %s: %s", pid, result.reason)
            self.feedback.message("upi_unknown")
            return
        state = record_answer(self.journal, pid, answer)
        result.outcome = state.outcome or PaymentOutcome.ERROR
        result.reason = reason_text(answer)
        money = result.money
        if state is PaymentState.APPROVED:
            result.psp_reference, result.payer_vpa = answer.psp_reference, answer.payer
            result.approved_amount, result.parts = result.amount, [pid]
            self.feedback.approved(money, scheme="UPI")
            self._say(Phrase.RECEIVED, result.amount)
        elif state is PaymentState.CANCELLED:
            self.feedback.message("cancelled")
        else:
            result.decline = Reason.UPI_FAILED
            self.feedback.declined(Reason.UPI_FAILED, money, detail=result.reason)
            self._say(Phrase.FAILED)
        self._receipt(pid, state is not PaymentState.CANCELLED)

    def _say(self, phrase: Phrase, paise: int = 0) -> None:
        if self.announcer is not None:
            self.announcer.announce(phrase, paise)

    def _receipt(self, payment_id: int, qr: bool = True) -> None:
        try:
            self.feedback.receipt(self.journal.payment(payment_id).as_dict(), qr=qr)
        except Exception as exc:  # noqa: BLE001 - a printer never changes a payment
            log.warning("receipt for payment %s not printed: %r", payment_id, exc)

    # ---- a refund ------------------------------------------------------------------------
    def refund(self, of_payment: int, amount: int | None = None,
               on_started: Callable[[int], None] | None = None) -> PaymentResult:
        """Refund `amount` paise (default: what is left) of the UPI payment `of_payment` to its
        payer through the PSP. UpiRefused (nothing asked) when it is no approved UPI purchase
        or the refunds would exceed it. `on_started` as in `take`."""
        try:
            original = self.journal.payment(of_payment)
        except UnknownPayment:
            raise UpiRefused(f"no payment {of_payment} in the journal") from None
        if (original.tender is not Tender.UPI or original.txn_type is not TxnType.PURCHASE
                or not original.charged):
            raise UpiRefused(f"payment {of_payment} is not an approved UPI payment")
        left = original.amount - self.journal.refunded_amount(of_payment)
        amount = left if amount is None else amount
        if not 0 < amount <= left:
            raise UpiRefused(f"payment {of_payment} has only "
                             f"{operator_text(Money(left, INR))} left to refund")
        refund_ref = new_reference(self.terminal_id)
        pid = self.journal.new_payment(TxnType.REFUND, amount, original.currency,
                                       self.terminal_id, refund_of=of_payment,
                                       tender=Tender.UPI, upi_reference=refund_ref)
        result = PaymentResult(pid, amount, currency_of(original.currency), TxnType.REFUND,
                               PaymentOutcome.ERROR, "", scheme="UPI", tender=Tender.UPI.value,
                               upi_reference=refund_ref)
        if not self._started(result, on_started):
            return result
        self.journal.record(pid, PaymentState.UPI_PENDING, reason="UPI: refund sent to the PSP")
        answer = settle_refund(self.journal, self.psp, pid, first_ask=True)
        if answer is None:
            result.reason = "UPI: the PSP did not answer the refund; asked again at the next start"
            return result
        result.outcome = PaymentOutcome(self.journal.payment(pid).outcome or "error")
        result.reason = self.journal.payment(pid).reason
        result.psp_reference = answer.psp_reference
        return result
