"""Figures for the two-cards check on the emulated PN532 (line and air timing at nfcpy's 921600
baud): what the one extra InListPassiveTarget (MaxTg 2) costs from poll to activated card, and how
soon two phones are refused. Prints; asserts nothing."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

# tests/ has the tiny applet the figures use.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from emul_support import TinyApplet, emulator  # noqa: E402

from drivers.nfc import MoreThanOneCard, Reader  # noqa: E402

ROUNDS = 15


def poll_to_card_ms(reader: Reader) -> float:
    """Median milliseconds from wait_for_card to an activated card, field off between rounds."""
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        card = reader.wait_for_card(2.0)
        times.append((time.perf_counter() - started) * 1000)
        reader.release()
        if card is None:
            raise SystemExit("the emulated phone was not found")
    return statistics.median(times)


def main() -> None:
    with emulator(Path(tempfile.mkdtemp()), line_timing=True) as emu:
        reader = Reader(emu.nfcpy_path)
        try:
            emu.place_phone(TinyApplet())
            with_count = poll_to_card_ms(reader)
            reader.count_targets = lambda: 1  # type: ignore[method-assign]  # skip the check
            without_count = poll_to_card_ms(reader)
            del reader.count_targets
            emu.add_phone(TinyApplet())
            started = time.perf_counter()
            try:
                reader.wait_for_card(2.0)
                refused = "not refused"
            except MoreThanOneCard:
                refused = f"{(time.perf_counter() - started) * 1000:.1f} ms"
        finally:
            reader.close()
    print(f"PN532 over pty, {ROUNDS} rounds each (median, poll to activated card):")
    print(f"  with the two-cards count:    {with_count:6.1f} ms")
    print(f"  without it:                  {without_count:6.1f} ms")
    print(f"  two phones refused after:    {refused}")


if __name__ == "__main__":
    main()
