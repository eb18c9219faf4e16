"""kill -9 a `pitap void`, `pitap tip` or `pitap complete` while its request is in flight, then
restart and settle: the host's ledger, the journal and the Z-report reconcile to the minor unit,
nothing lost and nothing doubled (issue 13's soak kills during void, tip adjust, completion).

Real parts throughout: the commands as processes, phones tapping through `pitap wallet` on
nfcpy's udp: driver, the host simulator on 127.0.0.1 with its SQLite ledger, the journal file.
The host books the void's 0400, the completion's 0220 or the tip adjustment's 0220 and holds its
reply back (tests/host_support.HoldingHost); the kill is triggered by that, never by a clock,
and the answer goes to nobody. `pitap settle` is the restart: recovery, then the queued message
sent again (a repeat the host books once), then the batch. The expectation and the
reconciliation are tests/reconcile_day.py's, independent of the terminal.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
from pathlib import Path

import pytest
from host_support import HoldingHost
from reconcile_day import Day, reconcile
from run_support import PITAP, run_pitap, start_pitap

from firmware.host.dialect import Dialect
from simulators.demo import free_port

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


def _void(m: dict[str, str], d: Dialect) -> bool:
    return m["t"] in ("0400", "0401") and m.get("25") == d.void_reason


def _tip(m: dict[str, str], d: Dialect) -> bool:
    return m.get("3") == d.adjust_processing_code and m.get("54", "") != ""


def _completion(m: dict[str, str], d: Dialect) -> bool:
    return m["t"] in ("0220", "0221") and m.get("25") == d.preauth_condition and "90" in m


def _journal_state(journal_file: Path, payment_id: int) -> tuple[str, int]:
    """(state, queued items) of a payment, read without writing (the killed process held it)."""
    conn = sqlite3.connect(f"file:{journal_file}?mode=ro", uri=True, timeout=5.0)
    try:
        (state,) = conn.execute("SELECT state FROM payments WHERE id = ?",
                                (payment_id,)).fetchone()
        (queued,) = conn.execute("SELECT COUNT(*) FROM queue WHERE payment_id = ? AND"
                                 " done_at IS NULL", (payment_id,)).fetchone()
    finally:
        conn.close()
    return str(state), int(queued)


@pytest.mark.parametrize("command", ["void", "tip", "complete"])
def test_killed_in_flight_then_settled_reconciles_once(tmp_path: Path, command: str) -> None:
    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    ledger = tmp_path / "ledger.sqlite"
    state = tmp_path / "state"
    hold_back = {"void": _void, "tip": _tip, "complete": _completion}[command]
    host = HoldingHost(hold_back, port=0, ledger_file=ledger)
    with host:
        site = tmp_path / "site.toml"
        site.write_text(f'[terminal]\nstate_dir = "{state}"\n[reader]\npath = "{reader}"\n'
                        f"[host]\nport = {host.port}\nresponse_timeout_s = 120\n"
                        '[tips]\nmode = "adjust"\n[display]\nbackend = "none"\n',
                        encoding="utf-8")
        day = Day([*PITAP], site, reader)
        kept = day.run("pay", "12.34", taps=1)
        assert kept["outcome"] == "approved", kept
        day.sales.append(1234)
        if command == "complete":
            hold = day.run("preauth", "80.00", taps=1)
            assert hold["outcome"] == "approved", hold
            target, args, acted_on = int(str(hold["id"])), ["72.50"], int(str(hold["id"])) + 1
        else:
            sale = day.run("pay", "40.00", taps=1)
            assert sale["outcome"] == "approved", sale
            day.sales.append(4000)
            target, args = int(str(sale["id"])), (["6.00"] if command == "tip" else [])
            acted_on = target

        proc = start_pitap(command, str(target), *args, "--config", str(site))
        try:
            assert host.held.wait(timeout=240), (command, "never reached the host")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            host.let_go()
        assert proc.returncode == -signal.SIGKILL
        booked = host.ledger.transactions("PITAP001")  # the host has it: the reply was lost
        if command == "void":
            assert [r["reversed"] for r in booked if r["amount"] == 4000] == [1]
        elif command == "tip":
            assert [r["tip"] for r in booked if r["amount"] == 4600] == [600]
        else:
            assert [r["amount"] for r in booked if r["original_stan"]] == [7250]
        # Killed with its request booked at the host and the journal still waiting: queued.
        journal_file = state / "journal.sqlite"
        waits_in = {"void": "void_queued", "tip": "approved", "complete": "advice_queued"}
        assert _journal_state(journal_file, acted_on) == (waits_in[command], 1)

        # The shopkeeper tries again after the crash: refused, nothing sent twice.
        again = run_pitap(command, str(target), *args, "--config", str(site))
        assert again.returncode == 2 and "Traceback" not in again.stderr, again.stderr
        assert len(again.stderr.strip().splitlines()) == 1, again.stderr
        said = {"void": "already voided", "tip": "has that tip already",
                "complete": "is completed"}
        assert said[command] in again.stderr, again.stderr

        if command == "void":
            day.sales.remove(4000)
            day.voided += 1
        elif command == "tip":
            day.sales[-1] += 600
            day.tips.append(600)
        else:
            day.sales.append(7250)
            day.completions.append(7250)
        problems = reconcile(day, ledger, before_settling=False)
        assert problems == [], problems

        rows = host.ledger.transactions("PITAP001")
    with sqlite3.connect(journal_file) as db:
        states = [r[0] for r in db.execute("SELECT state FROM history WHERE payment_id = ?",
                                           (acted_on,))]
        reasons = [r[0] for r in db.execute(
            "SELECT json_extract(fields, '$.reason') FROM history WHERE payment_id = ?",
            (acted_on,))]
        (pending,) = db.execute("SELECT COUNT(*) FROM queue WHERE done_at IS NULL").fetchone()
    assert pending == 0
    if command == "void":  # reversed once at the host, voided once in the journal
        assert [r["reversed"] for r in rows if r["amount"] == 4000] == [1]
        assert states.count("void_queued") == 1 and states.count("voided") == 1
    elif command == "tip":  # the tip set once (absolute): 40.00 + 6.00, never + 12.00
        assert [(r["amount"], r["tip"]) for r in rows if r["amount"] != 1234] == [(4600, 600)]
        assert reasons.count("tip adjusted") == 1
    else:  # the completion booked once, advised once
        assert [r["amount"] for r in rows if r["original_stan"] and r["kind"] == "sale"] == [7250]
        assert states.count("advised") == 1
