"""One module a `pitap` subcommand, each with `register(subparsers)`; and the option they share."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)


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
