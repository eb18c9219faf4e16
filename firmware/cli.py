"""The `pitap` command: parses arguments, calls into the firmware, prints. Nothing else.

Each subcommand lives in `firmware/commands/<name>.py` with `register(subparsers)`; the parser
sets `func(args) -> int`. An error a command lets through ends as EXIT_CODES says: one line on
stderr and an exit code, never a traceback (every pitap error derives from
firmware.errors.PitapError; the most specific class in the table wins).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from firmware import __version__

# Subcommand modules in the order `pitap --help` lists them.
COMMANDS = (
    "demo",
    "pay",
    "refund",
    "void",
    "preauth",  # also increment, complete, release
    "tip",
    "run",
    "api_key",
    "journal",
    "settle",
    "wallet",
    "host",
    "sim",
    "image",
    "flash",
    "diag",
)


# Error class (by module and name: nothing is imported for it, `pitap --help` stays quick) ->
# exit code and the one line printed, with {command} (the subcommand) and {error} (its message).
# The first class of an error's MRO found here decides; PitapError catches the rest.
EXIT_CODES: dict[str, tuple[int, str]] = {
    "firmware.commands.UsageError": (2, "pitap {command}: {error}"),
    # the journal busy, corrupt, an unknown payment or an illegal state change
    "firmware.journal.errors.JournalError": (2, "pitap {command}: {error}"),
    "firmware.config.ConfigError": (2, "pitap: configuration error: {error}"),
    "firmware.terminal.RefundRefused": (2, "pitap: {command} refused: {error}"),  # nothing charged
    "firmware.void.VoidRefused": (2, "pitap: void refused: {error}"),  # nothing sent
    "firmware.preauth.HoldRefused": (2, "pitap: {command} refused: {error}"),  # nothing sent
    "firmware.tips.TipRefused": (2, "pitap: tip refused: {error}"),  # nothing sent
    "firmware.upi.tender.UpiRefused": (2, "pitap: {command} refused: {error}"),  # nothing asked
    "firmware.provision.flash.FlashRefused": (2, "pitap: flash refused: {error}"),
    "firmware.provision.flash.FlashFailed": (1, "pitap: flash FAILED: {error}"),
    "firmware.provision.ProvisionError": (2, "pitap {command}: {error}"),  # bad input, tool missing
    "drivers.errors.PitapError": (1, "pitap {command}: {error}"),
}


def exit_for(exc: BaseException, command: str) -> tuple[int, str] | None:
    """(exit code, one line) for an error EXIT_CODES knows, or None."""
    for cls in type(exc).__mro__:
        found = EXIT_CODES.get(f"{cls.__module__}.{cls.__qualname__}")
        if found is not None:
            code, line = found
            return code, line.format(command=command, error=str(exc) or type(exc).__name__)
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pitap", description="Tap-to-pay terminal firmware for the Raspberry Pi."
    )
    parser.add_argument("--version", action="version", version=f"pitap {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show log lines: -v INFO, -vv DEBUG (default: none)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"firmware.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"firmware.commands.{name}":
                continue  # that command is not part of this build
            raise
        module.register(sub)
    return parser


def setup_logging(verbosity: int) -> None:
    """No log line reaches the terminal by default: a command says what its user must know in
    its own sentences. -v shows INFO from pitap and nfcpy, -vv DEBUG from pitap."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    # Records are still made at WARNING by default, for handlers that watch one part (diag
    # collects the buzzer worker's failures); they are just not shown.
    handler = logging.StreamHandler() if verbosity else logging.NullHandler()
    # force: a library may have configured logging when imported (python-escpos does).
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=[handler], force=True)
    # A library's warnings are log lines too: shown with -v, not printed by default.
    logging.captureWarnings(True)
    # pyemv drives 3DES through cryptography's deprecated path; the warning is not the user's.
    warnings.filterwarnings("ignore", message=".*TripleDES.*", module=r"pyemv(\.|$)")
    # nfcpy's debug output carries APDUs, card data among them: never below INFO. Filtered at
    # the handler too: importing nfc (when a command runs, after this) sets its logger to INFO.
    nfc_floor = max(level, logging.INFO)
    logging.getLogger("nfc").setLevel(nfc_floor)

    def nfc_at_floor(record: logging.LogRecord) -> bool:
        return record.levelno >= nfc_floor or record.name.partition(".")[0] != "nfc"

    for root_handler in logging.getLogger().handlers:
        root_handler.addFilter(nfc_at_floor)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose)
    from firmware.errors import PitapError  # not before: `pitap --help` stays quick

    try:
        return int(args.func(args) or 0)
    except PitapError as exc:
        code, line = exit_for(exc, args.command) or (1, f"pitap {args.command}: {exc}")
        print(line, file=sys.stderr)
        return code
    except BrokenPipeError:  # `pitap journal | head`: the reader left, nothing more to say
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("pitap: interrupted", file=sys.stderr)
        return 130
