"""`pitap settle [--json]`: close the day's batch with the acquirer and print the Z-report.

Only with the terminal's journal: where the configuration names none, nothing is sent (a 0500
of zeros would close the host's batch with the real sales in it)."""

from __future__ import annotations

import argparse
import json
import sys

from firmware.commands import add_config_option, existing_journal


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("settle", help="close the batch with the acquirer, print the Z-report",
                       description="Recover what a crash left half-way, send queued reversals "
                       "and advices (the batch stays open until they are acknowledged), then the "
                       "batch totals (0500); upload the batch if the host disagrees; print the "
                       "Z-report.")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="the Z-report as one JSON object")
    p.set_defaults(func=run)


def _not_closed(why: str, as_json: bool, later: str) -> int:
    """The one line (and with --json the one object) of a settlement that did not close."""
    if as_json:
        print(json.dumps({"closed": False, "error": why}))
    print(f"pitap settle: batch not closed: {why}. Run `pitap settle` again {later}.",
          file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    from firmware.config import load_config
    from firmware.host import connect
    from firmware.host.acquirer import HostUnavailable, NoReply
    from firmware.host.settlement import BatchNotClosed, format_z_report, settle_day
    from firmware.recovery import open_journal_at_start

    cfg = load_config(args.config)
    existing_journal(cfg)
    # Recovery first, as at every start: a payment a crash left waiting for its reply is
    # reversed before the batch closes, never after. (A JournalError: as EXIT_CODES says.)
    journal, _recovered = open_journal_at_start(cfg)  # recovery logs what it did
    try:
        acquirer = connect(cfg, stan_source=journal.next_stan)
    except BaseException:
        journal.close()
        raise
    try:
        report = settle_day(journal, acquirer, cfg)
    except BatchNotClosed as exc:
        return _not_closed(str(exc), args.json, "once the host answers")
    except (HostUnavailable, NoReply) as exc:
        return _not_closed(f"the acquirer did not answer: {exc}", args.json,
                           "later (same batch, same totals)")
    finally:
        acquirer.close()
        journal.close()
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
    else:
        print(format_z_report(report))
    return 0 if report.closed else 1
