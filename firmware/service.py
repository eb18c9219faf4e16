"""The running terminal (`pitap run`): amount entry, keypad, API jobs, one payment at a time.

keypad -> amount -> tap -> outcome -> receipt -> ready, again and again. Payments go through
firmware.terminal.Terminal, which journals them; this module only collects amounts and paces the
screens. `firmware/commands/run.py` parses the arguments and wires the parts to it.

A card or phone that leaves mid-tap ends its payment as "try again" (nothing charged) and the same
amount is presented again, so the customer just taps again.

While a payment runs, a live keypad (matrix, buttons, a keyboard on a terminal) is read on a
thread of its own: cancel (or quit) ends the wait for a card at once, as "Cancelled" with nothing
charged, through the terminal's cancel hook (`Terminal.pay(cancelled=...)`); other keys are
dropped, and the keypad is drained when the payment ends, so nothing pressed during it fires
afterwards. A stop (the `stop` event: SIGTERM, Ctrl-C) cancels the wait the same way; a card
already being read is finished.

With [tips] mode = "prompt", a purchase's amount is followed by the tip screen: the customer's
key chooses a preset (1..3), another amount (4, keyed as an amount is) or no tip (0), cancel
returns to ready; the payment is then of the total, the tip part of it (firmware.tips).

Jobs (the terminal API, firmware.api): a till's request (a payment, a void, a settlement) is a
`Job` put on the service's `jobs` queue; the loop runs it between taps, on the same terminal and
screen as the keypad's payments (an amount being keyed is dropped for it), so there is one
payment at a time whoever started it. While a payment runs, `running_id` names it and `cancel`
ends its wait for a card, as the cancel key does.

Keys: digits shift in from the right as on a till (1 2 5 0 -> 12.50), clear deletes the last
digit (or leaves the entry when empty), enter takes the payment, cancel returns to ready, f1
switches purchase -> refund -> void (the digits are then the number of the payment to void, as
`pitap journal` lists it; enter voids it, no tap) -> purchase, f2 on an empty entry settles the
batch with the acquirer and shows the report, enter on an empty purchase entry shows the
terminal API's service screen (its address and certificate fingerprint, until a key), quit (end
of keyboard input) stops the service.

UPI (India, firmware.upi.tender): with the terminal's currency INR and [upi] configured, f2 with
an amount keyed takes it by UPI (a dynamic QR; cancel withdraws it) instead of a card; and a card
declined for what a phone cannot fix (the issuer wants a PIN, the amount is over the card's
contactless limit) is followed by "Pay by UPI instead?": f2 then shows the QR for the same
amount, any other key (or the result hold passing) goes back to ready.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from firmware.errors import PitapError
from firmware.money import Currency, Money
from firmware.payment import TxnType

if TYPE_CHECKING:
    from drivers.keypad import Keypad
    from firmware.host.settlement import ZReport
    from firmware.terminal import PaymentResult, Terminal
    from firmware.upi.tender import UpiTender
    from firmware.void import VoidResult

__all__ = ["Action", "AmountEntry", "EntryState", "Job", "StopService", "TerminalService"]

log = logging.getLogger(__name__)

MAX_DIGITS = 9  # 9 999 999.99 in a two-decimal currency: above any contactless limit
# A card that left mid-tap ends its payment as "try again"; the same amount is then presented
# again (a new payment), up to ATTEMPTS in all, after "Try again" was up TRY_AGAIN_SHOWN_S.
ATTEMPTS = 3
TRY_AGAIN_SHOWN_S = 1.5
CANCELLED_SHOWN_S = 1.5  # "Cancelled" stays this long (or until a key), then ready
WATCH_POLL_S = 0.05  # how often the keypad is looked at during a payment
JOB_POLL_S = 0.05  # how often the jobs queue is looked at between keys
SERVICE_SHOWN_S = 120.0  # the service screen stays this long (or until a key)


class EntryState(enum.Enum):
    """Where the amount entry is: nothing keyed yet, or some digits keyed."""

    EMPTY = "empty"
    KEYING = "keying"


class Action(enum.StrEnum):
    """What one key did to the amount entry."""

    CHANGED = "changed"  # the amount or the transaction type changed: redraw
    ENTER = "enter"  # a positive amount is ready: take the payment
    CANCEL = "cancel"  # leave the entry, back to ready
    QUIT = "quit"  # stop the service
    SETTLE = "settle"  # close the batch (f2 on an empty entry)
    VOID = "void"  # a payment number is keyed in void mode: void it
    UPI = "upi"  # f2 with an amount keyed: take it by UPI (dynamic QR), when the shop has UPI
    SERVICE = "service"  # enter on an empty purchase entry: the terminal API's service screen
    IGNORED = "ignored"  # nothing happened


class AmountEntry:
    """The amount being keyed, in minor units, and whether it is a purchase or a refund, or (in
    void mode) the number of the payment to void: a small state machine (EntryState) over the
    keypad's key names. f1 goes purchase -> refund -> void -> purchase."""

    def __init__(self, exponent: int = 2, max_digits: int = MAX_DIGITS) -> None:
        self.exponent = exponent
        self.max_digits = max_digits
        self.digits = ""
        self.txn_type = TxnType.PURCHASE
        self.voiding = False  # the digits are a payment number to void

    @property
    def state(self) -> EntryState:
        return EntryState.KEYING if self.digits else EntryState.EMPTY

    @property
    def minor(self) -> int:
        return int(self.digits or "0")

    def press(self, key: str) -> Action:
        """Apply one key; returns what it did."""
        empty = self.state is EntryState.EMPTY
        if key.isdigit() and len(key) == 1:
            if len(self.digits) >= self.max_digits or (key == "0" and empty):
                return Action.IGNORED
            self.digits += key
            return Action.CHANGED
        if key == "clear":
            if empty:
                return Action.CANCEL
            self.digits = self.digits[:-1]
            return Action.CHANGED
        if key == "f1":
            if self.txn_type is TxnType.PURCHASE and not self.voiding:
                self.txn_type = TxnType.REFUND  # the amount keyed so far stays
                return Action.CHANGED
            # into or out of void mode: an amount is no payment number, nor the other way round
            self.txn_type, self.voiding, self.digits = TxnType.PURCHASE, not self.voiding, ""
            return Action.CHANGED
        if key == "f2":
            if empty:
                return Action.SETTLE
            return Action.UPI if self.txn_type is TxnType.PURCHASE and not self.voiding \
                else Action.IGNORED
        if key == "enter":
            if empty and self.txn_type is TxnType.PURCHASE and not self.voiding:
                return Action.SERVICE
            if self.minor <= 0:
                return Action.IGNORED
            return Action.VOID if self.voiding else Action.ENTER
        if key == "cancel":
            return Action.CANCEL
        if key == "quit":
            return Action.QUIT
        return Action.IGNORED


