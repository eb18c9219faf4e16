"""Bench: the simulated phones' own cost per tap over nfcpy's udp: driver (no kernel involved).

For each main profile, N taps of a fixed raw-APDU flow (what a kernel sends) through the
project's Reader; prints card-in-field time p50/p99 (activation to last APDU), the phone's
applet CPU per tap, APDUs and bytes, and the air time those bytes would take at 106 kbit/s.
Run: .venv/bin/python bench/wallet_taps.py [TAPS]   (default 100; keep it under a minute)
"""

from __future__ import annotations

import socket
import statistics
import sys
import threading
import time
import warnings

from drivers.nfc import Reader
from simulators.demo import free_port
from simulators.wallet.phone import SimulatedPhone

warnings.filterwarnings("ignore", module=r"pyemv(\.|$)")

PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
VALUES = bytes.fromhex("000000001000" "000000000000" "0380" "0000000000" "0978" "261127" "00")
UN = bytes.fromhex("11223344")


def visa_flow(card) -> None:
    card.transceive(PPSE)
    card.transceive(bytes.fromhex("00A4040007A000000003101000"))
    pd = bytes.fromhex("36000000") + VALUES[:6] + VALUES[6:] + UN
    rapdu = card.transceive(bytes([0x80, 0xA8, 0, 0, len(pd) + 2, 0x83, len(pd)]) + pd + b"\0")
    read_afl(card, rapdu)


def read_afl(card, gpo: bytes) -> None:
    at = gpo.find(b"\x94")
    afl = gpo[at + 2 : at + 2 + gpo[at + 1]]
    for i in range(0, len(afl), 4):
        for rec in range(afl[i + 1], afl[i + 2] + 1):
            card.transceive(bytes([0x00, 0xB2, rec, afl[i] | 4, 0x00]))


def mastercard_flow(aid: str):
    def flow(card) -> None:
        card.transceive(PPSE)
        card.transceive(bytes.fromhex(f"00A4040007{aid}00"))
        read_afl(card, card.transceive(bytes.fromhex("80A8000002830000")))
        cdol = VALUES + UN + b"\x22" + bytes.fromhex("3F0000")
        card.transceive(bytes([0x80, 0xAE, 0x90, 0x00, len(cdol)]) + cdol + b"\0")

    return flow


PROFILES = {
    "visa-online": visa_flow,
    "visa-offline": visa_flow,
    "mastercard-online": mastercard_flow("A0000000041010"),
    "rupay-online": mastercard_flow("A0000005241010"),
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench(profile: str, taps: int) -> None:
    path = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    phone = SimulatedPhone(profile, path)
    applet_cpu: list[float] = []
    respond = phone.applet.respond

    def timed_respond(apdu: bytes) -> bytes:
        t0 = time.thread_time()
        try:
            return respond(apdu)
        finally:
            applet_cpu.append(time.thread_time() - t0)

    phone.applet.respond = timed_respond  # type: ignore[method-assign]
    thread = phone.start(taps=taps, timeout=120)
    phone.ready.wait(5)
    reader = Reader(path)
    in_field, apdus, sent, received = [], [], [], []
    for _ in range(taps):
        card = reader.wait_for_card(5)
        if card is None:
            break
        PROFILES[profile](card)
        in_field.append(card.in_field_ms)
        apdus.append(card.apdus)
        sent.append(card.bytes_sent)
        received.append(card.bytes_received)
        reader.release()
    reader.close()
    phone.stop()
    thread.join(5)
    n = len(in_field)
    if not n:
        print(f"{profile:20} no taps")
        return
    byte_count = statistics.mean(sent) + statistics.mean(received)
    air_ms = byte_count * 10 / 106_000 * 1000  # ~10 bits a byte at 106 kbit/s, frame delays aside
    applet_ms = sum(applet_cpu) / n * 1000
    print(
        f"{profile:20} taps {n:4}  in-field p50 {percentile(in_field, 0.5):6.2f} ms"
        f"  p99 {percentile(in_field, 0.99):6.2f} ms  phone CPU {applet_ms:5.2f} ms/tap"
        f"  APDUs {statistics.mean(apdus):4.1f}  bytes {byte_count:6.0f}  air {air_ms:5.1f} ms"
    )


def main() -> int:
    taps = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    threading.current_thread().name = "bench"
    for profile in PROFILES:
        bench(profile, taps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
