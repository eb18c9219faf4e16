"""One module a `pitap` subcommand, each with `register(subparsers)`; and the option they share.

A command module imports only argparse and the standard library at the top; the terminal, the
kernel, nfcpy, Pillow and the rest are imported inside the function that runs the command, so
that `pitap --help` stays quick (tests/test_cli.py checks what it imports, bench/cli_start.py
measures it).
"""

from __future__ import annotations

import argparse


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
