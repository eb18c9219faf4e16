"""`pitap preauth AMOUNT` (a tap: funds held online), `pitap increment ID AMOUNT`, `pitap complete
ID [AMOUNT]` and `pitap release ID` (no tap), see firmware.preauth; and the `pitap journal
--holds` listing.

Refused in one line, exit 2, with nothing sent: a bad amount or id, an unknown, released,
completed, expired or other-currency hold, a payment that is not one, a completion over the
held total plus `[preauth] tolerance_pct`. Exit 0 done; 1 when the host has not acknowledged it:
an increment not sent (host away) or declined, a completion or a release queued (sent with the
queue, `pitap settle` first).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from firmware.commands import (
    UsageError,
    add_config_option,
    existing_journal,
    parse_amount,
    tell_recovery,
)
from firmware.commands.pay import add_payment_args, take
from firmware.commands.void import parse_payment_id, print_void_receipt

if TYPE_CHECKING:
    from firmware.config import Config
    from firmware.journal import Journal
    from firmware.preauth import HoldResult


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preauth", help="pre-authorize: wait for a tap, hold the funds online",
                       description="A pre-authorization: funds held by the issuer (0100), "
                       "online only; raise it with `pitap increment`, capture it with `pitap "
                       "complete`, release it with `pitap release`.")
    add_payment_args(p)
    p.set_defaults(func=run_preauth)

    p = sub.add_parser("increment", help="raise a pre-authorization's hold (no tap)")
    p.add_argument("id", help="the pre-authorization's id, as `pitap journal` lists it")
    p.add_argument("amount", help="the amount to add, in major units, e.g. 20.00")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run_increment)

    p = sub.add_parser("complete", help="capture a pre-authorization (no tap)")
    p.add_argument("id", help="the pre-authorization's id, as `pitap journal` lists it")
    p.add_argument("amount", nargs="?", default=None,
                   help="the amount to capture (default: the held total); at most the held "
                   "total plus [preauth] tolerance_pct")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run_complete)

    p = sub.add_parser("release", help="release a pre-authorization's hold (no tap)")
    p.add_argument("id", help="the pre-authorization's id, as `pitap journal` lists it")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run_release)


def run_preauth(args: argparse.Namespace) -> int:
    from firmware.config import load_config
    from firmware.money import CURRENCIES

    if args.currency:
        cfg = load_config(args.config)
        wanted = CURRENCIES.get(args.currency.upper())
        if wanted is not None and wanted != cfg.currency:
            raise UsageError(f"--currency {args.currency}: a pre-authorization is held in the "
                             f"terminal's currency ({cfg.currency}), which it settles")
    return take(args, lambda terminal, amount, currency, cancelled: terminal.preauth(
        amount, currency=currency, cancelled=cancelled))


def _on_hold(args: argparse.Namespace, action: str) -> int:
    """Check the arguments, open the journal (recovery first) and the acquirer, run `action`,
    print the result and its receipt."""
    from firmware.config import load_config
    from firmware.host import connect
    from firmware.host.saf import StoreAndForward
    from firmware.preauth import (
        check_hold,
        complete_hold,
        increment_hold,
        release_hold,
    )
    from firmware.recovery import open_journal_at_start

    cfg = load_config(args.config)
    hold_id = parse_payment_id(args.id)
    amount = None
    if getattr(args, "amount", None) is not None:
        amount = parse_amount(args.amount, cfg.currency)
    existing_journal(cfg)
    journal, recovered = open_journal_at_start(cfg)
    try:
        tell_recovery(recovered)
        check_hold(journal, hold_id, cfg.currency)  # refused: nothing opened or sent
        acquirer = connect(cfg, stan_source=journal.next_stan)
        try:
            saf = StoreAndForward(journal, acquirer, cfg.terminal.merchant_id)
            if action == "increment":
                assert amount is not None
                result = increment_hold(journal, acquirer, saf, hold_id, amount, cfg)
            elif action == "completion":
                result = complete_hold(journal, saf, hold_id, amount, cfg)
            else:
                result = release_hold(journal, saf, hold_id, cfg)
        finally:
            acquirer.close()
    finally:
        journal.close()
    return _report(cfg, result, args.json)


def _report(cfg: Config, result: HoldResult, as_json: bool) -> int:
    if result.action != "increment" or result.done:
        print_void_receipt(cfg, result.payment.as_dict() | {"held": result.hold.held})
    print(json.dumps(result.as_dict(), sort_keys=True) if as_json else result.line(), flush=True)
    return 0 if result.done else 1


def run_increment(args: argparse.Namespace) -> int:
    return _on_hold(args, "increment")


def run_complete(args: argparse.Namespace) -> int:
    return _on_hold(args, "completion")


def run_release(args: argparse.Namespace) -> int:
    return _on_hold(args, "release")


def print_holds(cfg: Config, journal: Journal, as_json: bool) -> None:
    """`pitap journal --holds`: every hold not completed or released, with what it holds and
    when it expires (an expired one says so: it can no longer be completed)."""
    from firmware.journal import HoldStatus
    from firmware.money import Money, UnknownCurrency, currency
    from firmware.preauth import utc_now
    from ui.money import operator_text

    now = utc_now()
    shown = [h for h in journal.holds.all()
             if h.status(now) in (HoldStatus.OPEN, HoldStatus.EXPIRED)]
    for h in shown:
        if as_json:
            print(json.dumps(h.as_dict(now), sort_keys=True))
            continue
        try:
            held = operator_text(Money(h.held, currency(h.payment.currency)))
        except UnknownCurrency:
            held = f"{h.held} ({h.payment.currency})"
        status = h.status(now)
        until = "EXPIRED at" if status is HoldStatus.EXPIRED else "expires"
        extra = f" ({h.increments} increment(s))" if h.increments else ""
        card = f" {h.payment.scheme} {h.payment.masked_pan}" if h.payment.masked_pan else ""
        print(f"#{h.id:<5} hold {held:>14}{extra} {until} "
              f"{h.payment.expires_at[:16].replace('T', ' ')} UTC{card}")
    if not shown and not as_json:
        print("no open holds")
