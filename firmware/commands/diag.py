"""`pitap diag [--json]`: check every part of the terminal, say what is wrong and what to do.

Exit code 0 when every check passed, 1 when any failed, 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from firmware.commands import add_config_option, seconds

TERMINAL_CONFIG = Path("/etc/pitap/terminal.toml")  # written by first boot


class _CheckNames:
    """The check names, read from firmware.provision.diag only when argparse needs them
    (`pitap diag --help`, `--only NAME`), so that `pitap --help` does not import the checks."""

    def _names(self) -> list[str]:
        from firmware.provision.diag import CHECKS

        return list(CHECKS)

    def __iter__(self):  # noqa: ANN204
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("diag", help="self-test every part of the terminal")
    add_config_option(p, default=f"{TERMINAL_CONFIG} when present, else the shipped one")
    p.add_argument("--json", action="store_true", help="one JSON document with every check")
    p.add_argument("--only", metavar="CHECK", action="append", choices=_CheckNames(),
                   help="run only this check (repeatable): %(choices)s")
    p.add_argument("--field-timeout", type=seconds, default=10.0, metavar="S",
                   help="how long the field test waits for a card or phone (default 10)")
    p.add_argument("--no-ask", action="store_true",
                   help="never ask the technician (the default when not on a terminal)")
    p.set_defaults(func=handle)


def _ask(question: str) -> bool:
    answer = input(f"{question} [Y/n] ").strip().lower()
    return answer in ("", "y", "yes", "s", "si")


def _terminal_service_running() -> bool:
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return False
    done = subprocess.run([systemctl, "is-active", "--quiet", "pitap.service"],
                          capture_output=True, check=False, timeout=10)
    return done.returncode == 0


def handle(args: argparse.Namespace) -> int:
    from firmware.config import load_config
    from firmware.provision.diag import DiagContext, report_json, report_text, run_checks

    if _terminal_service_running():
        print("pitap: note: pitap.service is running and holds the reader and the display; "
              "for a full test stop it first: sudo systemctl stop pitap", file=sys.stderr)
    path = args.config or (TERMINAL_CONFIG if TERMINAL_CONFIG.is_file() else None)
    cfg = load_config(path)
    interactive = not (args.json or args.no_ask) and sys.stdin.isatty()
    ctx = DiagContext(cfg, interactive=interactive, ask=_ask, field_timeout=args.field_timeout)
    results = run_checks(ctx, args.only)
    print(report_json(results) if args.json else report_text(results))
    return 0 if all(r.ok for r in results) else 1
