"""`pitap refund AMOUNT [--of ID]`: refund to the card tapped now, maybe of a journal payment."""

from __future__ import annotations

import argparse
import sys

from firmware.commands.pay import add_payment_args, open_terminal, parse_amount, print_result
from firmware.config import load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refund", help="refund an amount to the card tapped now")
    add_payment_args(p)
    p.add_argument("--of", type=int, default=None, metavar="ID",
                   help="the journal payment this refunds (checked: approved, not over-refunded)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    currency = (args.currency or cfg.terminal.currency).upper()
    amount = parse_amount(args.amount, currency)
    terminal = open_terminal(cfg)
    try:
        try:
            result = terminal.refund(amount, of_payment=args.of)
        except ValueError as exc:
            print(f"pitap: refund refused: {exc}", file=sys.stderr)
            return 2
    finally:
        terminal.close()
    return print_result(result, args.json)
