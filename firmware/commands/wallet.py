"""`pitap wallet`: a simulated phone wallet that answers taps on nfcpy's udp: driver.

    pitap wallet --list
    pitap wallet --profile visa-online [--reader udp:127.0.0.1:54321] [--taps N] [--timeout S]

Thin: parses, builds a simulators.wallet.phone.SimulatedPhone, serves, prints one line per tap as
it ends (flushed: a log file or a pipe sees each line at once).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from firmware.commands import add_config_option, require_simulators

DEFAULT_TIMEOUT_S = 300.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "wallet",
        help="run a simulated phone wallet (card side) on the udp: reader",
        description="A simulated phone wallet answering taps over nfcpy's udp: driver.",
    )
    parser.add_argument("--profile", help="wallet profile (see --list)")
    parser.add_argument("--list", action="store_true", help="list the wallet profiles and exit")
    parser.add_argument(
        "--reader", help="udp:HOST:PORT of the terminal's reader (default: reader.path of config)"
    )
    parser.add_argument("--taps", type=int, default=1, help="taps to answer (default 1)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"give up after this many seconds (default {DEFAULT_TIMEOUT_S:.0f})",
    )
    add_config_option(parser)
    parser.set_defaults(func=run)


def _list() -> int:
    from firmware.emv.outcome import mask_pan
    from simulators.wallet.phone import get_profile, profile_names

    for name in profile_names():
        p = get_profile(name)
        token = mask_pan(p.token)
        print(f"{name:22} {p.scheme:10} {p.aid:16} token {token} exp {p.expiry[2:]}/{p.expiry[:2]}")
        print(f"{'':22} {p.summary}")
    return 0


def run(args: argparse.Namespace) -> int:
    # pyemv still uses cryptography's TripleDES names; that is not the user's concern.
    warnings.filterwarnings("ignore", module=r"pyemv(\.|$)")
    require_simulators()
    from firmware.config import load_config
    from simulators.wallet.isodep import TapResult
    from simulators.wallet.phone import ProfileError, SimulatedPhone

    if args.list:
        return _list()
    if not args.profile:
        print("pitap wallet: --profile NAME is required (or --list)", file=sys.stderr)
        return 2
    if args.taps < 1:
        print("pitap wallet: --taps must be at least 1", file=sys.stderr)
        return 2
    reader = args.reader or load_config(args.config).reader.path
    try:
        phone = SimulatedPhone(args.profile, reader)
    except (ProfileError, ValueError) as exc:
        print(f"pitap wallet: {exc}", file=sys.stderr)
        return 2
    print(f"{args.profile}: waiting for {args.taps} tap(s) on {reader}", flush=True)

    def tell(tap: TapResult) -> None:
        print(f"tap {len(phone.taps)}: {tap.apdus} APDUs, ended by {tap.ended}", flush=True)

    try:
        served = phone.serve(taps=args.taps, timeout=args.timeout, on_tap=tell)
    except OSError as exc:
        print(f"pitap wallet: cannot use {reader}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{args.profile}: {served} of {args.taps} tap(s) answered", flush=True)
    return 0 if served == args.taps else 1