class Job(Protocol):
    """Work the loop runs between taps (firmware.api's requests)."""

    def run(self, service: TerminalService) -> None: ...


class StopService(PitapError):
    """Raised inside the loop to end the service cleanly; never leaves `TerminalService.run`."""


class TerminalService:
    """The service loop around one Terminal and one keypad."""

    def __init__(self, terminal: Terminal, keypad: Keypad, *, currency: Currency,
                 result_hold_s: float = 5.0, stop: threading.Event | None = None,
                 upi: UpiTender | None = None) -> None:
        self.terminal = terminal
        self.feedback = terminal.feedback
        self.keypad = keypad
        self.currency = currency
        self.exponent = currency.exponent
        self.result_hold_s = result_hold_s
        self.stop = stop or threading.Event()
        self.results: list[PaymentResult] = []
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.running_id: int | None = None  # the payment that runs now, once journalled
        self._cancel: threading.Event | None = None  # its wait for a card ends when set
        self._lock = threading.Lock()
        self.upi = upi  # UPI by f2, when the shop takes it (INR, [upi])
        # the terminal API's address and certificate fingerprint ("" on plain HTTP), once served
        self.api_address: tuple[str, str] | None = None

    def key(self, timeout: float = 0.5) -> str | None:
        """The next key, or None when `timeout` passed (or a job waits); "quit" when the
        service is stopping."""
        if self.stop.is_set():
            return "quit"
        return self.keypad.read_key(min(timeout, JOB_POLL_S))

    def cancel(self, payment_id: int) -> bool:
        """End the wait for a card of `payment_id` if it is the one running (as the cancel key
        does; a card already being read is finished). False when it is not running."""
        with self._lock:
            if self.running_id != payment_id or self._cancel is None:
                return False
            self._cancel.set()
            return True

    def run_jobs(self) -> bool:
        """Run the jobs waiting (between taps); True when there was one."""
        ran = False
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return ran
            ran = True
            try:
                job.run(self)
            except StopService:
                raise
            except Exception:  # a job answers its requester itself; the loop goes on
                log.exception("job %r failed", job)

    def key_amount(self) -> tuple[int, TxnType, bool] | None:
        """Keys until enter or f2 (amount, txn type, by UPI), or None when cancelled; raises
        StopService."""
        entry = AmountEntry(self.exponent)
        while True:
            if self.run_jobs():  # a till's request: the keyed amount, if any, is dropped
                return None
            key = self.key()
            if key is None:
                continue
            action = entry.press(key)
            if action is Action.QUIT:
                raise StopService
            if action is Action.CANCEL:
                return None
            if action is Action.SETTLE:
                self.settle()
                return None
            if action is Action.SERVICE:
                self.service_screen()
                return None
            if action is Action.ENTER:
                return entry.minor, entry.txn_type, False
            if action is Action.UPI and self.upi is not None:
                return entry.minor, TxnType.PURCHASE, True
            if action is Action.VOID:
                self.void(entry.minor)
                return None
            if action is Action.CHANGED and entry.voiding:
                self.feedback.void_entry(entry.digits)
            elif action is Action.CHANGED:
                self.feedback.amount_entry(Money(entry.minor, self.currency), entry.txn_type)

    def run(self, max_payments: int | None = None) -> int:
        """Serve until quit, a stop, or `max_payments` payments; returns the count."""
        try:
            while max_payments is None or len(self.results) < max_payments:
                stored = self.terminal.stored()  # [offline]: what waits for the bank
                self.feedback.ready(stored.count, Money(stored.amount, self.terminal.cfg.currency),
                                    stored.declined_late)
                wanted = self.key_amount()
                if wanted is None:
                    continue
                amount, txn_type, by_upi = wanted
                if by_upi:
                    result = self.take_upi(amount)
                    self.hold(CANCELLED_SHOWN_S if result.outcome == "cancelled" else None)
                    continue
                tip = 0
                if txn_type is TxnType.PURCHASE and self.terminal.cfg.tips.mode == "prompt":
                    asked = self.ask_tip(amount)
                    if asked is None:  # cancelled on the tip screen: no payment
                        continue
                    tip = asked
                for attempt in range(1, ATTEMPTS + 1):
                    result = self.take(amount + tip, txn_type, tip=tip)
                    if result.outcome != "try_again" or attempt == ATTEMPTS:
                        break
                    if self.hold(TRY_AGAIN_SHOWN_S):  # a key: no new attempt, back to ready
                        break
                if self.offer_upi(result):  # the customer's chosen tip too, in the total
                    result = self.take_upi(amount + tip)
                self.hold(CANCELLED_SHOWN_S if result.outcome == "cancelled" else None)
        except StopService:
            pass
        return len(self.results)

    def ask_tip(self, base: int) -> int | None:
        """The tip screen before the tap ([tips] mode = "prompt"): the customer's key chooses a
        preset, another amount (keyed as an amount is, at most the tolerance) or no tip. The tip
        in minor units (0: none), or None when cancelled; raises StopService."""
        from firmware.tips import TipChoice, choose_tip, max_tip, tip_presets

        tips = self.terminal.cfg.tips
        presets = tip_presets(tips, base)
        shown = [(pct, Money(tip, self.currency)) for pct, tip in presets]
        while True:
            self.feedback.tip_prompt(Money(base, self.currency), shown)
            chosen = None
            while chosen is None:  # keys that choose nothing are dropped
                key = self._key_or_stop()
                if key == "cancel":
                    return None
                chosen = choose_tip(key, presets)
            choice, tip = chosen
            if choice is not TipChoice.CUSTOM:
                log.info("tip chosen: %s, %d", choice.value, tip)
                return tip
            custom = self.key_tip(max_tip(tips, base))
            if custom is not None:
                log.info("tip chosen: custom, %d", custom)
                return custom

    def key_tip(self, most: int) -> int | None:
        """Another tip, keyed as an amount is, until enter with one of at most `most`; None when
        cleared out or cancelled (back to the tip screen)."""
        entry = AmountEntry(self.exponent)
        too_much = False
        while True:
            self.feedback.tip_entry(Money(entry.minor, self.currency),
                                    Money(most, self.currency), too_much)
            key = self._key_or_stop()
            if key in ("f1", "f2"):  # no refund, void or settlement from here
                continue
            action = entry.press(key)
            if action is Action.CANCEL:
                return None
            too_much = action is Action.ENTER and entry.minor > most
            if action is Action.ENTER and not too_much:
                return entry.minor

    def _key_or_stop(self) -> str:
        """The next key (waiting as long as it takes); raises StopService on quit."""
        while (key := self.key()) is None:
            pass
        if key == "quit":
            raise StopService
        return key

    def take(self, amount: int, txn_type: TxnType, *, tip: int = 0, refund_of: int | None = None,
             on_started: Callable[[int], None] | None = None) -> PaymentResult:
        """One payment or refund of `amount` (`tip` of it a tip; a refund of payment
        `refund_of`), cancellable from the keypad, by `cancel` or by a stop while it waits for a
        card; its result is kept in `results` and told to the feedback's listeners ("outcome").
        `on_started(id)` once it is journalled. RefundRefused: nothing started."""
        if txn_type is TxnType.REFUND:
            return self._cancellable(lambda cancelled, started: self.terminal.refund(
                amount, refund_of, cancelled=cancelled, on_started=started), on_started)
        # a purchase, or a pre-authorization's hold (the API's)
        return self._cancellable(lambda cancelled, started: self.terminal.pay(
            amount, txn_type, currency=self.currency, cancelled=cancelled, tip=tip,
            on_started=started), on_started)

    def take_upi(self, amount: int,
                 on_started: Callable[[int], None] | None = None) -> PaymentResult:
        """One UPI payment of `amount` (the QR until the PSP says; cancel withdraws it), as
        `take` (`on_started(id)` once it is journalled). UpiRefused: nothing started."""
        assert self.upi is not None
        upi = self.upi
        return self._cancellable(
            lambda cancelled, started: upi.take(amount, cancelled, self.currency, started),
            on_started)

    def refund_upi(self, of_payment: int, amount: int,
                   on_started: Callable[[int], None] | None = None) -> PaymentResult:
        """The refund of `amount` of UPI payment `of_payment` to its payer through the PSP (as
        `pitap refund --of` does), as `take`. UpiRefused: nothing started."""
        assert self.upi is not None
        upi = self.upi
        return self._cancellable(
            lambda _cancelled, started: upi.refund(of_payment, amount, started), on_started)

    def paid_by_upi(self, payment_id: int | None) -> bool:
        """Whether journal payment `payment_id` was paid by UPI (its refund goes to the PSP)."""
        from firmware.journal import UnknownPayment
        from firmware.payment import Tender

        if payment_id is None:
            return False
        try:
            return self.terminal.journal.payment(payment_id).tender is Tender.UPI
        except UnknownPayment:
            return False

    def offer_upi(self, result: PaymentResult) -> bool:
        """After a card declined for what a phone cannot fix, with UPI at hand: "Pay by UPI
        instead?" until a key or the result hold; True when the key was f2 (take it by UPI)."""
        from firmware.upi.tender import UPI_FIXES

        if self.upi is None or result.txn_type is not TxnType.PURCHASE or (
                result.outcome != "declined" or result.decline not in UPI_FIXES):
            return False
        self.hold()  # the decline and its reason first
        self.feedback.message("upi_offer")
        deadline = time.monotonic() + max(self.result_hold_s, CANCELLED_SHOWN_S)
        while time.monotonic() < deadline and not self.stop.is_set():
            key = self.keypad.read_key(min(0.5, max(0.0, deadline - time.monotonic())))
            if key == "quit":
                raise StopService
            if key is not None:
                return key == "f2"
        return False

    def _cancellable(self, payment: Callable[[Callable[[], bool], Callable[[int], None]],
                                             PaymentResult],
                     on_started: Callable[[int], None] | None = None) -> PaymentResult:
        """`payment(cancelled, started)`, cancellable from the keypad, by `cancel` or by a stop;
        `started(id)` once it is journalled (then `running_id`, and `on_started(id)`). Its result
        is kept in `results` and told to the feedback's listeners ("outcome")."""
        cancel = threading.Event()
        done = threading.Event()

        def started(pid: int) -> None:
            with self._lock:
                self.running_id, self._cancel = pid, cancel
            if on_started is not None:
                on_started(pid)

        watcher = None
        if self.keypad.live:
            watcher = threading.Thread(target=self._watch_keys, args=(cancel, done),
                                       name="cancel-key", daemon=True)
            watcher.start()

        def cancelled() -> bool:
            return cancel.is_set() or self.stop.is_set()

        try:
            result = payment(cancelled, started)
        finally:
            with self._lock:
                self.running_id, self._cancel = None, None
            done.set()
            if watcher is not None:
                watcher.join()
            self.keypad.drain()
        self.results.append(result)
        log.info("payment %s: %s %s", result.id, result.outcome, result.reason)
        self.feedback.emit("outcome", result.id, outcome=result.outcome.value)
        return result

    def _watch_keys(self, cancel: threading.Event, done: threading.Event) -> None:
        """During a payment: cancel (or quit, which also stops the service) sets `cancel`;
        every other key is dropped."""
        while not done.is_set():
            try:
                key = self.keypad.read_key(WATCH_POLL_S)
            except Exception:  # a keypad fault must not end the payment; it goes on uncancellable
                log.exception("keypad failed during a payment")
                return
            if key in ("cancel", "quit"):
                log.info("%s key during the payment: cancelling the wait for a card", key)
                cancel.set()
                if key == "quit":
                    self.stop.set()
            elif key is not None:
                log.debug("key %r dropped: a payment is running", key)

    def void(self, payment_id: int) -> None:
        """Void a payment of the open batch (f1 twice, its number, enter) and say how it went."""
        with contextlib.suppress(Exception):  # shown and logged by void_shown
            self.void_shown(payment_id)
        self.hold()

    def void_shown(self, payment_id: int) -> VoidResult:
        """Void a payment and show "Voided", or why it cannot be (settled: refund it instead,
        unknown, ...), then raise VoidRefused (or what else went wrong)."""
        from firmware.void import VoidRefused

        try:
            result = self.terminal.void(payment_id)
        except VoidRefused as exc:
            log.info("void of payment %d refused: %s", payment_id, exc)
            self.feedback.message("void_refused",
                                  self.feedback.lang.t(f"void_refused_{exc.why.value}"))
            raise
        except Exception:
            log.exception("void of payment %d failed", payment_id)
            self.feedback.message("out_of_service", self.feedback.lang.t("reason_error"))
            raise
        log.info("%s", result.line())
        self.feedback.message("voided")
        return result

    def service_screen(self) -> None:
        """The terminal API's address and certificate fingerprint (enter on an empty amount),
        for the till's installer to pin; until a key (or SERVICE_SHOWN_S)."""
        url, fingerprint = self.api_address or ("", "")
        self.feedback.service_api(url, fingerprint)
        self.hold(SERVICE_SHOWN_S)

    def settle(self) -> None:
        """Close the batch with the acquirer (f2 on the ready screen) and show the report."""
        with contextlib.suppress(Exception):  # shown and logged by close_batch
            self.close_batch()
        self.hold()

    def close_batch(self) -> ZReport:
        """Settle the batch with the acquirer and show the report (or why it did not close,
        then raise what firmware.host.settlement.settle_day raised)."""
        from firmware.host.acquirer import HostUnavailable, NoReply
        from firmware.host.settlement import BatchNotClosed, settle_day

        try:
            report = settle_day(self.terminal.journal, self.terminal.acquirer, self.terminal.cfg)
        except (BatchNotClosed, HostUnavailable, NoReply) as exc:  # queue unsent: host away
            log.warning("settlement not done: %s", exc)
            self.feedback.message("out_of_service", self.feedback.lang.t(
                "reason_host_unavailable"))
            raise
        except Exception:
            log.exception("settlement failed")
            self.feedback.message("out_of_service", self.feedback.lang.t("reason_error"))
            raise
        self.feedback.settlement(report.totals, agreed=report.closed)
        log.info("settlement of batch %d: %s", report.batch,
                 "closed" if report.closed else "not agreed")
        return report

    def hold(self, seconds: float | None = None) -> bool:
        """Leave the outcome (and receipt QR) up `seconds` (default: the result hold) or until a
        key is pressed; True when a key ended it."""
        deadline = time.monotonic() + (self.result_hold_s if seconds is None else seconds)
        while time.monotonic() < deadline and not self.stop.is_set():
            if not self.jobs.empty():  # a till's request waits: it ends the hold as a key does
                return True
            key = self.keypad.read_key(min(JOB_POLL_S, max(0.0, deadline - time.monotonic())))
            if key == "quit":
                raise StopService
            if key is not None:
                return True
        return False
