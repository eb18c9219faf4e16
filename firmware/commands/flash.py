"""`pitap flash IMAGE DEVICE [--yes]`: write an image to an SD card and verify it by read-back."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware.provision.flash import Target


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("flash", help="write an image to an SD card, then verify it")
    p.add_argument("image", type=Path, help="the image (.img or .img.xz)")
    p.add_argument("device", type=Path, help="the whole card (/dev/sdX, /dev/mmcblk0) or a file")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=handle)


def _confirm(yes: bool):  # noqa: ANN202
    from firmware.provision.flash import FlashRefused

    def confirm(target: Target, size: int | None) -> bool:
        if yes or (target.kind == "file" and not target.exists):
            return True
        if not sys.stdin.isatty():
            raise FlashRefused(f"about to overwrite {target.description}: add --yes to confirm")
        how_much = f"{size / 2**20:.0f} MiB" if size else "the image"
        answer = input(
            f"Write {how_much} to {target.description}? Everything on it will be lost. "
            "Type 'yes': "
        )
        return answer.strip().lower() == "yes"

    return confirm


def handle(args: argparse.Namespace) -> int:
    from firmware.provision.flash import flash

    # A file-size limit (ulimit -f) must end as a reported failed write, not a killed process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # FlashRefused (exit 2) and FlashFailed (exit 1) end as firmware.cli.EXIT_CODES says
    result = flash(args.image, args.device, _confirm(args.yes))
    mib = 2**20
    rate = result.image_bytes / mib / max(result.seconds, 1e-6)
    print(
        f"wrote {result.image_bytes / mib:.1f} MiB to {args.device} in {result.seconds:.1f} s "
        f"({rate:.1f} MiB/s; {result.skipped_zero_bytes / mib:.1f} MiB of zero blocks skipped)"
    )
    print(f"verified in {result.verify_seconds:.1f} s: read-back SHA-256 {result.sha256} "
          "matches the image")
    return 0
