"""`pitap settle [--json]`: close the day's batch with the acquirer and print the Z-report."""

from __future__ import annotations

import argparse
import json
import sys

from firmware.commands import add_config_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("settle", help="close the batch with the acquirer, print the Z-report",
                       description="Send queued reversals and advices, then the batch totals "
                       "(0500); upload the batch if the host disagrees; print the Z-report.")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="the Z-report as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from firmware.config import load_config
    from firmware.host import connect
    from firmware.host.acquirer import HostUnavailable, NoReply
    from firmware.host.settlement import format_z_report, settle_day
    from firmware.journal import Journal, JournalError

    cfg = load_config(args.config)
    try:
        journal = Journal.from_config(cfg)
    except JournalError as exc:
        print(f"pitap settle: {exc}", file=sys.stderr)
        return 1
    acquirer = connect(cfg, stan_source=journal.next_stan)
    try:
        report = settle_day(journal, acquirer, cfg)
    except (HostUnavailable, NoReply) as exc:
        if args.json:
            print(json.dumps({"closed": False, "error": f"acquirer did not answer: {exc}"}))
        print(f"pitap settle: batch not closed, the acquirer did not answer: {exc}. "
              "Run `pitap settle` again later (same batch, same totals).", file=sys.stderr)
        return 1
    finally:
        acquirer.close()
        journal.close()
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
    else:
        print(format_z_report(report))
    return 0 if report.closed else 1
