"""[offline] and kill -9: storing and forwarding lose nothing and book nothing twice.

Forwarding: real parts throughout. `pitap pay` as processes with simulated phones on nfcpy's
udp: driver and the host simulator on 127.0.0.1 switched off (connects refused): the payments
are stored. The host comes back; `pitap settle` forwards them and is killed while the host holds
the answer to one of them (test amount ...96: booked, never answered; the kill is triggered by
the host's ledger, not by a clock). The next `pitap settle` sends that one again, the host
answers it as the first time, and host ledger, journal and Z-report agree to the minor unit;
nothing of the cards is left in the state directory.

Storing: a child process stores payments the way the terminal does, as fast as it can, and is
killed at random counts (as tests/test_journal_kill.py): every acknowledged one is stored with
its card data and its deferred authorization; an interrupted one is reversed by recovery.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from card_data_scan import leaks_in_files, wallet_tokens
from run_support import run_pitap, start_pitap, wait_until

from firmware.config import load_config
from firmware.journal import Journal
from firmware.payment import PaymentState, QueueKind
from firmware.recovery import recover
from simulators.demo import free_port
from simulators.host.simulator import HostSimulator
from simulators.wallet.phone import SimulatedPhone

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[HostSimulator]:
    with HostSimulator(port=0, ledger_file=tmp_path / "ledger.sqlite") as s:
        yield s


def test_kill_while_forwarding_sends_nothing_twice_and_all_agree(tmp_path: Path,
                                                                 sim: HostSimulator) -> None:
    state = tmp_path / "state"
    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    site = tmp_path / "site.toml"
    site.write_text(f'[terminal]\nstate_dir = "{state}"\n[reader]\npath = "{reader}"\n'
                    f"[host]\nport = {sim.port}\nresponse_timeout_s = 120.0\n"
                    '[display]\nbackend = "none"\n'
                    "[offline]\nenabled = true\nmax_same_card = 3\n", encoding="utf-8")
    sim.go_down()
    amounts = [1250, 2096, 1051]  # approved; booked but never answered; declined (51)
    for amount, profile in zip(amounts, ["visa-online", "mastercard-online", "visa-online"],
                               strict=True):
        phone = SimulatedPhone(profile, reader)
        phone.start(taps=1, timeout=120.0)
        try:
            paid = run_pitap("pay", f"{amount / 100:.2f}", "--config", str(site))
        finally:
            phone.stop()
        assert paid.returncode == 0 and "stored" in paid.stdout, paid.stdout + paid.stderr
    assert sim.ledger.transactions() == []
    shown = run_pitap("journal", "--config", str(site))
    assert "stored for the bank: 3 payment(s), 43.97 EUR in all" in shown.stdout, shown.stdout
    refused = run_pitap("settle", "--config", str(site))  # the host is still down
    assert refused.returncode == 1
    assert "3 stored payment(s) not yet forwarded (#1, #2, #3)" in refused.stderr, refused.stderr

    sim.come_up()
    settle = start_pitap("settle", "--config", str(site))
    try:
        # The host booked the ...96 one and keeps its answer: settle is mid-forwarding.
        assert wait_until(lambda: len(sim.ledger.transactions()) == 2, seconds=120)
    finally:
        settle.send_signal(signal.SIGKILL)
        settle.wait(timeout=30)
    with Journal.from_config(load_config(site)) as journal:
        states = [p.state for p in journal.payments()]
    assert states == [PaymentState.FORWARDED, PaymentState.STORED, PaymentState.STORED]

    settled = run_pitap("settle", "--json", "--config", str(site))
    assert settled.returncode == 0, settled.stdout + settled.stderr[-2000:]
    z = json.loads(settled.stdout)
    rows = sim.ledger.transactions("PITAP001")
    assert sorted(int(r["amount"]) for r in rows) == sorted(amounts)  # each booked once
    booked = [r for r in rows if r["approved"] and not r["reversed"]]
    assert z["closed"] and z["agreed_first_time"]
    assert z["totals"]["sales_count"] == len(booked) == 2
    assert z["totals"]["sales_amount"] == sum(int(r["amount"]) for r in booked) == 1250 + 2096
    assert z["host_totals"] == z["totals"]
    assert (z["declined_late"], z["declined_late_amount"]) == (1, 1051)
    assert all(r["mti"] == "0200" for r in rows)

    with Journal.from_config(load_config(site)) as journal:
        payments = journal.payments()
        assert [p.state for p in payments] == [
            PaymentState.FORWARDED, PaymentState.FORWARDED, PaymentState.DECLINED_LATE]
        assert sum(p.amount for p in journal.charged_payments()) == z["totals"]["sales_amount"]
        assert journal.queue() == [] and not any(p.card_data_kept for p in payments)
    shown = run_pitap("journal", "--config", str(site))
    assert "declined after the fact: 1 payment(s) (#3), 10.51 EUR not received" in shown.stdout
    conn = sqlite3.connect(state / "journal.sqlite")
    try:
        assert conn.execute("SELECT COUNT(*) FROM card_data").fetchone()[0] == 0
    finally:
        conn.close()
    assert leaks_in_files(sorted(state.rglob("*")), wallet_tokens()) == []


STORER = """
import datetime as dt, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from journal_support import auth_request
from firmware.journal import Journal
j = Journal.open(Path(sys.argv[1]), Path(sys.argv[2]))
while True:
    pid = j.new_payment("purchase", 100, 978, "PITAP001")
    stan = j.next_stan()
    j.record(pid, "card_read", scheme="visa", masked_pan="476173******0010")
    j.keep_card_data(pid, auth_request(stan=stan, amount=100))
    j.record(pid, "awaiting_reply", stan=stan)
    j.store_for_forwarding(pid, "stored: host unavailable")
    print(pid, flush=True)
"""


def test_kill_while_storing_loses_nothing(tmp_path: Path) -> None:
    db, key = tmp_path / "journal.sqlite", tmp_path / "journal.key"
    rng = random.Random(14)
    acknowledged: set[int] = set()
    for _ in range(4):
        target = rng.randint(3, 30)
        out = tmp_path / "out.txt"
        with out.open("w") as fh:
            proc = subprocess.Popen([sys.executable, "-c", STORER, str(db), str(key),
                                     str(Path(__file__).parent)], stdout=fh)
            deadline = time.monotonic() + 120.0  # a writer that hangs, not a speed check
            while out.read_text().count("\n") < target and time.monotonic() < deadline:
                assert proc.poll() is None, "the writer died by itself"
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        acknowledged |= {int(line) for line in out.read_text().split()}
    with Journal.open(db, key) as j:  # integrity check
        recover(j)  # what the next start does
        deferred = {q.payment_id for q in j.queue(QueueKind.DEFERRED)}
        for p in j.payments():
            if p.id in acknowledged or p.state is PaymentState.STORED:  # (killed before print)
                assert p.state is PaymentState.STORED and p.outcome == "approved"
                assert p.id in deferred and j.card_data(p.id) is not None
            else:  # cut off before it was stored: the customer never saw "Approved"
                assert p.id not in deferred and p.outcome != "approved"
        stored = j.stored_totals(978)
        assert (stored.count, stored.amount) == (len(deferred), 100 * len(deferred))
        assert len(acknowledged) <= len(deferred) <= len(acknowledged) + 4
