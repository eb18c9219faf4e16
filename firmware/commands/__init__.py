"""One module a `pitap` subcommand, each with `register(subparsers)`; and what they share: the
argument types (counts, seconds, amounts, currencies), `--config`, and the journal check.

A command module imports only argparse, the standard library and firmware.config at the top; the
terminal, the kernel, nfcpy, Pillow and the rest are imported inside the function that runs the
command, so that `pitap --help` stays quick (tests/test_cli.py checks what it imports,
bench/cli_start.py measures it).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from firmware.errors import PitapError
from firmware.money import CURRENCIES, Currency, Money

if TYPE_CHECKING:
    from firmware.config import Config
    from firmware.recovery import RecoveryReport

log = logging.getLogger(__name__)

# EMV 9F02 (Amount, Authorised) holds 12 digits of minor units: nothing larger can be paid.
MAX_AMOUNT_DIGITS = 12
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


class UsageError(PitapError, ValueError):
    """A bad argument: `pitap` prints it in one line and exits 2."""


def require_simulators() -> None:
    """UsageError (one line, exit 2) unless the simulators (the pitap-sim distribution) are
    installed: the development commands need them, a terminal never carries them."""
    try:
        import simulators  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "simulators":
            raise
        raise UsageError("needs the simulators, which are not installed here (a terminal does "
                         "not carry them): in a pitap checkout, make install "
                         "(pip install -e . -e simulators)") from None


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
    facts = [
        (report.reversals_queued, "cut off while waiting for the host; a reversal is queued so "
                                  "that the host drops any charge"),
        (report.interrupted, "interrupted before anything was sent; closed, nothing charged"),
        (report.advices_queued, "approved offline and not yet reported; queued for the host"),
        (report.partials_voided, "part of a purchase whose rest was never paid; voided (queued "
                                 "for the host) so that nothing stays charged"),
        (report.upi_settled, "UPI request left pending; ended as the PSP says (approved only "
                             "on its success)"),
        (report.upi_pending, "UPI request still pending (the PSP did not answer); not approved, "
                             "asked again at the next start"),
    ]
    lines = [f"{_payments(ids)}: {what}" for ids, what in facts if ids]
    if report.settlements_to_resume:
        lines.append("a settlement was interrupted; `pitap settle` resumes it (same batch)")
    lines += report.problems
    for line in lines:
        print(f"pitap: {line}", file=sys.stderr, flush=True)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 24 else text[:24] + "...")


def parse_currency(text: str, option: str = "--currency") -> Currency:
    """An ISO 4217 alpha code the terminal knows (any case); UsageError naming `option`."""
    found = CURRENCIES.get(text.upper())
    if found is None:
        raise UsageError(f"{option} {_shown(text)}: unknown currency "
                         f"(known: {', '.join(CURRENCIES)})")
    return found


def parse_amount(text: str, currency: Currency) -> int:
    """'12.50' in EUR -> 1250 minor units, for every command that takes an amount.

    Only ASCII digits with an optional decimal point and at most the currency's decimals; more
    than zero and at most 12 digits of minor units (EMV 9F02). UsageError (one line) otherwise:
    no exponents, signs, inf or nan, and no arithmetic on a number nobody typed."""
    exp = currency.exponent
    match = _AMOUNT.fullmatch(text)
    if match is None:
        example = "1250" if exp == 0 else "12." + "50".ljust(exp, "0")
        raise UsageError(f"amount {_shown(text)}: digits with an optional decimal point, "
                         f"e.g. {example}")
    whole, decimals = match.group(1), match.group(2) or ""
    if decimals and exp == 0:
        raise UsageError(f"amount {_shown(text)}: {currency} has no decimals")
    if len(decimals) > exp:
        raise UsageError(f"amount {_shown(text)}: at most {exp} decimals in {currency}")
    digits = (whole + decimals.ljust(exp, "0")).lstrip("0")
    if not digits:
        raise UsageError(f"amount {_shown(text)}: must be more than zero")
    if len(digits) > MAX_AMOUNT_DIGITS:
        from ui.money import operator_text

        most = operator_text(Money(10**MAX_AMOUNT_DIGITS - 1, currency))
        raise UsageError(f"amount {_shown(text)}: at most {most} "
                         f"({MAX_AMOUNT_DIGITS} digits of minor units)")
    return int(digits)


def existing_journal(cfg: Config) -> Path:
    """The journal file `cfg` names; UsageError when there is none, so that a command that reads
    or settles the journal never starts a new, empty one (and sends nothing)."""
    path = cfg.state_path(cfg.journal.file)
    if not path.is_file():
        raise UsageError(f"no journal at {path} (terminal.state_dir of {cfg.source}); "
                         "nothing done: is that the terminal's configuration?")
    return path


@contextlib.contextmanager
def stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """Within: SIGTERM and a first Ctrl-C (SIGINT) set `stop` instead of ending the process, so
    a command can end what it does cleanly (a second Ctrl-C interrupts as usual). The previous
    handlers come back afterwards. Outside the main thread nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    saved = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM,
                                                                      signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
