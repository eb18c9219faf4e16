"""One module a `pitap` subcommand, each with `register(subparsers)`; and the option they share."""

from __future__ import annotations

import argparse


class UsageError(ValueError):
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
