"""Removal benchmark: how long a phone that leaves mid-tap keeps the terminal, from its last
answer to the "try again" outcome (drivers.nfc raising CardRemoved).

The `leaves-field` wallet answers SELECT PPSE, SELECT AID and GET PROCESSING OPTIONS, then goes
silent at GENERATE AC. Measured over nfcpy's `udp:` driver at several frame waiting integers
(FWI, from the phone's ATS) and over the emulated PN532 (nfcpy's pn532 driver on a pty), each
with drivers.nfc's silence limit and with nfcpy's own retries (the limit switched off), as
before/after. A whole payment (`Terminal.pay`, presentment timeout 15 s) is timed once too.
Figures only; nothing is asserted.

    python bench/removal.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from emul_support import emulator  # noqa: E402
from wallet_helpers import PPSE, generate_ac, select, terminal_values  # noqa: E402

import drivers.nfc  # noqa: E402
from drivers.nfc import CardRemoved, Reader  # noqa: E402
from simulators.demo import free_port  # noqa: E402
from simulators.wallet.isodep import frame_waiting_time  # noqa: E402
from simulators.wallet.phone import CardApplet, SimulatedPhone  # noqa: E402

GPO = bytes.fromhex("80A8000002830000")


@contextlib.contextmanager
def nfcpy_retries_only(on: bool) -> Iterator[None]:
    """With `on`, drivers.nfc leaves nfcpy's ISO-DEP retries as nfcpy has them (the 'before')."""
    kept = drivers.nfc.limit_silence
    if on:
        drivers.nfc.limit_silence = lambda tag, silence_s=0.0: None  # type: ignore[assignment]
    try:
        yield
    finally:
        drivers.nfc.limit_silence = kept


def silence_to_removed(reader: Reader) -> float:
    """Seconds from the phone's last answer to CardRemoved, for one tap."""
    card = reader.wait_for_card(5.0)
    if card is None:
        raise RuntimeError("no phone came")
    for apdu in (PPSE, select("A0000000041010"), GPO):
        card.transceive(apdu)
    try:
        card.transceive(generate_ac(terminal_values(), p1=0x80))
    except CardRemoved:
        gone = time.monotonic()
    else:
        raise RuntimeError("the phone answered GENERATE AC")
    finally:
        reader.release()
    return gone - card.last_exchange_at


def over_udp(fwi: int, runs: int) -> list[float]:
    path = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    phone = SimulatedPhone("leaves-field", path, fwi=fwi)
    thread = phone.start(taps=runs, timeout=120.0)
    phone.ready.wait(5.0)
    reader = Reader(path)
    try:
        return [silence_to_removed(reader) for _ in range(runs)]
    finally:
        reader.close()
        phone.stop()
        thread.join(10.0)


def over_pn532(runs: int) -> list[float]:
    with emulator(Path(tempfile.mkdtemp())) as emu:
        reader = Reader(emu.nfcpy_path)
        try:
            out = []
            for _ in range(runs):
                emu.queue_taps(CardApplet("leaves-field"), taps=1)
                out.append(silence_to_removed(reader))
            return out
        finally:
            reader.close()


def whole_payment() -> float:
    """Seconds `Terminal.pay` takes when the phone leaves (presentment timeout 15 s)."""
    import dataclasses

    from firmware.config import load_config
    from firmware.terminal import Terminal
    from simulators.demo import demo_config
    from simulators.host.simulator import HostSimulator

    tmp = Path(tempfile.mkdtemp())
    shipped = load_config()
    sim = HostSimulator(host="127.0.0.1", port=0, ledger_file=tmp / "ledger.sqlite")
    sim.start()
    cfg = demo_config(shipped, tmp / "state", tmp / "screens", free_port(socket.SOCK_DGRAM),
                      sim.port)
    cfg = dataclasses.replace(cfg, terminal=dataclasses.replace(
        cfg.terminal, presentment_timeout_s=15.0))
    phone = SimulatedPhone("leaves-field", cfg.reader.path)
    thread = phone.start(taps=1, timeout=30.0)
    phone.ready.wait(5.0)
    terminal = Terminal.from_config(cfg)
    try:
        result = terminal.pay(1250)
    finally:
        terminal.close()
        sim.stop()
        phone.stop()
        thread.join(5.0)
    return result.total_ms / 1000


def line(label: str, measure: Callable[[], list[float]]) -> None:
    cells = []
    for before in (True, False):
        with nfcpy_retries_only(before):
            values = measure()
        cells.append(f"{statistics.median(values) * 1000:7.0f} ms (max {max(values) * 1000:5.0f})")
    print(f"  {label:34} nfcpy's retries {cells[0]}   limited {cells[1]}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="taps per line (default 5)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # pyemv's TripleDES notices, phone side
    logging.disable(logging.ERROR)  # nfcpy logs every retry and the give-up
    print("last answer -> CardRemoved (median of the runs):")
    for fwi in (7, 9, 11, 12):
        fwt = frame_waiting_time(fwi) * 1000
        line(f"udp:, FWI {fwi:2} (FWT {fwt:6.1f} ms)", lambda fwi=fwi: over_udp(fwi, args.runs))
    line("emulated PN532 (ATS FWI 7, pty)", lambda: over_pn532(args.runs))
    print(f"whole payment, udp: FWI 9, limited: Terminal.pay returned try_again after "
          f"{whole_payment():.2f} s (presentment timeout 15 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
