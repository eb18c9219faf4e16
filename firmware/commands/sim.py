"""`pitap sim pn532`: an emulated PN532 on a pseudo-terminal, a simulated phone in its field.

Prints the nfcpy reader path to configure (`[reader] path = "tty:ttyPITAP0:pn532"`) on the first
line of stdout, then answers the reader until interrupted, `--seconds` pass or the phone made its
`--taps`. Thin: the chip is simulators.pn532.emulator, the phone simulators.wallet's CardApplet.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

from firmware.commands import count, require_simulators, seconds

if TYPE_CHECKING:  # the simulators are a distribution of their own, imported when run
    from simulators.pn532.field import Applet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="emulated hardware for development without a Pi")
    chips = p.add_subparsers(dest="chip", metavar="CHIP")
    pn = chips.add_parser(
        "pn532",
        help="a PN532 on a pseudo-terminal for nfcpy's tty: driver",
        description="Emulate a PN532 NFC chip on a pseudo-terminal. The first line printed is "
        "the reader path for nfcpy (configure it as [reader] path).",
    )
    pn.add_argument("--link", default=None, help="link to the pty (default /dev/ttyPITAPn)")
    pn.add_argument("--profile", default=None, help="simulated wallet in the field (none: empty)")
    pn.add_argument(
        "--taps", type=count, default=0, help="taps the phone makes (0: it stays in the field)"
    )
    pn.add_argument("--gap", type=seconds, default=1.0, help="seconds between taps")
    pn.add_argument("--seconds", type=seconds, default=None, help="stop after this long")
    pn.add_argument("--line-timing", action="store_true", help="take serial and air time")
    pn.set_defaults(func=run_pn532)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print("pitap sim: name the chip to emulate (pn532)", file=sys.stderr)
    return 2


def _applet(profile: str) -> Applet:
    """The wallet helper's APDU-level phone for `profile`; EmulatorError (one line) if unusable."""
    from simulators.pn532.emulator import EmulatorError
    from simulators.wallet import phone as wallet

    names = wallet.profile_names()
    if profile not in names:
        raise EmulatorError(f"unknown wallet profile {profile!r} (one of: {', '.join(names)})")
    try:
        return wallet.CardApplet(profile)
    except (ValueError, OSError) as exc:  # ProfileError, unreadable test issuer keys
        raise EmulatorError(f"wallet profile {profile!r}: {exc}") from None


def run_pn532(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    require_simulators()
    from simulators.pn532.emulator import EmulatorError, Pn532Emulator

    emulator = Pn532Emulator(link=args.link, line_timing=args.line_timing)
    try:
        applet = _applet(args.profile) if args.profile else None
        emulator.start()
    except EmulatorError as exc:
        print(f"pitap: {exc}", file=sys.stderr)
        return 2
    stop = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():  # `kill` cleans up like Ctrl-C
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        if applet is not None:
            if args.taps:
                emulator.queue_taps(applet, args.taps, gap=args.gap)
            else:
                emulator.place_phone(applet)
        print(emulator.nfcpy_path, flush=True)
        print(
            f"PN532 emulator on {emulator.tty_path} (link {emulator.link}); "
            f"phone: {args.profile or 'none'}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        try:
            while not stop.is_set():
                if args.taps and emulator.field.taps_done >= args.taps:
                    break  # every tap made: the phone has gone
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                stop.wait(0.1 if left is None else min(left, 0.1))
        except KeyboardInterrupt:
            pass
    finally:
        emulator.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
