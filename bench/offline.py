"""[offline] speed: a stored payment at the counter against an online one, and forwarding 1,000
stored payments once the host is back.

At the counter: the real terminal (nfcpy's udp: link, a simulated phone, the kernel, the journal)
against the host simulator on 127.0.0.1, first up (online authorization), then switched off
(connect refused: the payment is stored). Forwarding: 1,000 payments stored in a journal with
fresh, correct ARQCs (a bench-only test key, as bench/host.py), sent by store-and-forward to the
simulator running as its own process (full ARQC check and ledger write each). Prints figures,
asserts nothing.
"""

from __future__ import annotations

import dataclasses
import socket
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from host import BenchCard, start_simulator  # noqa: E402

from firmware.config import Config, load_config  # noqa: E402
from firmware.host.iso8583_acquirer import Iso8583Acquirer  # noqa: E402
from firmware.host.saf import StoreAndForward  # noqa: E402
from firmware.journal import Journal  # noqa: E402
from firmware.terminal import Terminal  # noqa: E402
from simulators.demo import demo_config, free_port  # noqa: E402
from simulators.host.simulator import HostSimulator  # noqa: E402
from simulators.wallet.phone import SimulatedPhone  # noqa: E402

warnings.filterwarnings("ignore", message=".*TripleDES.*")

AT_COUNTER = 15  # payments of each kind
FORWARDED = 1000


def offline_config(tmp: Path, host_port: int) -> Config:
    cfg = demo_config(load_config(), tmp / "state", tmp / "screens",
                      free_port(socket.SOCK_DGRAM), host_port)
    return dataclasses.replace(cfg, offline=dataclasses.replace(
        cfg.offline, enabled=True, max_count=10_000, max_same_card=100,
        max_total=999_999_999_999))


def counter_times(tmp: Path) -> None:
    with HostSimulator(port=0, ledger_file=tmp / "ledger.sqlite") as sim:
        cfg = offline_config(tmp, sim.port)
        terminal = Terminal.from_config(cfg)
        phone = SimulatedPhone("visa-online", cfg.reader.path)
        thread = phone.start(taps=2 * AT_COUNTER, timeout=300.0)
        try:
            online = [terminal.pay(1200).total_ms for _ in range(AT_COUNTER)]
            sim.go_down()
            stored = []
            for _ in range(AT_COUNTER):
                result = terminal.pay(1200)
                if result.stored:
                    stored.append(result.total_ms)
        finally:
            phone.stop()
            thread.join(timeout=5)
            terminal.close()
    on, off = statistics.median(online), statistics.median(stored)
    print(f"at the counter, median of {AT_COUNTER} (tap to outcome, total_ms):")
    print(f"  online authorization {on:7.1f} ms")
    print(f"  stored (host down)   {off:7.1f} ms  ({len(stored)} stored)")
    print(f"  stored / online      {off / on:7.2f}")


def forwarding_time(tmp: Path) -> None:
    proc, port = start_simulator(tmp)
    try:
        cfg = offline_config(tmp, port)
        journal = Journal.from_config(cfg)
        card = BenchCard(7)
        t0 = time.perf_counter()
        for _ in range(FORWARDED):
            pid = journal.new_payment("purchase", 1200, 978, cfg.terminal.terminal_id)
            stan = journal.next_stan()
            journal.record(pid, "card_read", scheme="visa")
            journal.keep_card_data(pid, card.request(stan, cfg.terminal.terminal_id))
            journal.record(pid, "awaiting_reply", stan=stan)
            journal.store_for_forwarding(pid, "stored: bench")
        stored_s = time.perf_counter() - t0
        acquirer = Iso8583Acquirer(cfg, stan_source=journal.next_stan)
        saf = StoreAndForward(journal, acquirer, cfg.terminal.merchant_id)
        t0 = time.perf_counter()
        report = saf.drain(include_not_due=True)
        forward_s = time.perf_counter() - t0
        acquirer.close()
        approved = sum(1 for p in journal.payments() if p.state.value == "forwarded")
        journal.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"forwarding {FORWARDED} stored payments (simulator in its own process):")
    print(f"  storing them in the journal {stored_s:6.2f} s ({stored_s / FORWARDED * 1e3:.2f} ms "
          "each, durable writes)")
    print(f"  forwarding them            {forward_s:6.2f} s ({forward_s / FORWARDED * 1e3:.2f} ms "
          f"each); {len(report.sent)} answered, {approved} approved, "
          f"{len(report.declined_late)} declined after the fact, {report.remaining} left")


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        counter_times(Path(d) / "counter")
    with tempfile.TemporaryDirectory() as d:
        forwarding_time(Path(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
