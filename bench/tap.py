"""Tap benchmark: the kernel against every simulated wallet over nfcpy's `udp:` driver.

For each profile, N taps (default 200; 10 for the two profiles slow by design) through
drivers.nfc.Reader, exactly as the terminal reads a phone. Prints, per profile: card-in-field time
p50/p99 (activation to the last APDU), kernel CPU time per tap (this thread only: the phone runs in
its own thread), APDUs and bytes exchanged per tap, the air time those bytes would take at
106 kbit/s, and the outcomes seen. Figures only; nothing is asserted.

    python bench/tap.py [--taps N] [--profile NAME ...]
"""

from __future__ import annotations

import argparse
import collections
import socket
import statistics
import sys
import time
import warnings

from drivers.nfc import Reader
from firmware.config import load_config
from firmware.emv.kernel import Kernel
from firmware.emv.outcome import TerminalTransaction
from simulators.demo import free_port
from simulators.wallet.phone import SimulatedPhone, profile_names

SLOW_BY_DESIGN = {"slow-wtx", "leaves-field"}  # each tap costs a timeout or a 0.2 s answer
AMOUNTS = {  # profile -> (amount in minor units, ISO 4217 numeric)
    "visa-offline": (1_000, 978),
    "bad-signature": (1_000, 978),
    "expired-cert": (1_000, 978),
    "rupay-online": (50_000, 356),
}
BITS_PER_BYTE = 10  # 8 data bits + parity + share of SOF/EOF at 106 kbit/s (ISO 14443-A)
FRAME_OVERHEAD = 3  # ISO-DEP PCB + CRC_A per I-block
FRAME_DELAY_S = 86e-6 + 100e-6  # reader->card FDT plus card->reader guard time, per exchange


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def air_time_ms(apdus: int, nbytes: int) -> float:
    bits = (nbytes + 2 * FRAME_OVERHEAD * apdus) * BITS_PER_BYTE
    return (bits / 106_000 + apdus * FRAME_DELAY_S) * 1000


class CpuCountingCard:
    """The card as the kernel sees it, counting the CPU nfcpy's ISO-DEP stack spends in this
    thread, so that the kernel's own CPU time can be told apart."""

    def __init__(self, card: object) -> None:
        self.card = card
        self.cpu_ms = 0.0

    def transceive(self, apdu: bytes) -> bytes:
        t0 = time.thread_time()
        try:
            return self.card.transceive(apdu)  # type: ignore[attr-defined]
        finally:
            self.cpu_ms += (time.thread_time() - t0) * 1000


def bench_profile(kernel: Kernel, profile: str, taps: int) -> dict:
    path = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    phone = SimulatedPhone(profile, path)
    thread = phone.start(taps=taps, timeout=600.0)
    phone.ready.wait(5.0)
    time.sleep(0.05)  # let the phone bind before the first poll
    reader = Reader(path)
    amount, currency = AMOUNTS.get(profile, (12_345, 978))
    in_field, cpu, io_cpu, apdus, nbytes, waits = [], [], [], [], [], []
    outcomes: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    try:
        for i in range(taps):
            w0 = time.monotonic()
            card = reader.wait_for_card(timeout=5.0)
            waits.append((time.monotonic() - w0) * 1000)
            if card is None:
                outcomes["no card"] += 1
                continue
            txn = TerminalTransaction(amount=amount, currency=currency, country=380)
            link = CpuCountingCard(card)
            t0 = time.thread_time()
            out = kernel.process(link, txn)
            total = (time.thread_time() - t0) * 1000
            cpu.append(total - link.cpu_ms)
            io_cpu.append(link.cpu_ms)
            reader.release()
            in_field.append(card.in_field_ms)
            apdus.append(card.apdus)
            nbytes.append(card.bytes_sent + card.bytes_received)
            outcomes[out.kind.value] += 1
            # the phone re-listens after the field goes off; polling before it has bound its
            # socket costs nfcpy's 1 s SENS_RES timeout, which is not what we measure
            deadline = time.monotonic() + 2.0
            while phone.served < i + 1 and time.monotonic() < deadline and thread.is_alive():
                time.sleep(0.001)
            time.sleep(0.003)
    finally:
        reader.close()
        phone.stop()
        thread.join(5.0)
    return {
        "profile": profile,
        "taps": len(in_field),
        "in_field_p50": percentile(in_field, 50),
        "in_field_p99": percentile(in_field, 99),
        "cpu_mean": statistics.fmean(cpu) if cpu else float("nan"),
        "cpu_p99": percentile(cpu, 99),
        "io_cpu_mean": statistics.fmean(io_cpu) if io_cpu else float("nan"),
        "wait_p50": percentile(waits, 50),
        "apdus": statistics.fmean(apdus) if apdus else 0,
        "bytes": statistics.fmean(nbytes) if nbytes else 0,
        "air_ms": air_time_ms(
            round(statistics.fmean(apdus)) if apdus else 0,
            round(statistics.fmean(nbytes)) if nbytes else 0,
        ),
        "outcomes": dict(outcomes),
        "wall_s": time.monotonic() - started,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=200, help="taps per profile (default 200)")
    parser.add_argument("--slow-taps", type=int, default=10, help="taps for slow fault profiles")
    parser.add_argument("--profile", action="append", help="only this profile (repeatable)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # pyemv's TripleDES deprecation notices, phone side
    names = args.profile or profile_names()
    unknown = set(names) - set(profile_names())
    if unknown:
        print(f"unknown profile: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    kernel = Kernel.from_config(load_config())
    print(
        f"{'profile':22} {'taps':>4} {'in-field p50':>12} {'p99':>7} {'cpu/tap':>8} "
        f"{'cpu p99':>8} {'nfcpy':>8} {'APDUs':>5} {'bytes':>6} {'air@106k':>9} {'wall':>6}"
        "  outcomes"
    )
    for name in names:
        taps = args.slow_taps if name in SLOW_BY_DESIGN and not args.profile else args.taps
        r = bench_profile(kernel, name, taps)
        mix = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
        print(
            f"{r['profile']:22} {r['taps']:>4} {r['in_field_p50']:>9.2f} ms"
            f" {r['in_field_p99']:>7.2f}"
            f" {r['cpu_mean']:>5.2f} ms {r['cpu_p99']:>5.2f} ms {r['io_cpu_mean']:>5.2f} ms"
            f" {r['apdus']:>5.1f} {r['bytes']:>6.0f} {r['air_ms']:>6.2f} ms {r['wall_s']:>5.1f}s"
            f"  {mix}",
            flush=True,
        )
    print(
        f"air time: {BITS_PER_BYTE} bits a byte at 106 kbit/s, {FRAME_OVERHEAD} bytes of ISO-DEP "
        f"framing each way per APDU, {FRAME_DELAY_S * 1e6:.0f} us of frame delays per exchange. "
        "in-field: activation to last APDU over udp on this machine. cpu/tap: the kernel's own "
        "CPU (this thread, minus nfcpy's share, shown as 'nfcpy'). wall: the profile's run time."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
