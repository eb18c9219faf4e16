"""Cancel benchmark: from the cancel key (the hook turning True) to the end of the wait for a card,
with no card in the field, over nfcpy's `udp:` driver and over the emulated PN532 (nfcpy's pn532
driver on a pty). The cancel comes at a random moment of a poll. Figures only; nothing asserted.

    python bench/cancel.py [--runs N]
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from emul_support import emulator  # noqa: E402

from drivers.nfc import Reader  # noqa: E402
from simulators.demo import free_port  # noqa: E402


def latencies(reader: Reader, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        pressed: list[float] = []
        cancel = threading.Event()
        timer = threading.Timer(random.uniform(0.3, 1.3), press, (pressed, cancel))
        timer.start()
        card = reader.wait_for_card(15.0, cancel.is_set)
        ended = time.monotonic()
        timer.join()
        if card is not None:
            raise RuntimeError("a card answered in an empty field")
        out.append(ended - pressed[0])
    return out


def press(pressed: list[float], cancel: threading.Event) -> None:
    """The cancel key: when it was pressed, and the hook turning True."""
    pressed.append(time.monotonic())
    cancel.set()


def report(label: str, values: list[float]) -> None:
    print(f"  {label:28} median {statistics.median(values) * 1000:6.0f} ms, "
          f"max {max(values) * 1000:6.0f} ms ({len(values)} cancels)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="cancels per reader (default 10)")
    args = parser.parse_args(argv)
    print("cancel -> wait for a card ended:")
    reader = Reader(f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}")
    try:
        report("udp: (1 s SENS_RES wait)", latencies(reader, args.runs))
    finally:
        reader.close()
    with emulator(Path(tempfile.mkdtemp())) as emu:
        reader = Reader(emu.nfcpy_path)
        try:
            report("emulated PN532", latencies(reader, args.runs))
        finally:
            reader.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
