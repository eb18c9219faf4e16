"""`pitap image build`: a terminal's SD card image from a Raspberry Pi OS Lite image."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("image", help="build a terminal SD card image")
    sub = p.add_subparsers(dest="image_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build OUT.img from a Raspberry Pi OS Lite image")
    b.add_argument("--base", type=Path, required=True, help="Raspberry Pi OS Lite .img or .img.xz")
    b.add_argument("--site", type=Path, required=True, help="the terminal's provisioning file")
    b.add_argument("--out", type=Path, required=True, help="the image to write")
    b.add_argument(
        "--wheelhouse",
        type=Path,
        help="directory of ready wheels (pitap + deps for the Pi); default: build pitap's wheel "
        "here and download the dependencies' aarch64 wheels",
    )
    b.set_defaults(func=handle_build)


def handle_build(args: argparse.Namespace) -> int:
    from firmware.provision.image import build_epoch, build_image, check_inputs
    from firmware.provision.wheelhouse import build_for_target, from_directory

    try:
        site = check_inputs(args.base, args.site, args.out)
        # the simulators (TEST keys) only for a test-mode site's field check, never otherwise
        simulators = site.field_check is not None
        epoch = build_epoch()
        with tempfile.TemporaryDirectory(prefix="pitap-wheels-") as tmp:
            if args.wheelhouse is not None:
                house = from_directory(args.wheelhouse, allow_simulators=simulators)
            else:
                print("pitap: building the wheelhouse for the Pi (aarch64)...", file=sys.stderr)
                house = build_for_target(Path(tmp), epoch, simulators=simulators)
            result = build_image(args.base, args.site, args.out, house, epoch=epoch)
    # a ProvisionError (bad input or a missing tool: the user's to fix) ends as EXIT_CODES says
    except OSError as exc:  # disk full, permissions...
        print(f"pitap: image build failed: {exc}", file=sys.stderr)
        return 1
    print(f"image:   {result.out} ({result.size / 2**20:.1f} MiB)")
    print(f"sha256:  {result.sha256}")
    print(f"config:  {', '.join(result.config_lines) or 'no interface changes'}")
    print(f"units:   {', '.join(result.units)} (enabled)")
    print(f"wheels:  {len(result.wheels)} in /opt/pitap/wheelhouse")
    if result.holds_secrets:
        print("note: the image holds this terminal's secrets until its first boot: keep it "
              "safe and delete it after flashing", file=sys.stderr)
    for missing in result.missing_wheels:
        print(f"warning: no aarch64 wheel for {missing}: the terminal will lack it",
              file=sys.stderr)
    return 0
