"""The FAT boot partition of an image, edited in place with mtools (no mounting).

`BootPartition(image, offset)` reads and writes files at `image@@offset`; file times come from
SOURCE_DATE_EPOCH so the result is reproducible. `with_interfaces` and `without_serial_console`
are the pure text edits of config.txt and cmdline.txt.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from firmware.provision import ProvisionError
from firmware.provision.mbr import BadImage
from firmware.provision.tools import require

BLOCK_START = "# --- pitap: interfaces the terminal needs (written by pitap image build) ---"
BLOCK_END = "# --- end pitap ---"
_SERIAL_CONSOLES = ("console=serial0", "console=ttyAMA0", "console=ttyS0", "console=ttyAMA10")


def with_interfaces(config_txt: str, lines: list[str]) -> str:
    """config.txt with our block (under [all], at the end, so it wins) replaced by `lines`."""
    kept: list[str] = []
    inside = False
    for line in config_txt.splitlines():
        if line.strip() == BLOCK_START:
            inside = True
        elif line.strip() == BLOCK_END:
            inside = False
        elif not inside:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    if lines:
        kept += ["", BLOCK_START, "[all]", *lines, BLOCK_END]
    return "\n".join(kept) + "\n"


def without_serial_console(cmdline: str) -> str:
    """cmdline.txt without a kernel console on the header UART (the reader needs it)."""
    words = [w for w in cmdline.split() if not w.startswith(_SERIAL_CONSOLES)]
    return " ".join(words) + "\n"


class BootPartition:
    """mtools on a FAT filesystem at a byte offset inside an image file."""

    def __init__(self, image: Path, offset: int, epoch: int, name: str | None = None) -> None:
        self.tools = require("mcopy", "mdir")
        self.target = f"{image}@@{offset}"
        self.epoch = epoch
        self.env = {
            **os.environ,
            "SOURCE_DATE_EPOCH": str(epoch),
            "MTOOLSRC": os.devnull,
            "MTOOLS_SKIP_CHECK": "1",
            "TZ": "UTC",
        }
        self.image_name = name or image.name

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(args, env=self.env, capture_output=True, check=False)
        if check and done.returncode != 0:
            msg = done.stderr.decode(errors="replace").strip().splitlines()
            raise ProvisionError(f"{args[0]} on the boot partition failed: {' '.join(msg[-1:])}")
        return done

    def check(self) -> None:
        done = self._run(self.tools["mdir"], "-i", self.target, "::", check=False)
        if done.returncode != 0:
            raise BadImage(f"{self.image_name}: the boot partition is not a FAT filesystem")

    def read(self, name: str) -> bytes | None:
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "f"
            done = self._run(
                self.tools["mcopy"], "-n", "-i", self.target, f"::{name}", str(dest), check=False
            )
            return dest.read_bytes() if done.returncode == 0 and dest.exists() else None

    def write(self, name: str, data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / Path(name).name
            src.write_bytes(data)
            os.utime(src, (self.epoch, self.epoch))
            self._run(self.tools["mcopy"], "-o", "-m", "-i", self.target, str(src), f"::{name}")
