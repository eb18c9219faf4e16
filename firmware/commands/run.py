"""`pitap run`: the terminal as a long-running service (systemd unit config/systemd/pitap.service).

keypad -> amount -> tap -> outcome -> receipt -> ready, again and again, with the display, status
lights, tones and printer the configuration names; on a desktop the same loop runs on simulated
hardware with the keyboard as keypad. Payments go through firmware.terminal.Terminal, which
journals them; this module only collects amounts and paces the screens.

A card or phone that leaves mid-tap ends its payment as "try again" (nothing charged) and the same
amount is presented again, so the customer just taps again.

While a payment runs, a live keypad (matrix, buttons, a keyboard on a terminal) is read on a
thread of its own: cancel (or quit) ends the wait for a card at once, as "Cancelled" with nothing
charged, through the terminal's cancel hook (`Terminal.pay(cancelled=...)`); other keys are
dropped, and the keypad is drained when the payment ends, so nothing pressed during it fires
afterwards. A stop signal (SIGTERM, Ctrl-C) cancels the wait the same way; a card already being
read is finished. Whenever the service stops, the display is left on "Closed", lights off.

Keys: digits shift in from the right as on a till (1 2 5 0 -> 12.50), clear deletes the last
digit (or leaves the entry when empty), enter takes the payment, cancel returns to ready, f1
switches between purchase and refund, f2 on an empty entry settles the batch with the acquirer
and shows the report, quit (end of keyboard input) stops the service.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from typing import Any

from firmware.commands import add_config_option, count, seconds, stopped_by_signals, tell_recovery
from firmware.config import ConfigError, load_config
from firmware.money import Currency, Money

log = logging.getLogger(__name__)

MAX_DIGITS = 9  # 9 999 999.99 in a two-decimal currency: above any contactless limit
# A card that left mid-tap ends its payment as "try again"; the same amount is then presented
# again (a new payment), up to ATTEMPTS in all, after "Try again" was up TRY_AGAIN_SHOWN_S.
ATTEMPTS = 3
TRY_AGAIN_SHOWN_S = 1.5
CANCELLED_SHOWN_S = 1.5  # "Cancelled" stays this long (or until a key), then ready
WATCH_POLL_S = 0.05  # how often the keypad is looked at during a payment


class AmountEntry:
    """The amount being keyed, in minor units, and whether it is a purchase or a refund."""

    def __init__(self, exponent: int = 2, max_digits: int = MAX_DIGITS) -> None:
        self.exponent = exponent
        self.max_digits = max_digits
        self.digits = ""
        self.txn_type = "purchase"

    @property
    def minor(self) -> int:
        return int(self.digits or "0")

    def press(self, key: str) -> str:
        """Apply one key: returns "changed", "enter" (a positive amount is ready), "cancel",
        "quit" or "ignored"."""
        if key.isdigit() and len(key) == 1:
            if len(self.digits) >= self.max_digits or (key == "0" and not self.digits):
                return "ignored"
            self.digits += key
            return "changed"
        if key == "clear":
            if not self.digits:
                return "cancel"
            self.digits = self.digits[:-1]
            return "changed"
        if key == "f1":
            self.txn_type = "refund" if self.txn_type == "purchase" else "purchase"
            return "changed"
        if key == "f2":
            return "settle" if not self.digits else "ignored"
        if key == "enter":
            return "enter" if self.minor > 0 else "ignored"
        if key in ("cancel", "quit"):
            return key
        return "ignored"


class TerminalService:
    """The service loop around one Terminal and one keypad."""

    def __init__(self, terminal: Any, keypad: Any, *, currency: Currency,
                 result_hold_s: float = 5.0, stop: threading.Event | None = None) -> None:

        self.terminal = terminal
        self.feedback = terminal.feedback
        self.keypad = keypad
        self.currency = currency
        self.exponent = currency.exponent
        self.result_hold_s = result_hold_s
        self.stop = stop or threading.Event()
        self.results: list[Any] = []

    def key(self, timeout: float = 0.5) -> str | None:
        """The next key, or None when `timeout` passed or the service is stopping."""
        if self.stop.is_set():
            return "quit"
        return self.keypad.read_key(timeout)

    def key_amount(self) -> tuple[int, str] | None:
        """Keys until enter (amount, txn type), or None when cancelled; raises StopService."""
        entry = AmountEntry(self.exponent)
        while True:
            key = self.key()
            if key is None:
                continue
            action = entry.press(key)
            if action == "quit":
                raise StopService
            if action == "cancel":
                return None
            if action == "settle":
                self.settle()
                return None
            if action == "enter":
                return entry.minor, entry.txn_type
            if action == "changed":
                self.feedback.amount_entry(Money(entry.minor, self.currency), entry.txn_type)

    def run(self, max_payments: int | None = None) -> int:
        """Serve until quit, a stop signal, or `max_payments` payments; returns the count."""
        try:
            while max_payments is None or len(self.results) < max_payments:
                self.feedback.ready()
                wanted = self.key_amount()
                if wanted is None:
                    continue
                amount, txn_type = wanted
                for attempt in range(1, ATTEMPTS + 1):
                    result = self.take(amount, txn_type)
                    if result.outcome != "try_again" or attempt == ATTEMPTS:
                        break
                    if self.hold(TRY_AGAIN_SHOWN_S):  # a key: no new attempt, back to ready
                        break
                self.hold(CANCELLED_SHOWN_S if result.outcome == "cancelled" else None)
        except StopService:
            pass
        return len(self.results)

    def take(self, amount: int, txn_type: str) -> Any:
        """One payment or refund of `amount`, cancellable from the keypad or by a stop signal
        while it waits for a card; its result is kept in `results`."""
        cancel = threading.Event()
        done = threading.Event()
        watcher = None
        if self.keypad.live:
            watcher = threading.Thread(target=self._watch_keys, args=(cancel, done),
                                       name="cancel-key", daemon=True)
            watcher.start()

        def cancelled() -> bool:
            return cancel.is_set() or self.stop.is_set()

        try:
            if txn_type == "refund":
                result = self.terminal.refund(amount, cancelled=cancelled)
            else:
                result = self.terminal.pay(amount, currency=self.currency, cancelled=cancelled)
        finally:
            done.set()
            if watcher is not None:
                watcher.join()
            self.keypad.drain()
        self.results.append(result)
        log.info("payment %s: %s %s", result.id, result.outcome, result.reason)
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

    def settle(self) -> None:
        """Close the batch with the acquirer (f2 on the ready screen) and show the report."""
        from firmware.host.acquirer import HostUnavailable, NoReply
        from firmware.host.settlement import BatchNotClosed, settle_day

        try:
            report = settle_day(self.terminal.journal, self.terminal.acquirer, self.terminal.cfg)
        except (BatchNotClosed, HostUnavailable, NoReply) as exc:  # queue unsent: host away
            log.warning("settlement not done: %s", exc)
            self.feedback.message("out_of_service", self.feedback.lang.t(
                "reason_host_unavailable"))
        except Exception:
            log.exception("settlement failed")
            self.feedback.message("out_of_service", self.feedback.lang.t("reason_error"))
        else:
            self.feedback.settlement(report.totals, agreed=report.closed)
            log.info("settlement of batch %d: %s", report.batch,
                     "closed" if report.closed else "not agreed")
        self.hold()

    def hold(self, seconds: float | None = None) -> bool:
        """Leave the outcome (and receipt QR) up `seconds` (default: the result hold) or until a
        key is pressed; True when a key ended it."""
        deadline = time.monotonic() + (self.result_hold_s if seconds is None else seconds)
        while time.monotonic() < deadline and not self.stop.is_set():
            key = self.keypad.read_key(min(0.5, max(0.0, deadline - time.monotonic())))
            if key == "quit":
                raise StopService
            if key is not None:
                return True
        return False


class StopService(Exception):
    """Raised inside the loop to end the service cleanly."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the terminal service: keypad, tap, outcome, receipt, repeat")
    add_config_option(p)
    p.add_argument("--max-payments", type=count, default=None, help="stop after N payments")
    p.add_argument("--hold", type=seconds, default=5.0,
                   help="seconds the outcome stays on screen (default 5)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    stop = threading.Event()
    with stopped_by_signals(stop):
        terminal = open_terminal_or_show_why(cfg)
        if terminal is None:
            return 1  # systemd restarts the service; the display says why meanwhile
        try:
            return serve(args, cfg, terminal, stop)
        finally:
            terminal.feedback.closed()  # nobody taps a terminal that no longer listens
            terminal.close()


def serve(args: argparse.Namespace, cfg: Any, terminal: Any, stop: threading.Event) -> int:
    """The keypad and the service loop until quit, a signal or --max-payments."""
    from drivers.gpio import gpio_module
    from drivers.keypad import open_keypad

    gpio = getattr(terminal.feedback, "gpio", None) or gpio_module(cfg.gpio.backend)
    keypad = open_keypad(cfg.keypad, gpio=gpio)
    try:
        tell_recovery(terminal.recovered)
        if cfg.keypad.backend == "keyboard" and sys.stdin.isatty():
            print("pitap run: digits, Enter to pay, Backspace/c to clear, r refund, s settle, "
                  "Esc cancel, q quit", file=sys.stderr)
        elif cfg.keypad.backend == "keyboard":
            print("pitap run: keypad.backend = keyboard without a terminal: keys come from "
                  "standard input and the service stops when it ends (use matrix or buttons on "
                  "a Pi)", file=sys.stderr, flush=True)
        service = TerminalService(terminal, keypad, currency=cfg.currency,
                                  result_hold_s=args.hold, stop=stop)
        count = service.run(args.max_payments)
        log.info("pitap run: %d payments", count)
        return 0
    finally:
        keypad.close()


def open_terminal_or_show_why(cfg: Any) -> Any:
    """The Terminal, or None after putting "Out of service" and the reason on the display."""
    from firmware.terminal import Terminal

    try:
        return Terminal.from_config(cfg)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.error("terminal cannot start: %s", reason)
        print(f"pitap: terminal cannot start: {reason}", file=sys.stderr)
        try:
            from firmware.feedback import Feedback

            fb = Feedback.from_config(cfg)
            fb.message("out_of_service", reason[:120])
            fb.close()
        except Exception:
            log.exception("cannot show the out-of-service screen either")
        if isinstance(exc, ConfigError):
            raise
        return None
