"""Shared pieces of the emulated-chip tests: a tiny phone applet and a reader-path helper.

The tiny applet stands in for the wallet helper's `CardApplet` where a test needs exact control
(echo lengths, resets); the end-to-end tests use the real simulated wallets.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simulators.pn532.emulator import Pn532Emulator

SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
PPSE_FCI = bytes.fromhex(
    "6F23840E325041592E5359532E4444463031A511BF0C0E610C4F07A00000000310108701019000"
)
# Waiting, on a shared and maybe loaded machine: for a phone that is in the field (the wait ends
# as soon as it is read), and the bound on a fault's clean end (a hang, not a speed check: how
# fast nfcpy recovers is bench/emul_hardware.py's business).
TAP_S = 30.0
NO_HANG_S = 15.0


class TinyApplet:
    """Answers SELECT PPSE with a fixed FCI; `80 EE 00 00 Lc data` echoes data, `80 EE 00 00 Le`
    answers Le bytes of a counting pattern, `80 EE 01 ..` 300 bytes; everything else is 6D00."""

    def __init__(self, delay: float = 0.0) -> None:
        self.resets = 0
        self.apdus: list[bytes] = []
        self.delay = delay

    def reset(self) -> None:
        self.resets += 1

    def processing_delay(self, apdu: bytes) -> float:
        return self.delay

    def respond(self, apdu: bytes) -> bytes:
        self.apdus.append(bytes(apdu))
        if apdu == SELECT_PPSE:
            return PPSE_FCI
        if apdu[:3] == b"\x80\xee\x01":  # a response longer than one PN532 frame
            return bytes(i & 0xFF for i in range(300)) + b"\x90\x00"
        if apdu[:2] == b"\x80\xee":
            if len(apdu) == 5:  # Le only
                size = apdu[4] or 256
                return bytes(i & 0xFF for i in range(size)) + b"\x90\x00"
            lc = apdu[4]
            return apdu[5 : 5 + lc] + b"\x90\x00"
        return b"\x6d\x00"


def long_echo(size: int) -> bytes:
    """An echo APDU with `size` data bytes (short Lc)."""
    return b"\x80\xee\x00\x00" + bytes([size]) + bytes((i * 7) & 0xFF for i in range(size))


@contextmanager
def emulator(tmp_path: Path, **options: object) -> Iterator[Pn532Emulator]:
    """A started emulator whose link nfcpy can open: /dev/ttyPITAPn when /dev is writable,
    else ./COMn in `tmp_path` (nfcpy's com: path, which needs the current directory there)."""
    if os.access("/dev", os.W_OK):
        with Pn532Emulator(**options) as emu:  # type: ignore[arg-type]
            yield emu
        return
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        with Pn532Emulator(link=tmp_path / "COM9", **options) as emu:  # type: ignore[arg-type]
            yield emu
    finally:
        os.chdir(old)
