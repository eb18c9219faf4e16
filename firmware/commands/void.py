"""`pitap void ID`: cancel an approved payment of the open batch, with no tap (firmware.void).

With a printer configured it prints the void's receipt (VOID, VOIDED). Refused in one line,
exit 2, with nothing sent: an unknown, refunded, already voided, settled
("settled: refund it instead") or other-currency payment, or a refund. Exit 0 once voided, 1
when the void is queued but the host has not acknowledged it yet (it goes with the queue).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from firmware.commands import (
    UsageError,
    add_config_option,
    existing_journal,
    tell_recovery,
)

if TYPE_CHECKING:
    from firmware.config import Config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("void", help="cancel an approved payment of the open batch (no tap)",
                       description="Cancel an approved payment before settlement: a reversal "
                       "to the host (online approvals, advised offline ones), or the unsent "
                       "advice dropped (offline approvals). A settled payment is refunded "
                       "instead.")
    p.add_argument("id", help="the payment's id, as `pitap journal` lists it")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def parse_payment_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) == 0:
        shown = text if len(text) <= 24 else text[:24] + "..."
        raise UsageError(f"payment id {shown!r}: a number as `pitap journal` lists it")
    return int(text)


def print_void_receipt(cfg: Config, payment: dict[str, object]) -> None:
    """The void's merchant and customer copies on the configured printer (none: nothing);
    a printer problem is a log line, never a different outcome."""
    if cfg.printer.backend == "none":
        return
    from firmware.feedback import Feedback

    feedback = Feedback.from_config(cfg)
    try:
        feedback.receipt(payment, qr=False)
    finally:
        feedback.close()


def run(args: argparse.Namespace) -> int:
    from firmware.config import load_config
    from firmware.host import connect
    from firmware.host.saf import StoreAndForward
    from firmware.recovery import open_journal_at_start
    from firmware.void import check_voidable, void_payment

    cfg = load_config(args.config)
    payment_id = parse_payment_id(args.id)
    existing_journal(cfg)
    # Recovery first, as at every start; VoidRefused and JournalError end as EXIT_CODES says.
    journal, recovered = open_journal_at_start(cfg)
    try:
        tell_recovery(recovered)
        check_voidable(journal, payment_id, cfg.currency)  # refused: nothing opened or sent
        acquirer = connect(cfg, stan_source=journal.next_stan)
        try:
            result = void_payment(journal, StoreAndForward(journal, acquirer,
                                                           cfg.terminal.merchant_id),
                                  payment_id, cfg.currency)
        finally:
            acquirer.close()
    finally:
        journal.close()
    print_void_receipt(cfg, result.payment.as_dict())
    if args.json:
        print(json.dumps({"id": payment_id, "voided": result.voided, "sent": result.sent,
                          "state": result.payment.state.value, "pending": result.pending},
                         sort_keys=True), flush=True)
    else:
        print(result.line(), flush=True)
    return 0 if result.voided else 1
