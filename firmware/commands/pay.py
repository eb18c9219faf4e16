"""`pitap pay AMOUNT`: take one payment with the configured reader and host."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from firmware.commands import UsageError, add_config_option

if TYPE_CHECKING:  # the terminal (nfcpy, Pillow, python-escpos) is imported when a command runs
    from firmware.config import Config
    from firmware.terminal import PaymentResult, Terminal


def parse_amount(text: str, currency: str) -> int:
    """'12.50' in EUR -> 1250 minor units; refuses more decimals than the currency has."""
    from firmware.config import currency_exponent

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
    from drivers.nfc import ReaderFault
    from firmware.config import ConfigError
    from firmware.terminal import Terminal

    try:
        return Terminal.from_config(cfg)
    except ReaderFault as exc:
        raise ConfigError(f"{cfg.source}: reader.path: {exc}") from None


def print_result(result: PaymentResult, as_json: bool) -> int:
    from firmware.terminal import describe

    print(json.dumps(result.as_dict()) if as_json else describe(result), flush=True)
    return 0 if result.outcome == "approved" else 1


def take(args: argparse.Namespace,
         action: Callable[[Terminal, int, str], PaymentResult]) -> int:
    """Open the configured terminal, run one payment or refund, print it, close."""
    from firmware.config import load_config
    from firmware.terminal import RefundRefused

    cfg = load_config(args.config)
    currency = (args.currency or cfg.terminal.currency).upper()
    amount = parse_amount(args.amount, currency)
    terminal = open_terminal(cfg)
    try:
        result = action(terminal, amount, currency)
    except RefundRefused as exc:  # refused before any tap: nothing was charged
        print(f"pitap: {args.command} refused: {exc}", file=sys.stderr)
        return 2
    finally:
        terminal.close()
    return print_result(result, args.json)


def run(args: argparse.Namespace) -> int:
    return take(args, lambda terminal, amount, currency: terminal.pay(amount, currency=currency))
