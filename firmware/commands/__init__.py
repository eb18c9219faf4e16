"""One module a `pitap` subcommand, each with `register(subparsers)`; and the option they share."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware.recovery import RecoveryReport


class UsageError(ValueError):
    """A bad argument: `pitap` prints it in one line and exits 2."""


def count(text: str) -> int:
    """argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must not be negative")
    return value


def seconds(text: str) -> float:
    """argparse type: a duration in seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text}: must not be negative")
    return value


def add_config_option(parser: argparse.ArgumentParser,
                      default: str = "the shipped config/terminal.toml") -> None:
    """`--config FILE`: the terminal configuration; `default` says which one is used without it."""
    parser.add_argument("--config", metavar="FILE", default=None,
                        help=f"terminal configuration (default: {default})")


def _payments(ids: list[int]) -> str:
    return ("payment " if len(ids) == 1 else "payments ") + ", ".join(str(i) for i in ids)


def tell_recovery(report: RecoveryReport) -> None:
    """What start-up recovery did to the journal, in sentences on stderr (one a fact)."""
    lines = []
    if report.reversals_queued:
        lines.append(f"{_payments(report.reversals_queued)}: cut off while waiting for the "
                     "host; a reversal is queued so that the host drops any charge")
    if report.interrupted:
        lines.append(f"{_payments(report.interrupted)}: interrupted before anything was sent; "
                     "closed, nothing charged")
    if report.advices_queued:
        lines.append(f"{_payments(report.advices_queued)}: approved offline and not yet "
                     "reported; queued for the host")
    if report.settlements_to_resume:
        lines.append("a settlement was interrupted; `pitap settle` resumes it (same batch)")
    lines += report.problems
    for line in lines:
        print(f"pitap: {line}", file=sys.stderr, flush=True)
