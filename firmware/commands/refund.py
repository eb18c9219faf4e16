"""`pitap refund AMOUNT [--of ID]`: refund to the card tapped now, maybe of a journal payment.
A refund of a UPI payment (`--of` a payment paid by UPI) goes back to its payer through the PSP
(firmware.upi.tender), with no tap; never to a card."""

from __future__ import annotations

import argparse

from firmware.commands.pay import add_payment_args, take


def _paid_in(args: argparse.Namespace) -> tuple[str | None, bool]:
    """The alpha code of the currency journal payment `args.of` was made in (None when it is
    not in the journal: the refund then refuses it in one line, or its currency is unknown),
    and whether it was paid by UPI."""
    from firmware.commands import existing_journal
    from firmware.config import load_config
    from firmware.journal import Journal, UnknownPayment
    from firmware.money import UnknownCurrency, currency

    cfg = load_config(args.config)
    existing_journal(cfg)
    with Journal.from_config(cfg) as journal:
        try:
            paid = journal.payment(args.of)
        except UnknownPayment:
            return None, False
        try:
            return currency(paid.currency).alpha, paid.tender.value == "upi"
        except UnknownCurrency:
            return None, paid.tender.value == "upi"


def refund_upi(args: argparse.Namespace) -> int:
    """The refund of UPI payment `args.of` through the PSP: recovery first (a refund left
    pending is asked again), then the refund; exit 0 refunded, 1 not, 2 refused (one line)."""
    from firmware.commands import parse_amount, parse_currency
    from firmware.commands.pay import opened_upi, print_result
    from firmware.config import load_config

    cfg = load_config(args.config)
    amount = parse_amount(args.amount, parse_currency(args.currency or "INR"))
    with opened_upi(cfg) as tender:
        result = tender.refund(args.of, amount)
    return print_result(result, args.json)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refund", help="refund an amount to the card tapped now")
    add_payment_args(p)
    p.add_argument("--of", type=int, default=None, metavar="ID",
                   help="the journal payment this refunds (checked: approved, not over-refunded)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # With --of and no --currency, the refund is in the currency the payment was made in, and
    # its amount is read with that currency's decimals (a JPY payment at a EUR terminal: none).
    if args.of is not None:
        paid_in, by_upi = _paid_in(args)
        args.currency = args.currency or paid_in
        if by_upi:
            return refund_upi(args)
    return take(args, lambda terminal, amount, currency, cancelled: terminal.refund(
        amount, of_payment=args.of, currency=currency if args.currency else None,
        cancelled=cancelled), needs_journal=args.of is not None)
