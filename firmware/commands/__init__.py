"""One module a `pitap` subcommand, each with `register(subparsers)`; and the option they share."""

from __future__ import annotations

import argparse


def add_config_option(parser: argparse.ArgumentParser,
                      default: str = "the shipped config/terminal.toml") -> None:
    """`--config FILE`: the terminal configuration; `default` says which one is used without it."""
    parser.add_argument("--config", metavar="FILE", default=None,
                        help=f"terminal configuration (default: {default})")
