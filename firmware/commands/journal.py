"""`pitap journal [--json] [--queue] [--check]`: the journal's payments, with --json each with its
history; --queue the reversals, advices and stored payments waiting for the host; --check the
start-up checks (integrity, schema, key, private files) without taking a payment. The list ends
with what is stored for the bank ([offline]: count, total, a warning past offline.max_age_h),
the payments the host declined after the fact, and the open batch's UPI payments apart from the
cards (count and total per currency; any still pending at the PSP).

Shows only what the journal keeps in the clear (first 6 / last 4 of the card number at most);
the encrypted card data is never decrypted here. It only reads, so it neither claims the journal
nor runs recovery (firmware.recovery): a payment a crash interrupted shows as `awaiting_reply`
until the next `pitap pay`, `refund`, `run` or `settle` starts and recovers it. Where the
configuration names no journal, one line and exit 2: a journal is never created here.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from firmware.commands import add_config_option, count, existing_journal

if TYPE_CHECKING:
    from firmware.config import Config
    from firmware.journal import Journal, Payment, QueueItem


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("journal", help="list the payments in the journal")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="one JSON object per payment, with history")
    p.add_argument("--last", type=count, metavar="N", help="only the last N payments")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--queue", action="store_true", help="reversals/advices waiting to be sent")
    what.add_argument("--check", action="store_true", help="run the start-up checks and report")
    what.add_argument("--holds", action="store_true",
                      help="pre-authorizations still holding funds, with their expiry")
    p.set_defaults(func=run)


def payment_line(p: Payment) -> str:
    from firmware.money import Money, UnknownCurrency, currency
    from ui.money import operator_text

    try:
        amount = operator_text(Money(p.amount, currency(p.currency)))
    except UnknownCurrency:  # not one this terminal knows (an older configuration's)
        amount = f"{p.amount} ({p.currency})"
    parts = [
        f"#{p.id:<5}",
        p.created_at[:19].replace("T", " "),
        f"{p.txn_type.value:<8}",
        f"{amount:>14}",
        f"{'voided' if p.voided else p.outcome.value if p.outcome else '-':<9}",
        f"state={p.state.value}",
    ]
    if p.tender.value == "upi":  # firmware.upi.tender: no card, the PSP's references
        parts += ["UPI", f"tr={p.upi_reference}"]
        parts += [f"psp={p.psp_reference}"] if p.psp_reference else []
        parts += [p.payer_vpa] if p.payer_vpa else []
    elif p.scheme:
        parts.append(p.scheme)
    if p.masked_pan:
        parts.append(p.masked_pan)
    if p.auth_code:
        parts.append(f"auth={p.auth_code}")
    if p.stan is not None:
        parts.append(f"stan={p.stan:06d}")
    if p.offline:
        parts.append("offline")
    if p.hold_of is not None:  # an increment or a completion of a pre-authorization
        parts.append(f"hold=#{p.hold_of}")
    if p.expires_at:  # a pre-authorization's hold
        parts.append(f"expires={p.expires_at[:16].replace('T', ' ')}")
    if p.reason:
        parts.append(f"({p.reason})")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    from firmware.config import load_config
    from firmware.journal import Journal
    from firmware.payment import QueueKind

    cfg = load_config(args.config)
    existing_journal(cfg)
    journal = Journal.from_config(cfg)  # a JournalError ends as firmware.cli.EXIT_CODES says
    try:
        if args.check:
            return _check(cfg, journal, args.json)
        if args.queue:
            _print_queue(journal.queue(), args.json)
            return 0
        if args.holds:
            from firmware.commands.preauth import print_holds

            print_holds(cfg, journal, args.json)
            return 0
        payments = journal.payments(last=args.last)
        if args.json:
            for p in payments:
                entry = p.as_dict() | {"history": [h.as_dict() for h in journal.history(p.id)]}
                print(json.dumps(entry, sort_keys=True))
        else:
            for p in payments:
                print(payment_line(p))
            if not payments:
                print("no payments yet")
            pending = journal.queue()
            if pending:
                kinds = ", ".join(
                    f"{sum(1 for q in pending if q.kind is k)} {k.value}(s)"
                    for k in QueueKind
                    if any(q.kind is k for q in pending)
                )
                print(f"queued for the host: {kinds}")
            for line in offline_lines(cfg, journal) + upi_summary(journal):
                print(line)
    finally:
        journal.close()
    return 0


def offline_lines(cfg: Config, journal: Journal) -> list[str]:
    """What the shopkeeper must know of [offline]: what is stored for the bank (and whether it
    is getting old), and what the host declined after the fact."""
    import datetime as dt

    from firmware.money import Money
    from firmware.offline import too_old
    from firmware.payment import PaymentState
    from ui.money import operator_text

    lines = []
    stored = journal.stored_totals(cfg.currency.numeric)
    if stored.count:
        lines.append(f"stored for the bank: {stored.count} payment(s), "
                     f"{operator_text(Money(stored.amount, cfg.currency))} in all, not yet "
                     "forwarded")
        if too_old(stored.oldest, cfg.offline.max_age_h, dt.datetime.now(dt.UTC)):
            lines.append(f"warning: a stored payment is older than offline.max_age_h "
                         f"({cfg.offline.max_age_h:g} h): the bank may refuse it; no more "
                         "payments are stored until it is forwarded")
    late = journal.payments_in_state(PaymentState.DECLINED_LATE)
    if late:
        total = sum(p.amount for p in late if p.currency == cfg.currency.numeric)
        ids = ", ".join(f"#{p.id}" for p in late)
        lines.append(f"declined after the fact: {len(late)} payment(s) ({ids}), "
                     f"{operator_text(Money(total, cfg.currency))} not received")
    return lines


def upi_summary(journal: Journal) -> list[str]:
    """The open batch's UPI payments apart from the cards (firmware.upi.tender): per currency
    how many were paid and their total, refunds, and what is still pending at the PSP."""
    from firmware.payment import PaymentState
    from ui.money import operator_text

    batch = journal.open_batch()
    lines = [f"UPI (batch {batch}, not for the acquirer): {t.sales_count} paid "
             f"{operator_text(t.sales)}, {t.refunds_count} refunded {operator_text(t.refunds)}"
             for _number, t in sorted(journal.upi_totals(batch).items())]
    pending = journal.payments_in_state(PaymentState.UPI_PENDING)
    if pending:
        lines.append(f"UPI still pending at the PSP: {', '.join(f'#{p.id}' for p in pending)} "
                     "(not approved; asked again at the next start)")
    return lines


def _print_queue(items: list[QueueItem], as_json: bool) -> None:
    for q in items:
        if as_json:
            print(json.dumps(q.as_dict() | {"due": q.due()}, sort_keys=True))
        else:
            due = "due now" if q.due() else "retry later"
            err = f" last error: {q.last_error}" if q.last_error else ""
            print(f"{q.id:>5} {q.kind.value:<8} payment #{q.payment_id} "
                  f"attempts={q.attempts} {due}{err}")
    if not items and not as_json:
        print("nothing queued for the host")


def _check(cfg: Config, journal: Journal, as_json: bool) -> int:
    """The journal opened (integrity check passed, schema migrated, key usable): report."""
    from firmware.private_files import problems

    found = problems(cfg)
    report = {
        "journal": str(journal.path),
        "integrity": "ok",
        "schema_version": journal.schema_version(),
        "payments": len(journal.payments()),
        "queued": len(journal.queue()),
        "unfinished_settlements": len(journal.unfinished_settlements()),
        "not_private": found,
    }
    if as_json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(
            f"journal {report['journal']}: integrity ok, schema v{report['schema_version']}, "
            f"{report['payments']} payment(s), {report['queued']} queued for the host"
        )
        for line in found:
            print(f"not private: {line}")
    return 1 if found else 0
