"""`pitap pay AMOUNT`: take one payment with the configured reader and host.

The amount and the currency are checked before anything opens: a malformed amount, one over the
12 digits of EMV 9F02 or over every application's contactless limit (the AID table), or an
unknown currency is one line and exit 2, with no payment journalled and no tap awaited.

SIGTERM or Ctrl-C while it waits for a card cancels the payment (nothing charged); a card already
being read is finished. Stopped either way, the display is left on "Closed".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from firmware.commands import (
    UsageError,
    add_config_option,
    existing_journal,
    parse_amount,
    parse_currency,
    stopped_by_signals,
    tell_recovery,
)
from firmware.config import ConfigError, load_config
from firmware.money import Currency, Money

if TYPE_CHECKING:  # the terminal (nfcpy, Pillow, python-escpos) is imported when a command runs
    from firmware.config import Config
    from firmware.terminal import PaymentResult, Terminal
    from firmware.upi.tender import UpiTender


def check_contactless_limit(cfg: Config, amount: int, currency: Currency) -> None:
    """UsageError when `amount` is over the contactless limit of every application in the AID
    table: no card could take it, so no tap is awaited."""
    from firmware.emv.aids import load_aid_table

    path = cfg.data_path(cfg.kernel.aid_table)
    from ui.money import operator_text

    highest = max(e.limits_for(currency.numeric).contactless_txn_limit
                  for e in load_aid_table(path).entries)
    if amount > highest:
        raise UsageError(f"amount {operator_text(Money(amount, currency))} is over the "
                         "contactless limit of every application "
                         f"({operator_text(Money(highest, currency))}, {path})")


def add_payment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("amount", help="amount in major units, e.g. 12.50")
    p.add_argument("--currency", default=None, help="ISO 4217 code (default: the configured one)")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pay", help="take one payment: wait for a tap, print the outcome")
    add_payment_args(p)
    p.add_argument("--upi", action="store_true",
                   help="take it by UPI (India): show a dynamic QR, the payer pays from a phone "
                   "app (INR, needs [upi] payee_vpa)")
    p.add_argument("--tip", default=None, metavar="TIP",
                   help="a tip in major units, added to AMOUNT (needs [tips] mode prompt or "
                   "adjust; at most tips.max_percent of AMOUNT)")
    p.set_defaults(func=run)


def open_terminal(cfg: Config) -> Terminal:
    from drivers.nfc import ReaderFault
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
         action: Callable[[Terminal, int, Currency, Callable[[], bool]], PaymentResult],
         needs_journal: bool = False, tip: str | None = None) -> int:
    """Check the amount, open the configured terminal, run one payment or refund
    (`action(terminal, amount, currency, cancelled)`), print it, close. `needs_journal`: refuse
    (exit 2) when the configuration's journal does not exist. `tip` (major units, added to the
    amount: `action` gets the total) is checked against [tips] before anything opens."""
    cfg = load_config(args.config)
    currency = parse_currency(args.currency) if args.currency else cfg.currency
    amount = parse_amount(args.amount, currency)
    if tip is not None:
        from firmware.tips import check_tip, parse_tip

        tip_amount = parse_tip(tip, currency)
        check_tip(cfg.tips, amount, tip_amount, currency)
        amount += tip_amount
    check_contactless_limit(cfg, amount, currency)
    if needs_journal:
        existing_journal(cfg)
    stop = threading.Event()
    with stopped_by_signals(stop):
        # JournalBusy (another pitap is at work) and RefundRefused (refused before any tap:
        # nothing charged) end as firmware.cli.EXIT_CODES says
        terminal = open_terminal(cfg)
        try:
            tell_recovery(terminal.recovered)
            result = action(terminal, amount, currency, stop.is_set)
        finally:
            if stop.is_set():
                terminal.feedback.closed()
            terminal.close()
    return print_result(result, args.json)


@contextlib.contextmanager
def opened_upi(cfg: Config) -> Iterator[UpiTender]:
    """The configuration's UPI tender on its journal (recovered first, as at every start: a
    UPI request left pending is asked about at the PSP) and screen; all closed after."""
    from firmware.feedback import Feedback
    from firmware.private_files import prepare_state_dir
    from firmware.recovery import open_journal_at_start
    from firmware.upi.tender import UpiTender

    prepare_state_dir(cfg)
    journal, recovered = open_journal_at_start(cfg)
    with contextlib.ExitStack() as opened:
        opened.callback(journal.close)
        tell_recovery(recovered)
        feedback = Feedback.from_config(cfg)
        opened.callback(feedback.close)
        tender = UpiTender.for_terminal(cfg, journal, feedback)
        opened.callback(tender.close)
        yield tender


def run_upi(args: argparse.Namespace) -> int:
    """`pitap pay AMOUNT --upi`: INR and [upi] checked before anything opens (one line, exit 2);
    then recovery (a UPI request left pending is asked about at the PSP) and one UPI payment.
    SIGTERM or Ctrl-C withdraws the request at the PSP (a payer who paid first is approved)."""
    from firmware.upi.config import upi_settings

    cfg = load_config(args.config)
    currency = parse_currency(args.currency) if args.currency else cfg.currency
    if args.tip is not None:
        raise UsageError("--tip is for card payments, not with --upi")
    if currency.alpha != "INR":
        raise UsageError(f"--upi takes INR only, not {currency.alpha} "
                         "(terminal.currency or --currency INR)")
    if not upi_settings(cfg).enabled:
        raise UsageError(f"--upi: UPI is not configured ([upi] payee_vpa in {cfg.source})")
    amount = parse_amount(args.amount, currency)
    stop = threading.Event()
    with stopped_by_signals(stop), opened_upi(cfg) as tender:
        tender.check(amount, currency)  # refused (exit 2) before anything is written
        result = tender.take(amount, stop.is_set, currency)
        if stop.is_set():
            tender.feedback.closed()
    return print_result(result, args.json)


def run(args: argparse.Namespace) -> int:
    if args.upi:
        return run_upi(args)
    if args.tip is None:
        return take(args, lambda terminal, amount, currency, cancelled: terminal.pay(
            amount, currency=currency, cancelled=cancelled))
    tip_text = args.tip

    def pay_with_tip(terminal: Terminal, total: int, currency: Currency,
                     cancelled: Callable[[], bool]) -> PaymentResult:
        from firmware.tips import parse_tip

        return terminal.pay(total, currency=currency, cancelled=cancelled,
                            tip=parse_tip(tip_text, currency))

    return take(args, pay_with_tip, tip=tip_text)
