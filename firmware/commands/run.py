"""`pitap run`: the terminal as a long-running service (systemd unit config/systemd/pitap.service).

keypad -> amount -> tap -> outcome -> receipt -> ready, again and again, with the display, status
lights, tones and printer the configuration names; on a desktop the same loop runs on simulated
hardware with the keyboard as keypad. Payments go through firmware.terminal.Terminal, which
journals them; this module only collects amounts and paces the screens.

Keys: digits shift in from the right as on a till (1 2 5 0 -> 12.50), clear deletes the last
digit (or leaves the entry when empty), enter takes the payment, cancel returns to ready, f1
switches between purchase and refund, f2 on an empty entry settles the batch with the acquirer
and shows the report, quit (end of keyboard input) stops the service.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from typing import Any

from firmware.commands import add_config_option, count, seconds, tell_recovery
from firmware.config import ConfigError, currency_exponent, load_config

log = logging.getLogger(__name__)

MAX_DIGITS = 9  # 9 999 999.99 in a two-decimal currency: above any contactless limit


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

    def __init__(self, terminal: Any, keypad: Any, *, currency: str,
                 result_hold_s: float = 5.0, stop: threading.Event | None = None) -> None:
        self.terminal = terminal
        self.feedback = terminal.feedback
        self.keypad = keypad
        self.currency = currency
        self.exponent = currency_exponent(currency)
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
                self.feedback.amount_entry(entry.minor, self.currency, entry.txn_type)

    def run(self, max_payments: int | None = None) -> int:
        """Serve until quit, a stop signal, or `max_payments` payments; returns the count."""
        try:
            while max_payments is None or len(self.results) < max_payments:
                self.feedback.ready()
                wanted = self.key_amount()
                if wanted is None:
                    continue
                amount, txn_type = wanted
                if txn_type == "refund":
                    result = self.terminal.refund(amount)
                else:
                    result = self.terminal.pay(amount, currency=self.currency)
                self.results.append(result)
                log.info("payment %s: %s %s", result.id, result.outcome, result.reason)
                self.hold()
        except StopService:
            pass
        return len(self.results)

    def settle(self) -> None:
        """Close the batch with the acquirer (f2 on the ready screen) and show the report."""
        from firmware.host.acquirer import HostUnavailable, NoReply, SettlementTotals
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
            t = report.totals
            self.feedback.settlement(SettlementTotals(
                t["sales_count"], t["sales_amount"], t["refunds_count"], t["refunds_amount"],
                report.currency, report.batch), agreed=report.closed)
            log.info("settlement of batch %d: %s", report.batch,
                     "closed" if report.closed else "not agreed")
        self.hold()

    def hold(self) -> None:
        """Leave the outcome (and receipt QR) up for a while, or until a key is pressed."""
        deadline = time.monotonic() + self.result_hold_s
        while time.monotonic() < deadline and not self.stop.is_set():
            key = self.keypad.read_key(min(0.5, max(0.0, deadline - time.monotonic())))
            if key == "quit":
                raise StopService
            if key is not None:
                return


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
    from drivers.gpio import gpio_module
    from drivers.keypad import open_keypad

    cfg = load_config(args.config)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping after the current payment", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    terminal = open_terminal_or_show_why(cfg)
    if terminal is None:
        return 1  # systemd restarts the service; the display says why meanwhile
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
        service = TerminalService(terminal, keypad, currency=cfg.terminal.currency.upper(),
                                  result_hold_s=args.hold, stop=stop)
        count = service.run(args.max_payments)
        log.info("pitap run: %d payments", count)
        return 0
    finally:
        keypad.close()
        terminal.close()


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
