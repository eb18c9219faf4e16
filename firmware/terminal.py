"""The transaction loop: amount -> present card -> kernel -> online/offline -> outcome.

It wires the reader (drivers.nfc), the kernel (firmware.emv), the acquirer (firmware.host), the
journal and the shopkeeper's feedback (screen, lights, tones, receipt). Every state change is
journalled before the effect it announces: "awaiting_reply" before the request leaves, the
outcome before it is shown. It never raises to its caller for anything a card, a reader or a host
does; those end as a PaymentResult with an outcome and a reason.

Cancelling: `pay(..., cancelled=callable)` (and `refund`) takes a callable the reader's polling
loop asks before every poll (nfcpy's `terminate` convention, e.g. a threading.Event's `is_set`).
Once it says True while the terminal waits for a card, the payment ends at once as "cancelled",
nothing sent to the host. A card already being read is finished: cancelling stops the wait only.

One clock per payment: the time is taken once, when the payment starts (`Terminal.clock`, local
time with its UTC offset), and that one moment is the journal's created_at, EMV 9A/9F21 and
ISO 8583 fields 7, 12 and 13, so they cannot disagree (across midnight, say).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.nfc import CardReader, MoreThanOneCard, Reader, ReaderFault, UnsupportedCard
from firmware import offline
from firmware.config import Config
from firmware.emv.kernel import Kernel
from firmware.emv.outcome import Outcome, OutcomeKind, Prompt, TerminalTransaction
from firmware.errors import PitapError
from firmware.feedback import Feedback
from firmware.host import connect
from firmware.host.acquirer import Acquirer, AuthRequest, HostUnavailable, NoReply
from firmware.host.response_codes import ResponseCode
from firmware.host.saf import StoreAndForward
from firmware.journal import Journal, StoredTotals, UnknownPayment
from firmware.money import Currency, Money
from firmware.money import currency as currency_of
from firmware.payment import PaymentOutcome, PaymentState, QueueKind, Tender, TxnType, is_legal
from firmware.private_files import prepare_state_dir
from firmware.reasons import Reason
from firmware.recovery import RecoveryReport, open_journal_at_start
from firmware.void import VoidResult, void_payment
from ui.money import operator_text

log = logging.getLogger(__name__)

# How many taps one payment accepts: a "See phone" answer needs a second tap.
MAX_TAPS = 3
# How many journal payments (partial approvals) one purchase may be paid in.
MAX_PARTS = 4
TWO_CARDS = "more than one card in the field"
# What the customer is told when the kernel ends a tap unapproved: its prompt says why.
PROMPT_REASONS = {
    Prompt.AMOUNT_TOO_HIGH: Reason.LIMIT,
    Prompt.CARD_NOT_SUPPORTED: Reason.NOT_SUPPORTED,
    Prompt.CARD_EXPIRED: Reason.EXPIRED,
}


def hold_expiry(when: dt.datetime, days: int) -> str:
    """When a hold approved at `when` expires, as the journal keeps it (ISO 8601, UTC)."""
    return (when + dt.timedelta(days=days)).astimezone(dt.UTC).isoformat(timespec="seconds")


def local_now() -> dt.datetime:
    """Now in local time, with its UTC offset: the terminal's clock for a payment."""
    return dt.datetime.now().astimezone()


class RefundRefused(PitapError, ValueError):
    """A refund refused before any tap (nothing charged): unknown, unpaid or used-up payment."""


@dataclass
class PaymentResult:
    """What one payment ended as; the demo prints it, `pitap pay` exits on it."""

    id: int
    amount: int
    currency: Currency
    txn_type: TxnType
    outcome: PaymentOutcome
    reason: str
    scheme: str = ""
    auth_code: str = ""
    masked_pan: str = ""
    offline: bool = False
    response_code: str = ""
    stan: int = 0
    taps: int = 0
    card_in_field_ms: float = 0.0
    total_ms: float = 0.0
    decline: Reason | None = None  # why not approved, as the customer is told (a code)
    stored: bool = False  # approved while the host was unreachable: forwarded later ([offline])
    approved_amount: int = 0  # what the card was charged (less than `amount`: partial)
    tip: int = 0  # the part of `amount` that is a tip (firmware.tips)
    parts: list[int] = dataclasses.field(default_factory=list)  # the payments that paid it
    tender: str = "card"  # "upi": paid by dynamic QR (firmware.upi.tender), no card
    upi_reference: str = ""  # UPI: our reference `tr`
    psp_reference: str = ""  # UPI: the PSP's reference
    payer_vpa: str = ""  # UPI: the payer's VPA, masked

    @property
    def partial(self) -> bool:
        """Approved for less than asked (ISO 8583 response code 10)."""
        return self.outcome is PaymentOutcome.APPROVED and 0 < self.approved_amount < self.amount

    def as_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        del d["decline"]
        d["currency"] = self.currency.alpha
        d["card_in_field_ms"] = round(self.card_in_field_ms, 1)
        d["total_ms"] = round(self.total_ms, 1)
        return d

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


