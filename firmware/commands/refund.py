"""`pitap refund AMOUNT [--of ID]`: refund to the card tapped now, maybe of a journal payment."""

from __future__ import annotations

import argparse

from firmware.commands.pay import add_payment_args, take


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refund", help="refund an amount to the card tapped now")
    add_payment_args(p)
    p.add_argument("--of", type=int, default=None, metavar="ID",
                   help="the journal payment this refunds (checked: approved, not over-refunded)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # With --of and no --currency, the refund is in the currency the payment was made in.
    return take(args, lambda terminal, amount, currency, cancelled: terminal.refund(
        amount, of_payment=args.of, currency=currency if args.currency else None,
        cancelled=cancelled), needs_journal=args.of is not None)
