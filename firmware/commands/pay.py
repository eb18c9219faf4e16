"""`pitap pay AMOUNT`: take one payment with the configured reader and host.

SIGTERM or Ctrl-C while it waits for a card cancels the payment (nothing charged); a card already
being read is finished. Stopped either way, the display is left on "Closed"."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from drivers.nfc import ReaderFault
from firmware.commands import UsageError, add_config_option, stopped_by_signals
from firmware.config import Config, ConfigError, currency_exponent, load_config
from firmware.terminal import PaymentResult, RefundRefused, Terminal, describe


def parse_amount(text: str, currency: str) -> int:
    """'12.50' in EUR -> 1250 minor units; refuses more decimals than the currency has."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise UsageError(f"amount {text!r} is not a number") from None
    exp = currency_exponent(currency)
    minor = value * (10**exp)
    if value <= 0 or minor != minor.to_integral_value():
        raise UsageError(f"amount {text!r}: a positive amount with at most {exp} decimals")
    return int(minor)


def add_payment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("amount", help="amount in major units, e.g. 12.50")
    p.add_argument("--currency", default=None, help="ISO 4217 code (default: the configured one)")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pay", help="take one payment: wait for a tap, print the outcome")
    add_payment_args(p)
    p.set_defaults(func=run)


def open_terminal(cfg: Config) -> Terminal:
    try:
        return Terminal.from_config(cfg)
    except ReaderFault as exc:
        raise ConfigError(f"{cfg.source}: reader.path: {exc}") from None


def print_result(result: PaymentResult, as_json: bool) -> int:
    print(json.dumps(result.as_dict()) if as_json else describe(result), flush=True)
    return 0 if result.outcome == "approved" else 1


def take(args: argparse.Namespace,
         action: Callable[[Terminal, int, str, Callable[[], bool]], PaymentResult]) -> int:
    """Open the configured terminal, run one payment or refund (`action(terminal, amount,
    currency, cancelled)`), print it, close."""
    cfg = load_config(args.config)
    currency = (args.currency or cfg.terminal.currency).upper()
    amount = parse_amount(args.amount, currency)
    stop = threading.Event()
    with stopped_by_signals(stop):
        terminal = open_terminal(cfg)
        try:
            result = action(terminal, amount, currency, stop.is_set)
        except RefundRefused as exc:  # refused before any tap: nothing was charged
            print(f"pitap: {args.command} refused: {exc}", file=sys.stderr)
            return 2
        finally:
            if stop.is_set():
                terminal.feedback.closed()
            terminal.close()
    return print_result(result, args.json)


def run(args: argparse.Namespace) -> int:
    return take(args, lambda terminal, amount, currency, cancelled: terminal.pay(
        amount, currency=currency, cancelled=cancelled))