class Terminal:
    """One terminal: a reader, a kernel, an acquirer, a journal and a feedback channel."""

    def __init__(
        self,
        cfg: Config,
        reader: CardReader,
        kernel: Kernel,
        acquirer: Acquirer,
        journal: Journal,
        feedback: Feedback,
        recovered: RecoveryReport | None = None,
        clock: Callable[[], dt.datetime] = local_now,
    ) -> None:
        self.cfg = cfg
        self.clock = clock  # read once a payment (aware datetimes)
        self.reader = reader
        self.kernel = kernel
        self.acquirer = acquirer
        self.journal = journal
        self.feedback = feedback
        # what start-up recovery found and did (the commands tell their user)
        self.recovered = recovered if recovered is not None else RecoveryReport()
        # Reversals and advices go out in order, in the background once `start()` ran.
        self.saf = StoreAndForward(journal, acquirer, cfg.terminal.merchant_id)
        self._started = False

    def start(self) -> Terminal:
        """Start store-and-forward in the background (what recovery queued goes out first).
        `from_config` returns a started terminal; one built by hand starts here."""
        if not self._started:
            self.saf.start(self.cfg.host.saf_interval_s)
            self._started = True
        return self

    @classmethod
    def from_config(cls, cfg: Config) -> Terminal:
        """Open everything the configuration names and `start()`. ConfigError/ReaderFault for
        what is wrong."""
        prepare_state_dir(cfg)  # private (0700) whatever the umask, and writable
        kernel = Kernel.from_config(cfg)
        # Recovery first: whatever a power cut left half-way is queued before any new payment.
        with contextlib.ExitStack() as opened:  # what opened is closed again if a later part fails
            journal, recovered = open_journal_at_start(cfg)
            opened.callback(journal.close)
            kernel.count_offline_in(journal.offline_approvals)  # survives restarts
            feedback = Feedback.from_config(cfg)
            opened.callback(feedback.close)
            reader = Reader(cfg.reader.path)
            opened.callback(reader.close)
            # One STAN counter: the journal's, for the acquirer's own messages too.
            acquirer = connect(cfg, stan_source=journal.next_stan)
            opened.pop_all()
        return cls(cfg, reader, kernel, acquirer, journal, feedback, recovered).start()

    def close(self) -> None:
        self.saf.stop()
        self._started = False
        parts = (self.reader, self.acquirer, self.feedback, self.journal)
        for closer in (part.close for part in parts):
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - closing must not hide the real outcome
                log.warning("close: %r", exc)

    # ---- one payment ------------------------------------------------------------------
    def pay(
        self,
        amount: int,
        txn_type: TxnType | str = TxnType.PURCHASE,
        currency: Currency | None = None,
        presentment_timeout: float | None = None,
        refund_of: int | None = None,
        card_must_be: str = "",
        cancelled: Callable[[], bool] | None = None,
        tip: int = 0,
        on_started: Callable[[int], None] | None = None,
    ) -> PaymentResult:
        """One payment or refund of `amount` minor units: never raises for a card or host fault.
        `cancelled()` True while waiting for a card ends it as "cancelled". `tip`: the part of
        `amount` (the total: 9F02, field 4) that is a tip (field 54), checked by the caller.
        `on_started(id)` is called once the payment is journalled, before the wait for a card
        (the terminal API records its Idempotency-Key there).

        A purchase the issuer approves for less (a partial approval) shows "Approved X of Y,
        Z left" and takes the rest with another tap (same or another card; a payment of its own
        in the journal). When the rest is not paid (cancelled, no tap before the timeout,
        declined) every part taken is reversed (voided): nothing stays charged. The result
        lists the journal payments that paid (`parts`)."""
        started = time.monotonic()
        first = self._pay_one(amount, txn_type, currency, presentment_timeout, refund_of,
                              card_must_be, cancelled, tip=tip, on_started=on_started)
        if first.partial and first.txn_type is TxnType.PURCHASE:
            self._take_the_rest(first, presentment_timeout, cancelled or (lambda: False))
        first.total_ms = (time.monotonic() - started) * 1000.0
        return first

    def preauth(self, amount: int, currency: Currency | None = None,
                presentment_timeout: float | None = None,
                cancelled: Callable[[], bool] | None = None) -> PaymentResult:
        """A pre-authorization of `amount` (firmware.preauth): a tap, authorized online only
        (never stored offline), funds held until `[preauth] hold_days` pass."""
        return self.pay(amount, TxnType.PREAUTH, currency, presentment_timeout,
                        cancelled=cancelled)

    def void(self, payment_id: int) -> VoidResult:
        """Void an approval of the open batch, no tap (firmware.void); VoidRefused (nothing sent)
        when it cannot be. The void's receipt is printed (or nothing: no QR for it)."""
        result = void_payment(self.journal, self.saf, payment_id, self.cfg.currency)
        self._receipt_of(result.payment.as_dict())
        return result

    def _take_the_rest(self, first: PaymentResult, presentment_timeout: float | None,
                       cancelled: Callable[[], bool]) -> None:
        """After a partial approval: another tap for what is left, until all is paid; or, when
        the rest is not paid, every part reversed (a void each, queued before it is sent)."""
        paid_in, total = first.currency, first.amount
        left = total - first.approved_amount
        rest: PaymentResult | None = None
        while left > 0 and len(first.parts) < MAX_PARTS:
            paid = Money(total - left, paid_in)
            rest = self._pay_one(left, TxnType.PURCHASE, paid_in, presentment_timeout,
                                 cancelled=cancelled, part_of=first.id,
                                 rest_of=(paid, Money(total, paid_in), Money(left, paid_in)))
            if rest.outcome is not PaymentOutcome.APPROVED:
                break
            first.parts.append(rest.id)
            left -= rest.approved_amount
            rest = None
        if left <= 0:
            first.approved_amount = total
            first.reason = f"approved in {len(first.parts)} parts"
            # one receipt for the sale: every part ("Approved X of Y", a line a part, the total)
            parts = [self.journal.payment(pid).as_dict() for pid in first.parts]
            self._receipt_of(parts[0] | {"asked": total, "parts": parts}, qr=True)
            return
        for pid in first.parts:  # nothing stays charged: each part is voided (durably queued)
            self.journal.enqueue(QueueKind.VOID, pid)
        self.saf.wake()
        why = rest.reason if rest is not None else f"more than {MAX_PARTS} parts"
        first.outcome = rest.outcome if rest is not None else PaymentOutcome.CANCELLED
        first.decline = rest.decline if rest is not None else None
        first.reason = f"partial approval reversed: the rest was not paid ({why})"
        first.approved_amount = 0
        log.info("payment %d: %s", first.id, first.reason)
        if first.outcome is not PaymentOutcome.CANCELLED:
            self.feedback.message("cancelled")  # "Nothing was charged": the parts are reversed

    def _pay_one(
        self,
        amount: int,
        txn_type: TxnType | str = TxnType.PURCHASE,
        currency: Currency | None = None,
        presentment_timeout: float | None = None,
        refund_of: int | None = None,
        card_must_be: str = "",
        cancelled: Callable[[], bool] | None = None,
        rest_of: tuple[Money, Money, Money] | None = None,
        part_of: int | None = None,
        tip: int = 0,
        on_started: Callable[[int], None] | None = None,
    ) -> PaymentResult:
        """One journal payment of `amount` (one or more taps of one card). `rest_of`: the rest
        of a partially approved purchase (paid so far, total, left), shown while waiting."""
        started = time.monotonic()
        paid_in = currency or self.cfg.currency
        kind = TxnType(txn_type)
        timeout = presentment_timeout or self.cfg.terminal.presentment_timeout_s
        when = self.clock()  # the payment's one moment: journal, 9A/9F21, fields 7/12/13
        pid = self.journal.new_payment(
            kind.value, amount, paid_in.numeric, self.cfg.terminal.terminal_id, refund_of=refund_of,
            created_at=when, part_of=part_of, tip=tip,
        )
        result = PaymentResult(id=pid, amount=amount, currency=paid_in, txn_type=kind,
                               outcome=PaymentOutcome.ERROR, reason="", tip=tip)
        try:
            if on_started is not None:
                on_started(pid)
            self._take(result, kind, when, started + timeout, card_must_be,
                       cancelled or (lambda: False), rest_of)
        except Exception as exc:  # last line of defence: a clean error, never a traceback
            log.exception("payment %d failed unexpectedly", pid)
            reason = f"terminal error: {type(exc).__name__}"
            # An outcome already journalled (a charge, a queued reversal) stands.
            if is_legal(self.journal.payment(pid).state, PaymentState.ERROR):
                self._end(result, PaymentOutcome.ERROR, reason)
            self.feedback.message("out_of_service", reason)
        result.total_ms = (time.monotonic() - started) * 1000.0
        if result.outcome is PaymentOutcome.APPROVED:
            result.parts = [pid]
            result.approved_amount = result.approved_amount or amount
        return result

    def refund(self, amount: int, of_payment: int | None = None, currency: Currency | None = None,
               presentment_timeout: float | None = None,
               cancelled: Callable[[], bool] | None = None,
               on_started: Callable[[int], None] | None = None) -> PaymentResult:
        """Refund `amount` to the card tapped now; with `of_payment`, at most what is left of it.
        `cancelled` and `on_started` as in `pay`.

        A refund of a journal payment is refused (RefundRefused, nothing charged) when that payment
        was not an approved purchase or the refunds of it would exceed its amount."""
        if of_payment is None:
            return self.pay(amount, TxnType.REFUND, currency, presentment_timeout,
                            cancelled=cancelled, on_started=on_started)
        try:
            original = self.journal.payment(of_payment)
        except UnknownPayment:
            raise RefundRefused(f"no payment {of_payment} in the journal") from None
        if original.tender is Tender.UPI:  # never to a card: the PSP sends it back to the payer
            raise RefundRefused(f"payment {of_payment} was paid by UPI: its refund goes through "
                                "the PSP (pitap refund --of ID), not to a card")
        # a completion captured a hold: a sale, refunded as one
        if original.txn_type not in (TxnType.PURCHASE, TxnType.COMPLETION) or not original.charged:
            raise RefundRefused(f"payment {of_payment} is not an approved purchase or completion")
        if original.state is PaymentState.STORED:  # [offline]: the bank has not answered yet
            raise RefundRefused(f"payment {of_payment} is stored, not yet forwarded to the bank: "
                                "refund it once the bank has approved it")
        paid = original.amount
        refunded = self.journal.refunded_amount(of_payment)
        if amount + refunded > paid:
            raise RefundRefused(f"payment {of_payment} has only {paid - refunded} minor units left "
                             "to refund")
        paid_in = currency_of(original.currency)
        if currency is not None and currency != paid_in:
            raise RefundRefused(f"payment {of_payment} was paid in {paid_in}, not {currency}")
        result = self.pay(amount, TxnType.REFUND, paid_in, presentment_timeout,
                          refund_of=of_payment, card_must_be=original.masked_pan,
                          cancelled=cancelled, on_started=on_started)
        if result.outcome is PaymentOutcome.APPROVED and amount + refunded == paid:
            self.journal.record(of_payment, PaymentState.REFUNDED,
                                reason=f"refunded in full (#{result.id})")
        return result

    def _take(self, result: PaymentResult, kind: TxnType, when: dt.datetime, deadline: float,
              card_must_be: str, cancelled: Callable[[], bool],
              rest_of: tuple[Money, Money, Money] | None = None) -> None:
        pid = result.id
        if rest_of is None:
            self.feedback.present_card(result.money, kind, payment_id=pid)
        else:
            self.feedback.partial(*rest_of, payment_id=pid)
        outcome: Outcome | None = None
        two_cards = False  # the last poll found two cards: "Present one card only" is shown
        while time.monotonic() < deadline and result.taps < MAX_TAPS:
            try:
                card = self.reader.wait_for_card(max(0.0, deadline - time.monotonic()),
                                                 cancelled)
            except UnsupportedCard as exc:
                self.feedback.message("try_again", "Card not supported")
                log.info("payment %d: %s", pid, exc)
                continue
            except MoreThanOneCard as exc:
                # EMV: no card is read while two are in the field; wait for one to go.
                if not two_cards:
                    self.feedback.message("one_card_only")
                    self.journal.record(pid, PaymentState.TRY_AGAIN, reason=TWO_CARDS)
                    log.info("payment %d: %s", pid, exc)
                two_cards = True
                continue
            except ReaderFault as exc:
                self._end(result, PaymentOutcome.ERROR, f"reader fault: {exc}")
                self.feedback.message("out_of_service", "Reader fault")
                return
            if cancelled():  # before a card is read, or as one arrives: nothing is charged
                if card is not None:
                    self.reader.release()
                self._end(result, PaymentOutcome.CANCELLED, "cancelled while waiting for a card")
                self.feedback.message("cancelled")
                return
            if card is None:
                break
            two_cards = False
            result.taps += 1
            self.feedback.processing()
            txn = TerminalTransaction(
                amount=result.amount,
                currency=result.currency.numeric,
                country=self.cfg.terminal.country,
                txn_type=kind,
                when=when,
                terminal_id=self.cfg.terminal.terminal_id,
                merchant_name=self.cfg.terminal.merchant_name,
            )
            try:
                outcome = self.kernel.process(card, txn)
            finally:
                self.reader.release()
            result.card_in_field_ms = card.in_field_ms
            result.scheme = outcome.scheme or result.scheme
            result.masked_pan = outcome.masked_pan or result.masked_pan
            log.info("payment %d tap %d: %s (%s)", pid, result.taps, outcome.kind.value,
                     outcome.reason)
            if outcome.kind is not OutcomeKind.TRY_AGAIN or card.left_field:
                # A card that went quiet mid-tap has left: the payment ends at once as "try
                # again", nothing charged (`pitap run` then presents the same amount again).
                break
            self.journal.record(pid, PaymentState.TRY_AGAIN, reason=outcome.reason,
                                scheme=result.scheme)
            see_phone = outcome.prompt is Prompt.SEE_PHONE
            self.feedback.message("see_phone" if see_phone else "try_again")
        if outcome is None:
            reason = "no card presented before the timeout"
            self._end(result, PaymentOutcome.NO_CARD,
                      f"{TWO_CARDS} until the timeout" if two_cards else reason)
            self.feedback.message("no_card")
            return
        if outcome.kind is OutcomeKind.TRY_AGAIN:
            self._end(result, PaymentOutcome.TRY_AGAIN, outcome.reason)
            self.feedback.message("try_again")
            return
        self.journal.record(
            pid, PaymentState.CARD_READ, scheme=outcome.scheme, masked_pan=outcome.masked_pan,
            card_in_field_ms=round(result.card_in_field_ms, 1),
            application_label=outcome.application_label, aid=outcome.aid.hex().upper(),
            cvm=outcome.cvm or None,
        )
        self.feedback.card_read()
        if card_must_be and outcome.masked_pan != card_must_be and outcome.kind in (
            OutcomeKind.ONLINE_REQUEST, OutcomeKind.APPROVED
        ):
            # A refund of a payment goes back to the card (token) that paid, never another.
            self._end(result, PaymentOutcome.DECLINED, f"not the card that paid ({card_must_be})")
            self._show(result)
            return
        decided = True  # False: the host never decided (nothing charged), not a decline
        if outcome.kind is OutcomeKind.ONLINE_REQUEST:
            decided = self._go_online(result, outcome, kind, when)
        elif outcome.kind is OutcomeKind.APPROVED and kind is TxnType.PREAUTH:
            # the kernel asks for an ARQC: a card answering with a TC holds nothing anywhere
            self._end(result, PaymentOutcome.DECLINED, "a pre-authorization is held online only")
        elif outcome.kind is OutcomeKind.APPROVED:
            self._approve_offline(result, outcome, kind, when)
        else:
            self._end(result, PaymentOutcome.DECLINED, outcome.reason)
            result.decline = PROMPT_REASONS.get(outcome.prompt) if outcome.prompt else None
        self._show(result, decided, part=rest_of is not None)

    def _request(self, result: PaymentResult, outcome: Outcome, kind: TxnType, stan: int,
                 when: dt.datetime, offline: bool = False) -> AuthRequest:
        return AuthRequest(
            stan=stan,
            amount=result.amount,
            currency=result.currency.numeric,
            txn_type=kind,
            pan=outcome.pan,
            pan_sequence=outcome.pan_sequence,
            expiry=outcome.expiry,
            track2=outcome.track2,
            icc_data=outcome.icc_data,
            terminal_id=self.cfg.terminal.terminal_id,
            merchant_id=self.cfg.terminal.merchant_id,
            when=when,
            offline_approved=offline,
            tip=result.tip,
        )

    def _go_online(self, result: PaymentResult, outcome: Outcome, kind: TxnType,
                   when: dt.datetime) -> bool:
        """Authorize with the host; False when it never decided (unavailable, or no reply and
        the request reversed): nothing is charged."""
        pid = result.id
        result.stan = self.journal.next_stan()
        request = self._request(result, outcome, kind, result.stan, when)
        # Journal first: a crash from here on leaves "awaiting_reply", which recovery reverses.
        self.journal.keep_card_data(pid, request)
        self.journal.record(pid, PaymentState.AWAITING_REPLY, stan=result.stan)
        try:
            response = self.acquirer.authorize(request)
        except HostUnavailable as exc:  # nothing left: the "error" record deletes the card data
            if self.cfg.offline.enabled and kind is TxnType.PURCHASE:
                return self._store_offline(result, outcome, request, when, str(exc))
            self._end(result, PaymentOutcome.ERROR, f"host unavailable: {exc}")
            result.decline = Reason.HOST_UNAVAILABLE
            return False
        except NoReply as exc:  # queued (and journalled as such) before the outcome is recorded
            self.journal.enqueue(QueueKind.REVERSAL, pid)
            self.saf.wake()
            self._end(result, PaymentOutcome.ERROR, f"no reply from host ({exc}); reversal queued")
            result.decline = Reason.NO_REPLY
            return False
        self.journal.host_answered()  # the run of payments stored offline ends
        result.response_code, result.auth_code = response.response_code, response.auth_code
        fields: dict[str, object] = {"response_code": response.response_code,
                                     "auth_code": response.auth_code, "rrn": response.rrn}
        if response.approved and kind is TxnType.PREAUTH:  # a hold: until when it stands
            fields["expires_at"] = hold_expiry(when, self.cfg.preauth.hold_days)
        if response.approved and response.approved_amount is not None:
            # a partial approval: the journal keeps what was charged (the request's amount is
            # in the payment's "started" history entry)
            result.approved_amount = fields["amount"] = response.approved_amount
            if result.tip > response.approved_amount:  # the tip stays within what was charged
                result.tip = fields["tip"] = response.approved_amount
        # The outcome and the end of the card data in one transaction: the journal records it.
        self._end(result, PaymentOutcome.APPROVED if response.approved else PaymentOutcome.DECLINED,
                  response.message, **fields)
        code = ResponseCode.of(response.response_code)
        if not response.approved:
            result.decline = code.category.reason if code is not None else None
        return True

    def _store_offline(self, result: PaymentResult, outcome: Outcome, request: AuthRequest,
                       when: dt.datetime, why: str) -> bool:
        """The host is unreachable and nothing left: store the payment for forwarding when it is
        within every [offline] limit (approved; the card data stays in the vault until the host
        answers), else decline it naming the limit. False when nothing was decided."""
        pid = result.id
        stored = self.journal.stored_totals(result.currency.numeric)
        tokens = []
        for p in self.journal.payments_in_state(PaymentState.STORED):
            kept = self.journal.card_data(p.id)
            if kept is not None:
                tokens.append(AuthRequest.from_bytes(kept).pan)
        refused = offline.refusal(
            self.cfg.offline, result.money, outcome.scheme, outcome.expiry,
            bool(outcome.cryptogram) and (outcome.cid & 0xC0) == 0x80, when,
            stored.count, stored.amount, stored.oldest, offline.same_card(tokens, request.pan),
        ) if result.currency == self.cfg.currency else offline.OfflineRefusal(
            Reason.OFFLINE_LIMIT, "not stored offline: not the terminal's currency")
        if refused is not None:
            self._end(result, PaymentOutcome.DECLINED, f"host unavailable ({why}); {refused.text}")
            result.decline = refused.reason
            return not refused.reason.not_charged
        reason = "stored: the bank was not reachable, forwarded when it answers"
        self.journal.store_for_forwarding(pid, reason)
        result.outcome, result.reason, result.stored = PaymentOutcome.APPROVED, reason, True
        log.info("payment %d stored for forwarding (host unavailable: %s)", pid, why)
        self.saf.wake()
        return True

    def stored(self) -> StoredTotals:
        """What waits to be forwarded ([offline]), in the terminal's currency."""
        return self.journal.stored_totals(self.cfg.currency.numeric)

    def _approve_offline(self, result: PaymentResult, outcome: Outcome, kind: TxnType,
                         when: dt.datetime) -> None:
        pid = result.id
        result.stan = self.journal.next_stan()
        result.offline = True
        result.auth_code = "Y1"  # EMV: offline approved
        self.journal.keep_card_data(pid, self._request(result, outcome, kind, result.stan, when,
                                                       offline=True))
        self._end(result, PaymentOutcome.APPROVED, outcome.reason or "approved offline",
                  offline=True, auth_code=result.auth_code)
        self.journal.enqueue(QueueKind.ADVICE, pid)
        self.saf.wake()

    def _end(self, result: PaymentResult, outcome: PaymentOutcome, reason: str,
             **fields: object) -> None:
        result.outcome, result.reason = outcome, reason
        self.journal.record(
            result.id, outcome.state, reason=reason, stan=result.stan or None,
            scheme=result.scheme or None, masked_pan=result.masked_pan or None,
            card_in_field_ms=round(result.card_in_field_ms, 1) if result.taps else None,
            **fields,
        )

    def _show(self, result: PaymentResult, decided: bool = True, part: bool = False) -> None:
        """The outcome on screen and its receipt; `part`: the rest of a partially approved
        sale, whose receipt, once approved, is the whole sale's (Terminal._take_the_rest)."""
        if result.partial and result.txn_type is TxnType.PURCHASE:
            # the rest is asked for at once ("Approved X of Y, Z left"): Terminal.pay; the
            # receipt comes once it is paid, for every part
            return
        if result.outcome is PaymentOutcome.APPROVED:
            self.feedback.approved(result.money, result.auth_code,
                                   result.masked_pan, result.scheme, result.offline)
        elif decided:
            self.feedback.declined(result.decline, detail=result.reason)
        else:
            self.feedback.not_charged(result.decline, detail=result.reason)
        if not (part and result.outcome is PaymentOutcome.APPROVED):
            self._receipt(result, decided)

    def _receipt(self, result: PaymentResult, decided: bool = True) -> None:
        self._receipt_of(self.journal.payment(result.id).as_dict(), qr=decided,
                         reason=result.decline)

    def _receipt_of(self, payment: dict[str, object], qr: bool = False,
                    reason: Reason | None = None) -> None:
        try:
            self.feedback.receipt(payment, qr=qr, reason=reason)
        except Exception as exc:  # noqa: BLE001 - a printer never changes a payment
            log.warning("receipt for payment %s not printed: %r", payment.get("id"), exc)


def describe(result: PaymentResult) -> str:
    """One line for people."""
    money = operator_text(result.money)
    bits = [f"#{result.id}", f"{result.txn_type:<8}", f"{money:>12}", f"{result.outcome:<9}"]
    if result.scheme:
        bits.append(result.scheme)
    if result.masked_pan:
        bits.append(result.masked_pan)
    if result.auth_code:
        bits.append(f"auth {result.auth_code}")
    if result.tender == "upi":
        bits += [f"tr={result.upi_reference}"]
        bits += [f"psp={result.psp_reference}"] if result.psp_reference else []
        bits += [result.payer_vpa] if result.payer_vpa else []
    if result.stored:
        bits.append("stored")
    bits.append(f"- {result.reason}")
    if len(result.parts) > 1:
        bits.append("(paid as " + ", ".join(f"#{p}" for p in result.parts) + ")")
    if result.taps:
        bits.append(f"(card {result.card_in_field_ms:.0f} ms, total {result.total_ms:.0f} ms)")
    return " ".join(bits)
