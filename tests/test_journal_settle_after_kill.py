"""kill -9 while a payment waits for the host's reply, then `pitap settle`: recovery runs first,
the reversal reaches the host before the batch closes, host and terminal agree.

Real parts throughout: `pitap pay` and `pitap settle` as processes, a simulated phone on nfcpy's
udp: driver, the host simulator on 127.0.0.1 with its SQLite ledger, the journal file. Test
amount ...96: the simulator books the approval and never answers, so the payment stays
"awaiting_reply" until it is killed; the kill is triggered by that journal state, not by a clock.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_support import run_pitap, start_pitap, wait_until

from firmware.config import load_config
from firmware.journal import Journal
from simulators.demo import free_port
from simulators.host.simulator import HostSimulator
from simulators.wallet.phone import SimulatedPhone

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[HostSimulator]:
    with HostSimulator(port=0, ledger_file=tmp_path / "ledger.sqlite") as s:
        yield s


def last_state(journal_file: Path) -> str | None:
    """The newest payment's state, read without writing (`pitap pay` holds the journal)."""
    if not journal_file.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{journal_file}?mode=ro", uri=True, timeout=1.0)
        try:
            row = conn.execute("SELECT state FROM payments ORDER BY id DESC LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def test_settle_after_a_payment_killed_waiting_for_its_reply(tmp_path: Path,
                                                             sim: HostSimulator) -> None:
    state = tmp_path / "state"
    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    site = tmp_path / "site.toml"
    site.write_text(f'[terminal]\nstate_dir = "{state}"\n[reader]\npath = "{reader}"\n'
                    f"[host]\nport = {sim.port}\nresponse_timeout_s = 120.0\n"
                    '[display]\nbackend = "none"\n', encoding="utf-8")
    journal_file = state / "journal.sqlite"
    phone = SimulatedPhone("visa-online", reader)
    phone.start(taps=1, timeout=120.0)
    pay = start_pitap("pay", "10.96", "--config", str(site))
    try:
        assert wait_until(lambda: last_state(journal_file) == "awaiting_reply", seconds=120)

        # While `pitap pay` really waits, settlement may not touch its payment: refused.
        busy = run_pitap("settle", "--config", str(site))
        assert busy.returncode == 2 and "Traceback" not in busy.stderr
        assert busy.stderr.strip().splitlines() == [busy.stderr.strip()]
        assert f"in use by another pitap process (pid {pay.pid})" in busy.stderr
        refund = run_pitap("refund", "1.00", "--config", str(site))  # the same way in
        assert refund.returncode == 2 and refund.stderr.startswith("pitap refund: ")
        assert f"(pid {pay.pid})" in refund.stderr
        assert last_state(journal_file) == "awaiting_reply"
    finally:
        pay.send_signal(signal.SIGKILL)
        pay.wait(timeout=30)
        phone.stop()
    (charge,) = sim.ledger.transactions("PITAP001")
    assert (charge["amount"], charge["approved"], charge["reversed"]) == (1096, 1, 0)

    # `pitap journal` only reads: it shows the payment as the kill left it, recovers nothing.
    shown = run_pitap("journal", "--config", str(site))
    assert shown.returncode == 0 and "state=awaiting_reply" in shown.stdout
    assert "queued for the host" not in shown.stdout

    settled = run_pitap("settle", "--json", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    z = json.loads(settled.stdout)
    zero = {"sales_count": 0, "sales_amount": 0, "refunds_count": 0, "refunds_amount": 0}
    assert z["closed"] and z["agreed_first_time"] and z["uploaded"] == 0
    assert z["totals"] == z["host_totals"] == zero
    assert z["reversed"] == 1 and z["queue_pending"] == 0

    (charge,) = sim.ledger.transactions("PITAP001")
    assert charge["reversed"] == 1 and charge["batch"] == z["batch"]  # reversed, then closed
    (batch,) = sim.ledger.batches("PITAP001")
    assert (batch["sales_amount"], batch["host_agreed"], batch["uploaded"]) == (0, 1, 0)

    cfg = load_config(site)
    with Journal.from_config(cfg) as journal:
        (payment,) = journal.payments()
        assert (payment.state, payment.outcome) == ("reversed", "error")
        assert journal.queue() == [] and journal.card_data(payment.id) is None
        assert [s.state for s in journal.settlements()] == ["done"]
