"""Pre-authorization through the real stack: `pitap preauth` with a simulated phone on nfcpy's
udp: driver, `pitap increment` / `complete` / `release` with no tap, the host simulator on
127.0.0.1 with its SQLite ledger, the journal file; then `pitap settle`: only completions count,
and the Z-report, the journal and the host's ledger agree to the minor unit.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_support import run_pitap, start_pitap, wait_until
from test_void import BlackHole, new_reader, write_site

from firmware.config import load_config
from firmware.journal import Journal
from simulators.demo import free_port
from simulators.host.simulator import HostSimulator
from simulators.wallet.phone import SimulatedPhone

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")
ZERO = {"sales_count": 0, "sales_amount": 0, "refunds_count": 0, "refunds_amount": 0}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[HostSimulator]:
    with HostSimulator(port=0, ledger_file=tmp_path / "ledger.sqlite") as s:
        yield s


def tap(site: Path, reader: str, command: str, amount: str, profile: str = "visa-online",
        expect_code: int = 0) -> dict[str, object]:
    phone = SimulatedPhone(profile, reader)
    phone.start(taps=1, timeout=120.0)
    try:
        done = run_pitap(command, amount, "--json", "--config", str(site))
    finally:
        phone.stop()
    assert done.returncode == expect_code, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def on_hold(site: Path, *args: str, code: int = 0) -> dict[str, object]:
    done = run_pitap(*args, "--json", "--config", str(site))
    assert done.returncode == code, (done.stdout, done.stderr[-2000:])
    result: dict[str, object] = json.loads(done.stdout)
    return result


def refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert done.stdout == "", done.stdout
    for w in words:
        assert w in err, err


def ledger(sim: HostSimulator) -> list[dict[str, object]]:
    return sim.ledger.transactions("PITAP001")


def test_hold_increment_completion_and_settlement_agree(tmp_path: Path,
                                                        sim: HostSimulator) -> None:
    reader = new_reader()
    site = write_site(tmp_path / "site.toml", tmp_path / "state", reader, sim.port)
    sale = tap(site, reader, "pay", "12.50")
    # an amount under the floor limit: a pre-authorization still goes online (never a TC)
    hold = tap(site, reader, "preauth", "4.00", profile="visa-offline")
    assert hold["outcome"] == "approved" and hold["offline"] is False and hold["stan"]
    hid = str(hold["id"])

    raised = on_hold(site, "increment", hid, "1.20")
    assert raised["done"] and raised["held"] == 520 and raised["status"] == "open"
    holds = run_pitap("journal", "--holds", "--config", str(site))
    assert holds.returncode == 0
    (line,) = holds.stdout.splitlines()
    assert line.startswith(f"#{hid} ") and "5.20 EUR" in line and "expires" in line

    # 5.20 held + 15 % = 5.98: 5.99 is refused, nothing sent; 5.90 is captured
    before = len(ledger(sim))
    refused(run_pitap("complete", hid, "5.99", "--config", str(site)), "over", "5.98")
    assert len(ledger(sim)) == before
    done = on_hold(site, "complete", hid, "5.90")
    assert done["done"] and done["state"] == "advised" and done["status"] == "completed"
    refused(run_pitap("complete", hid, "--config", str(site)), "completed")
    refused(run_pitap("increment", hid, "1.00", "--config", str(site)), "completed")
    refused(run_pitap("release", hid, "--config", str(site)), "completed")
    assert len(ledger(sim)) == before + 1
    assert run_pitap("journal", "--holds", "--config", str(site)).stdout.strip() == (
        "no open holds")

    rows = ledger(sim)
    by_kind = {r["kind"]: r for r in rows if r["kind"] != "sale" or r["original_stan"]}
    assert by_kind["preauth"]["amount"] == 400 and by_kind["increment"]["amount"] == 120
    assert by_kind["sale"]["amount"] == 590  # the completion
    assert by_kind["sale"]["original_stan"] == by_kind["preauth"]["stan"] == f"{hold['stan']:06d}"

    settled = run_pitap("settle", "--json", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    z = json.loads(settled.stdout)
    both = {"sales_count": 2, "sales_amount": 1250 + 590, "refunds_count": 0,
            "refunds_amount": 0}
    assert z["closed"] and z["agreed_first_time"] and z["totals"] == z["host_totals"] == both
    assert (z["completions"], z["completions_amount"], z["open_holds"]) == (1, 590, 0)
    assert sale["outcome"] == "approved"


def test_open_holds_stay_out_of_the_totals_and_outlive_the_batch(tmp_path: Path,
                                                                 sim: HostSimulator) -> None:
    reader = new_reader()
    site = write_site(tmp_path / "site.toml", tmp_path / "state", reader, sim.port)
    hold = tap(site, reader, "preauth", "80.00")
    settled = run_pitap("settle", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    assert "Open holds (in no total): 1" in settled.stdout and "80.00" in settled.stdout
    assert "Sales" in settled.stdout and "EUR 0.00" in settled.stdout
    # the next day's batch: the hold is completed there and counts there
    done = on_hold(site, "complete", str(hold["id"]))
    assert done["done"] and done["amount"] == 8000
    z = json.loads(run_pitap("settle", "--json", "--config", str(site)).stdout)
    assert z["totals"] == z["host_totals"] == {**ZERO, "sales_count": 1, "sales_amount": 8000}
    assert z["open_holds"] == 0 and z["completions"] == 1


def test_release_drops_the_hold_and_its_increments(tmp_path: Path, sim: HostSimulator) -> None:
    reader = new_reader()
    site = write_site(tmp_path / "site.toml", tmp_path / "state", reader, sim.port)
    hold = tap(site, reader, "preauth", "50.00")
    hid = str(hold["id"])
    assert on_hold(site, "increment", hid, "10.00")["held"] == 6000
    released = on_hold(site, "release", hid)
    assert released["done"] and released["status"] == "released"
    assert all(r["reversed"] == 1 for r in ledger(sim))
    for command in (("release", hid), ("complete", hid), ("increment", hid, "1.00")):
        refused(run_pitap(*command, "--config", str(site)), "released")
    listed = run_pitap("journal", "--config", str(site)).stdout
    line = next(x for x in listed.splitlines() if x.startswith(f"#{hid} "))
    assert "preauth" in line and "state=voided" in line
    settled = run_pitap("settle", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    # never charged: a line of its own, not among the voids
    assert "Holds released (never charged): 1" in settled.stdout
    assert "Voided" not in settled.stdout
    z = json.loads(run_pitap("settle", "--json", "--config", str(site)).stdout)
    assert z["closed"] and z["totals"] == z["host_totals"] == ZERO and z["open_holds"] == 0


def test_refusals_are_one_line_and_send_nothing(tmp_path: Path, sim: HostSimulator) -> None:
    reader = new_reader()
    state = tmp_path / "state"
    site = write_site(tmp_path / "site.toml", state, reader, sim.port)
    sale = tap(site, reader, "pay", "12.50")
    expired = tap(site, reader, "preauth", "30.00")
    declined = tap(site, reader, "preauth", "20.51", expect_code=1)
    hold = tap(site, reader, "preauth", "40.00")
    with sqlite3.connect(state / "journal.sqlite") as db:  # approved 8 days ago: expired
        db.execute("UPDATE payments SET expires_at = '2020-01-01T00:00:00+00:00' WHERE id = ?",
                   (expired["id"],))
    before = len(ledger(sim))
    hid = str(hold["id"])
    cases = [
        (("complete", "99"), "no payment 99"),
        (("increment", str(sale["id"]), "1.00"), "not a pre-authorization"),
        (("release", str(declined["id"])), "not approved"),
        (("complete", str(expired["id"])), "expired"),
        (("increment", str(expired["id"]), "1.00"), "expired"),
        (("release", str(expired["id"])), "expired"),
        (("increment", hid, "0"), "more than zero"),
        (("increment", hid, "-1"), "amount"),
        (("increment", hid, "1.005"), "decimals"),
        (("complete", hid, "abc"), "amount"),
        (("complete", hid, "46.01"), "over"),
        (("release", "abc"), "payment id"),
        (("release", "0"), "payment id"),
    ]
    for args, words in cases:
        refused(run_pitap(*args, "--config", str(site)), words)
    refused(run_pitap("preauth", "10.00", "--currency", "INR", "--config", str(site)), "EUR")
    assert len(ledger(sim)) == before
    listed = run_pitap("journal", "--holds", "--config", str(site)).stdout
    assert "EXPIRED" in listed and f"#{hid} " in listed
    missing = write_site(tmp_path / "missing.toml", tmp_path / "nowhere", reader, sim.port)
    refused(run_pitap("release", "1", "--config", str(missing)), "no journal")


def test_host_away_increment_not_sent_completion_and_release_queued(
        tmp_path: Path, sim: HostSimulator) -> None:
    reader = new_reader()
    state = tmp_path / "state"
    site = write_site(tmp_path / "site.toml", state, reader, sim.port)
    away = write_site(tmp_path / "away.toml", state, reader, free_port(socket.SOCK_STREAM))
    kept, dropped = tap(site, reader, "preauth", "60.00"), tap(site, reader, "preauth", "25.00")
    tap(away, reader, "preauth", "30.00", expect_code=1)  # online only: never stored
    before = len(ledger(sim))

    inc = on_hold(away, "increment", str(kept["id"]), "5.00", code=1)
    assert not inc["done"] and inc["state"] == "error" and "nothing sent" in str(inc["pending"])
    done = on_hold(away, "complete", str(kept["id"]), "62.00", code=1)
    assert (done["done"], done["state"]) == (False, "advice_queued")
    gone = on_hold(away, "release", str(dropped["id"]), code=1)
    assert (gone["done"], gone["state"]) == (False, "void_queued")
    queued = run_pitap("journal", "--queue", "--config", str(site)).stdout
    assert "advice" in queued and "void" in queued
    assert len(ledger(sim)) == before  # nothing reached the host

    z = json.loads(run_pitap("settle", "--json", "--config", str(site)).stdout)
    assert z["closed"] and z["totals"] == z["host_totals"] == {
        **ZERO, "sales_count": 1, "sales_amount": 6200}
    rows = ledger(sim)
    assert [r["amount"] for r in rows if r["kind"] == "increment"] == []
    assert [r["reversed"] for r in rows if r["kind"] == "preauth" and r["amount"] == 2500] == [1]


def _state_of(journal_file: Path, payment_id: int) -> str | None:
    try:
        conn = sqlite3.connect(f"file:{journal_file}?mode=ro", uri=True, timeout=1.0)
        try:
            row = conn.execute("SELECT state FROM payments WHERE id = ?",
                               (payment_id,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


@pytest.mark.parametrize("command,waits_in", [
    (("increment", "{id}", "7.00"), "awaiting_reply"),
    (("complete", "{id}", "45.00"), "advice_queued"),
    (("release", "{id}"), "void_queued"),
])
def test_killed_waiting_for_the_host_recovers_once(tmp_path: Path, sim: HostSimulator,
                                                   command: tuple[str, ...],
                                                   waits_in: str) -> None:
    """kill -9 while the host holds the message unanswered: the next start recovers it (an
    increment is reversed, a completion's advice or a release is sent again), once."""
    reader = new_reader()
    state = tmp_path / "state"
    site = write_site(tmp_path / "site.toml", state, reader, sim.port)
    hold = tap(site, reader, "preauth", "40.00")
    pid = int(str(hold["id"]))
    next_id = pid + 1
    hole = BlackHole()
    try:
        silent = write_site(tmp_path / "silent.toml", state, reader, hole.port,
                            response_timeout_s=120.0)
        args = [a.format(id=pid) for a in command]
        proc = start_pitap(*args, "--config", str(silent))
        watched = pid if command[0] == "release" else next_id
        try:
            assert wait_until(lambda: _state_of(state / "journal.sqlite", watched) == waits_in,
                              seconds=120)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    finally:
        hole.close()
    settled = run_pitap("settle", "--json", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    z = json.loads(settled.stdout)
    rows = ledger(sim)
    with Journal.from_config(load_config(site)) as journal:
        assert journal.queue() == []
        held = journal.holds.get(pid)
        assert held is not None
        if command[0] == "increment":  # the host never saw it (the hole did): hold unchanged
            assert journal.payment(next_id).state == "reversed" and held.held == 4000
            assert z["totals"] == z["host_totals"] == ZERO and z["open_holds_amount"] == 4000
        elif command[0] == "complete":
            assert journal.payment(next_id).state == "advised"
            assert z["totals"] == z["host_totals"] == {**ZERO, "sales_count": 1,
                                                       "sales_amount": 4500}
            assert len([r for r in rows if r["original_stan"]]) == 1
        else:
            assert journal.payment(pid).state == "voided"
            assert [r["reversed"] for r in rows] == [1]
            assert z["totals"] == z["host_totals"] == ZERO and z["open_holds"] == 0


def test_receipts_say_pre_authorization_held_and_completed(tmp_path: Path,
                                                           sim: HostSimulator) -> None:
    from test_receipts import receipt_copies

    reader = new_reader()
    state = tmp_path / "state"
    site = write_site(tmp_path / "site.toml", state, reader, sim.port)
    with site.open("a", encoding="utf-8") as f:
        f.write('[printer]\nbackend = "file"\n')
    receipts = state / "receipts.bin"
    hold = tap(site, reader, "preauth", "100.00")
    first = receipt_copies(receipts)
    assert len(first) == 2
    for copy in first:
        text = "\n".join(copy)
        assert "PRE-AUTHORIZATION" in text and "Held EUR 100.00" in text and "APPROVED" in text
        assert "PURCHASE" not in text
    receipts.unlink()
    assert on_hold(site, "increment", str(hold["id"]), "20.00")["done"]
    receipts.unlink()
    assert on_hold(site, "complete", str(hold["id"]), "115.00")["done"]
    for copy in receipt_copies(receipts):
        text = "\n".join(copy)
        assert "COMPLETION" in text and "Completed EUR 115.00" in text
        assert any(x.startswith("Held") and x.endswith("EUR 120.00") for x in copy), copy
        assert f"**** {str(hold['masked_pan'])[-4:]}" in text
    other = tap(site, reader, "preauth", "30.00")
    receipts.unlink()
    assert on_hold(site, "release", str(other["id"]))["done"]
    for copy in receipt_copies(receipts):
        text = "\n".join(copy)
        assert "PRE-AUTHORIZATION" in text and "RELEASED" in text and "VOID" not in text


def test_a_hold_without_an_answer_is_reversed_at_the_host(tmp_path: Path,
                                                          sim: HostSimulator) -> None:
    """Test amount …96: the host books the hold and never answers; the terminal reverses it, so
    no funds stay held for a pre-authorization the terminal does not know of."""
    reader = new_reader()
    site = write_site(tmp_path / "site.toml", tmp_path / "state", reader, sim.port,
                      response_timeout_s=1.0)
    lost = tap(site, reader, "preauth", "40.96", expect_code=1)
    assert lost["outcome"] == "error"
    z = json.loads(run_pitap("settle", "--json", "--config", str(site)).stdout)
    assert z["closed"] and z["totals"] == z["host_totals"] == ZERO and z["open_holds"] == 0
    (row,) = ledger(sim)
    assert (row["kind"], row["reversed"]) == ("preauth", 1)
    refused(run_pitap("complete", str(lost["id"]), "--config", str(site)), "not approved")
    listed = run_pitap("journal", "--config", str(site)).stdout
    assert f"#{lost['id']} " in listed and "preauth" in listed
