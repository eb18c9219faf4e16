"""Image build and flash speed on a synthetic Raspberry Pi OS-like image (MBR, FAT32 boot,
ext4 root holding 64 MiB of incompressible data), with a one-wheel wheelhouse.

Prints figures; asserts nothing. About half a minute on a laptop; a real 2.5 GiB Raspberry Pi OS
Lite image takes proportionally longer, and a real SD card writes at its own speed (10-90 MB/s).
Needs sfdisk, mkfs.vfat, mke2fs, mtools, debugfs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware.provision.flash import flash  # noqa: E402
from firmware.provision.image import build_image  # noqa: E402
from firmware.provision.wheelhouse import build_pitap_wheel, from_directory  # noqa: E402

MiB = 1024 * 1024
SIZE = 512 * MiB
BOOT_START, BOOT_MIB = 8192, 128  # sectors, MiB

SITE = """mode = "test"
[terminal]
terminal_id = "PITAP042"
merchant_id = "000000000000042"
[acquirer]
host = "127.0.0.1"
port = 8583
tls = false
"""


def run(*args: str, **kw: object) -> None:
    subprocess.run(args, check=True, capture_output=True, **kw)  # type: ignore[call-overload]


def sparse_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def make_base(tmp: Path) -> Path:
    image = sparse_file(tmp / "base.img", SIZE)
    root_start = BOOT_START + BOOT_MIB * 2048
    table = (f"label: dos\nstart={BOOT_START}, size={BOOT_MIB * 2048}, type=c\n"
             f"start={root_start}, type=83\n")
    run("sfdisk", "-q", str(image), input=table.encode())
    boot = sparse_file(tmp / "boot.fat", BOOT_MIB * MiB)
    run("mkfs.vfat", "-F", "32", str(boot))
    (tmp / "config.txt").write_text("dtparam=audio=on\n")
    run("mcopy", "-i", str(boot), str(tmp / "config.txt"), "::config.txt")
    src = tmp / "rootsrc" / "usr" / "lib"
    src.mkdir(parents=True)
    (src / "blob").write_bytes(os.urandom(64 * MiB))
    root = sparse_file(tmp / "root.ext4", SIZE - root_start * 512)
    run("mke2fs", "-q", "-t", "ext4", "-d", str(tmp / "rootsrc"), str(root))
    with open(image, "r+b") as f:
        f.seek(BOOT_START * 512)
        f.write(boot.read_bytes())
        f.seek(root_start * 512)
        f.write(root.read_bytes())
    return image


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pitap-bench-") as name:
        tmp = Path(name)
        base = make_base(tmp)
        (tmp / "site.toml").write_text(SITE)
        (tmp / "wheels").mkdir()
        build_pitap_wheel(tmp / "wheels", 1735689600)
        house = from_directory(tmp / "wheels")

        started = time.monotonic()
        result = build_image(base, tmp / "site.toml", tmp / "out.img", house, epoch=1735689600)
        build_s = time.monotonic() - started
        print(f"image build   {SIZE / MiB:6.0f} MiB image  {build_s:6.2f} s  "
              f"{SIZE / MiB / build_s:7.1f} MiB/s (copy, edit both partitions, read back, hash)")

        started = time.monotonic()
        second = build_image(base, tmp / "site.toml", tmp / "again.img", house, epoch=1735689600)
        print(f"rebuild       same sha256: {second.sha256 == result.sha256}  "
              f"{time.monotonic() - started:6.2f} s")

        flashed = flash(tmp / "out.img", tmp / "card.img", lambda *_: True)
        total = flashed.seconds + flashed.verify_seconds
        print(f"flash (file)  write {flashed.seconds:6.2f} s  "
              f"verify {flashed.verify_seconds:6.2f} s  {SIZE / MiB / total:7.1f} MiB/s overall; "
              f"{flashed.skipped_zero_bytes / MiB:.0f} MiB of zero blocks skipped")


if __name__ == "__main__":
    main()
