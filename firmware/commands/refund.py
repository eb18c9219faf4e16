"""`pitap refund AMOUNT [--of ID]`: refund to the card tapped now, maybe of a journal payment."""

from __future__ import annotations

import argparse

from firmware.commands.pay import add_payment_args, take


def _paid_in(args: argparse.Namespace) -> str | None:
    """The alpha code of the currency journal payment `args.of` was made in; None when it is
    not in the journal (the refund then refuses it in one line) or its currency is unknown."""
    from firmware.commands import existing_journal
    from firmware.config import load_config
    from firmware.journal import Journal, UnknownPayment
    from firmware.money import UnknownCurrency, currency

    cfg = load_config(args.config)
    existing_journal(cfg)
    with Journal.from_config(cfg) as journal:
        try:
            return currency(journal.payment(args.of).currency).alpha
        except (UnknownPayment, UnknownCurrency):
            return None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refund", help="refund an amount to the card tapped now")
    add_payment_args(p)
    p.add_argument("--of", type=int, default=None, metavar="ID",
                   help="the journal payment this refunds (checked: approved, not over-refunded)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # With --of and no --currency, the refund is in the currency the payment was made in, and
    # its amount is read with that currency's decimals (a JPY payment at a EUR terminal: none).
    if args.of is not None and not args.currency:
        args.currency = _paid_in(args)
    return take(args, lambda terminal, amount, currency, cancelled: terminal.refund(
        amount, of_payment=args.of, currency=currency if args.currency else None,
        cancelled=cancelled), needs_journal=args.of is not None)
