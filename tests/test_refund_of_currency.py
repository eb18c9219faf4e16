"""`pitap refund AMOUNT --of ID` without `--currency` reads AMOUNT in the currency the payment
was made in: a JPY payment at a EUR terminal is refunded in whole yen."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_support import run_pitap

from simulators.demo import free_port
from simulators.host.simulator import HostSimulator
from simulators.wallet.phone import SimulatedPhone

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[HostSimulator]:
    with HostSimulator(port=0, ledger_file=tmp_path / "ledger.sqlite") as s:
        yield s


def tapped(site: Path, reader: str, *args: str) -> dict[str, object]:
    phone = SimulatedPhone("visa-online", reader)
    phone.start(taps=1, timeout=120.0)
    try:
        done = run_pitap(*args, "--json", "--config", str(site))
    finally:
        phone.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, object] = json.loads(done.stdout)
    return out


def test_refund_of_a_yen_payment_is_read_in_yen(tmp_path: Path, sim: HostSimulator) -> None:
    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    site = tmp_path / "site.toml"
    site.write_text(f'[terminal]\nstate_dir = "{tmp_path / "state"}"\ncurrency = "EUR"\n'
                    f'[reader]\npath = "{reader}"\n[host]\nport = {sim.port}\n'
                    '[display]\nbackend = "none"\n', encoding="utf-8")
    paid = tapped(site, reader, "pay", "1200", "--currency", "JPY")
    assert paid["outcome"] == "approved"

    decimals = run_pitap("refund", "5.50", "--of", str(paid["id"]), "--config", str(site))
    assert decimals.returncode == 2, decimals.stderr
    assert "JPY" in decimals.stderr and len(decimals.stderr.strip().splitlines()) == 1

    refund = tapped(site, reader, "refund", "500", "--of", str(paid["id"]))
    assert refund["outcome"] == "approved"
    refunds = [t for t in sim.ledger.transactions("PITAP001") if t["kind"] == "refund"]
    assert [(t["amount"], t["currency"]) for t in refunds] == [(500, 392)]
