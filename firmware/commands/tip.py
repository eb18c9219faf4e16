"""`pitap tip ID AMOUNT`: set the tip of an approved payment of the open batch, with no tap
(firmware.tips; [tips] mode = "adjust", restaurant style).

AMOUNT is the whole tip in major units (`0` takes a tip away), not an addition. Refused in one
line, exit 2, with nothing sent: tips not in adjust mode, an unknown, refunded, voided, settled,
stored or other-currency payment, a refund, a negative or malformed tip, one over the tolerance
(`tips.max_percent` of the amount before the tip). Exit 0 once the host accepted it, 1 when it
is queued (the host did not answer: it goes with the queue, `pitap settle` sends it first) or
the host refused it.
"""

from __future__ import annotations

import argparse
import json

from firmware.commands import add_config_option, existing_journal, tell_recovery
from firmware.commands.void import parse_payment_id


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tip", help="set the tip of an approved payment before settlement (no tap)",
                       description="Set the tip of an approved purchase of the open batch "
                       "(restaurant style, [tips] mode = \"adjust\"): a tip adjustment to the "
                       "host (0220 by default), within tips.max_percent of the amount.")
    p.add_argument("id", help="the payment's id, as `pitap journal` lists it")
    p.add_argument("amount", help="the whole tip in major units, e.g. 2.50 (0: no tip)")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from firmware.config import load_config
    from firmware.host import connect
    from firmware.host.saf import StoreAndForward
    from firmware.recovery import open_journal_at_start
    from firmware.tips import adjust_tip, check_adjustable, parse_tip

    cfg = load_config(args.config)
    payment_id = parse_payment_id(args.id)
    tip = parse_tip(args.amount, cfg.currency)
    existing_journal(cfg)
    journal, recovered = open_journal_at_start(cfg)
    try:
        tell_recovery(recovered)
        check_adjustable(journal, payment_id, tip, cfg.tips, cfg.currency)  # refused: nothing sent
        acquirer = connect(cfg, stan_source=journal.next_stan)
        try:
            result = adjust_tip(journal, StoreAndForward(journal, acquirer,
                                                         cfg.terminal.merchant_id),
                                payment_id, tip, cfg.tips, cfg.currency)
        finally:
            acquirer.close()
    finally:
        journal.close()
    if args.json:
        p = result.payment
        print(json.dumps({"id": payment_id, "tip": result.tip, "adjusted": result.adjusted,
                          "amount": p.amount, "base": p.base, "refused": result.refused,
                          "pending": result.pending}, sort_keys=True), flush=True)
    else:
        print(result.line(), flush=True)
    return 0 if result.adjusted else 1
