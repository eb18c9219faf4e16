"""`pitap void ID` through the real stack: `pitap pay` with a simulated phone on nfcpy's udp:
driver, the host simulator on 127.0.0.1 with its SQLite ledger, the journal file; then the void,
the Z-report of `pitap settle` and the host's ledger agree to the minor unit.
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
from host_support import LoopbackServer
from journal_support import walk_to
from run_support import run_pitap, start_pitap, wait_until

from firmware.config import load_config
from firmware.host import connect
from firmware.host.saf import StoreAndForward
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


def write_site(path: Path, state: Path, reader: str, port: int,
               response_timeout_s: float = 10.0) -> Path:
    path.write_text(f'[terminal]\nstate_dir = "{state}"\n[reader]\npath = "{reader}"\n'
                    f"[host]\nport = {port}\nresponse_timeout_s = {response_timeout_s}\n"
                    '[display]\nbackend = "none"\n', encoding="utf-8")
    return path


def new_reader() -> str:
    return f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"


def pay(site: Path, reader: str, amount: str, profile: str = "visa-online",
        taps: int = 1, command: str = "pay", *more: str) -> dict[str, object]:
    """`pitap pay AMOUNT` (or `command`, with `more` arguments) with a phone tapping."""
    phone = SimulatedPhone(profile, reader)
    phone.start(taps=taps, timeout=120.0)
    try:
        done = run_pitap(command, amount, *more, "--json", "--config", str(site))
    finally:
        phone.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def one_line_refusal(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("pitap: void refused: ") or err.startswith("pitap void: "), err
    for w in words:
        assert w in err, err


def test_void_of_an_online_approval_reverses_it_and_settles_to_zero(tmp_path: Path,
                                                                    sim: HostSimulator) -> None:
    reader = new_reader()
    site = write_site(tmp_path / "site.toml", tmp_path / "state", reader, sim.port)
    kept = pay(site, reader, "23.99")
    voided = pay(site, reader, "12.50")

    done = run_pitap("void", str(voided["id"]), "--json", "--config", str(site))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"id": voided["id"], "voided": True, "sent": True,
                                       "state": "voided", "pending": ""}
    rows = {r["amount"]: r for r in sim.ledger.transactions("PITAP001")}
    assert rows[1250]["reversed"] == 1 and "void" in str(rows[1250]["reason"])
    assert rows[2399]["reversed"] == 0

    listed = run_pitap("journal", "--config", str(site))
    line = next(x for x in listed.stdout.splitlines() if x.startswith(f"#{voided['id']} "))
    assert "voided" in line and "state=voided" in line

    again = run_pitap("void", str(voided["id"]), "--config", str(site))
    one_line_refusal(again, "already voided")
    assert len(sim.ledger.transactions("PITAP001")) == 2  # nothing more reached the host

    settled = run_pitap("settle", "--json", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    z = json.loads(settled.stdout)
    sales = {"sales_count": 1, "sales_amount": 2399, "refunds_count": 0, "refunds_amount": 0}
    assert z["closed"] and z["agreed_first_time"] and z["voided"] == 1
    assert z["totals"] == z["host_totals"] == sales
    (batch,) = sim.ledger.batches("PITAP001")
    assert (batch["sales_count"], batch["sales_amount"], batch["host_agreed"]) == (1, 2399, 1)
    text = run_pitap("settle", "--config", str(site))  # an empty batch: its report
    assert text.returncode == 0

    # The kept payment is settled now: a void is refused, a refund is the way.
    late = run_pitap("void", str(kept["id"]), "--config", str(site))
    one_line_refusal(late, "settled: refund it instead")
    assert len(sim.ledger.transactions("PITAP001")) == 2


def test_the_z_report_lists_the_void(tmp_path: Path, sim: HostSimulator) -> None:
    reader = new_reader()
    site = write_site(tmp_path / "site.toml", tmp_path / "state", reader, sim.port)
    voided = pay(site, reader, "12.50")
    assert run_pitap("void", str(voided["id"]), "--config", str(site)).returncode == 0
    settled = run_pitap("settle", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    assert "Voided (in no total): 1" in settled.stdout
    assert "Not charged: none" in settled.stdout


def test_offline_approvals_advice_dropped_or_advice_reversed(tmp_path: Path,
                                                             sim: HostSimulator) -> None:
    reader = new_reader()
    state = tmp_path / "state"
    # No host at first: the offline approval's advice stays queued.
    nobody = write_site(tmp_path / "nobody.toml", state, reader, free_port(socket.SOCK_STREAM))
    site = write_site(tmp_path / "site.toml", state, reader, sim.port)
    unsent = pay(nobody, reader, "5.00", "visa-offline")
    assert unsent["offline"] is True
    done = run_pitap("void", str(unsent["id"]), "--json", "--config", str(nobody))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["sent"] is False
    cfg = load_config(site)
    with Journal.from_config(cfg) as journal:
        assert journal.payment(int(str(unsent["id"]))).state == "voided"
        assert journal.queue() == [] and journal.card_data(int(str(unsent["id"]))) is None

    advised = pay(site, reader, "4.00", "visa-offline")
    with Journal.from_config(cfg) as journal:  # the advice goes, whenever the command ended
        acquirer = connect(cfg)
        try:
            assert StoreAndForward(journal, acquirer).drain(include_not_due=True).complete
        finally:
            acquirer.close()
        assert journal.payment(int(str(advised["id"]))).state == "advised"
    done = run_pitap("void", str(advised["id"]), "--config", str(site))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "voided" in done.stdout
    (row,) = sim.ledger.transactions("PITAP001")  # the dropped advice never reached the host
    assert (row["amount"], row["offline"], row["reversed"]) == (400, 1, 1)

    settled = run_pitap("settle", "--json", "--config", str(site))
    z = json.loads(settled.stdout)
    assert z["closed"] and z["totals"] == z["host_totals"] == ZERO and z["voided"] == 2


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


class BlackHole(LoopbackServer):
    """Accepts and reads, never answers: the void waits for its 0410 until it is killed."""

    def serve(self, conn: socket.socket) -> None:
        with conn:
            while not self.stop.is_set() and conn.recv(4096):
                pass


def test_a_void_killed_waiting_for_the_host_is_sent_by_settle_once(tmp_path: Path,
                                                                   sim: HostSimulator) -> None:
    reader = new_reader()
    state = tmp_path / "state"
    site = write_site(tmp_path / "site.toml", state, reader, sim.port)
    paid = pay(site, reader, "12.50")
    pid = int(str(paid["id"]))
    hole = BlackHole()
    try:
        silent = write_site(tmp_path / "silent.toml", state, reader, hole.port,
                            response_timeout_s=120.0)
        void = start_pitap("void", str(pid), "--config", str(silent))
        try:
            # queued durably before it is sent: the kill is triggered by that state
            assert wait_until(lambda: _state_of(state / "journal.sqlite", pid) == "void_queued",
                              seconds=120)
        finally:
            void.send_signal(signal.SIGKILL)
            void.wait(timeout=30)
    finally:
        hole.close()
    (row,) = sim.ledger.transactions("PITAP001")
    assert row["reversed"] == 0  # the real host has not heard of the void yet

    again = run_pitap("void", str(pid), "--config", str(site))
    one_line_refusal(again, "already voided", "queued")

    settled = run_pitap("settle", "--json", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    z = json.loads(settled.stdout)
    assert z["closed"] and z["agreed_first_time"] and z["voided"] == 1
    assert z["totals"] == z["host_totals"] == ZERO
    (row,) = sim.ledger.transactions("PITAP001")
    assert row["reversed"] == 1 and row["batch"] == z["batch"]
    with Journal.from_config(load_config(site)) as journal:
        assert journal.payment(pid).state == "voided" and journal.queue() == []
        kinds = [h.state for h in journal.history(pid)]
        assert kinds.count("voided") == 1 and kinds.count("void_queued") == 1


def test_refused_voids_are_one_line_and_send_nothing(tmp_path: Path, sim: HostSimulator) -> None:
    state = tmp_path / "state"
    site = write_site(tmp_path / "site.toml", state, new_reader(), sim.port)
    cfg = load_config(site)
    with Journal.from_config(cfg) as j:
        def approved(amount: int, currency: int = 978) -> int:
            pid = j.new_payment("purchase", amount, currency, "PITAP001")
            walk_to(j, pid, "awaiting_reply", stan=j.next_stan())
            j.record(pid, "approved", auth_code="123456")
            return pid

        declined = j.new_payment("purchase", 4051, 978, "PITAP001")
        walk_to(j, declined, "declined")
        refunded = approved(1000)
        refund = j.new_payment("refund", 400, 978, "PITAP001", refund_of=refunded)
        walk_to(j, refund, "awaiting_reply", stan=j.next_stan())
        j.record(refund, "approved", auth_code="654321")
        increment = j.new_payment("increment", 400, 978, "PITAP001")
        walk_to(j, increment, "awaiting_reply", stan=j.next_stan())
        j.record(increment, "approved", auth_code="654322")
        rupees = approved(50000, currency=356)
    cases = {
        "99": "no payment 99",
        str(declined): "was not approved",
        str(refunded): "refunded",
        str(increment): "is a increment: a purchase, a refund or a completion",
        str(rupees): "INR",
    }
    for arg, words in cases.items():
        one_line_refusal(run_pitap("void", arg, "--config", str(site)), words)
    for bad in ("abc", "-1", "0", "1.5"):
        one_line_refusal(run_pitap("void", bad, "--config", str(site)), "payment id")
    assert sim.ledger.transactions() == []
    with Journal.from_config(cfg) as j:
        assert j.queue() == [] and j.payment(refunded).state == "approved"
    missing = write_site(tmp_path / "missing.toml", tmp_path / "nowhere", new_reader(), sim.port)
    nothing = run_pitap("void", "1", "--config", str(missing))
    assert nothing.returncode == 2 and "no journal" in nothing.stderr


def test_the_keypad_voids_a_payment_by_its_number(make_config, host_sim, phone) -> None:
    """`pitap run`'s keys: f1 twice (r r on a keyboard) is void mode, then the payment's number
    and enter; no tap. A second void of it is refused on screen."""
    import io

    from drivers.keypad import KeyboardKeypad
    from firmware.money import CURRENCIES
    from firmware.service import TerminalService
    from firmware.terminal import Terminal

    cfg = make_config(host_sim.port)
    phone("visa-online", cfg.reader.path)
    terminal = Terminal.from_config(cfg)
    try:
        keys = KeyboardKeypad(io.StringIO("1250\n" "rr1\n" "rr1\n"))
        service = TerminalService(terminal, keys, currency=CURRENCIES["EUR"], result_hold_s=0)
        assert service.run() == 1
        (paid,) = service.results
        state = terminal.journal.payment(paid.id).state
        shown = [s for s in terminal.feedback.recent
                 if s.name in ("void_entry", "voided", "void_refused")]
    finally:
        terminal.close()
    assert paid.outcome == "approved" and state == "voided"
    assert [s.name for s in shown] == [
        "void_entry", "void_entry", "voided", "void_entry", "void_entry", "void_refused"]
    assert shown[1].shows("#1") and shown[2].shows("Voided")
    assert shown[5].shows("Already voided")
    (row,) = host_sim.ledger.transactions("PITAP001")
    assert (row["amount"], row["reversed"]) == (1250, 1)


def test_a_void_while_the_host_is_away_stays_queued_and_settle_sends_it(
        tmp_path: Path, sim: HostSimulator) -> None:
    reader = new_reader()
    state = tmp_path / "state"
    site = write_site(tmp_path / "site.toml", state, reader, sim.port)
    away = write_site(tmp_path / "away.toml", state, reader, free_port(socket.SOCK_STREAM))
    paid = pay(site, reader, "12.50")

    done = run_pitap("void", str(paid["id"]), "--json", "--config", str(away))
    assert done.returncode == 1, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert (result["voided"], result["state"]) == (False, "void_queued") and result["pending"]
    queued = run_pitap("journal", "--queue", "--config", str(site))
    assert "void" in queued.stdout and f"payment #{paid['id']}" in queued.stdout

    settled = run_pitap("settle", "--json", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    z = json.loads(settled.stdout)
    assert z["closed"] and z["totals"] == z["host_totals"] == ZERO and z["voided"] == 1
    (row,) = sim.ledger.transactions("PITAP001")
    assert row["reversed"] == 1


def test_a_void_the_host_refuses_as_settled_leaves_the_approval_standing(
        tmp_path: Path, sim: HostSimulator) -> None:
    """The host's batch closed with the payment in it while the terminal's did not (a settlement
    whose answer was lost): the host answers the void's 0400 with 12, the terminal says so in
    one line ("refund it instead"), exit 2, and its journal keeps the approval standing (reason
    recorded, nothing queued), never a void the host did not make."""
    from simulators.host.ledger import Totals

    reader = new_reader()
    site = write_site(tmp_path / "site.toml", tmp_path / "state", reader, sim.port)
    paid = pay(site, reader, "41.00")
    sim.ledger.close_batch("PITAP001", 1, Totals(1, 4100, 0, 0), uploaded=False,
                           host_agreed=True, currency=978)

    done = run_pitap("void", str(paid["id"]), "--config", str(site))
    one_line_refusal(done, f"payment {paid['id']}", "settled it already (12)",
                     "refund it instead")
    assert done.stdout == ""
    (row,) = sim.ledger.transactions("PITAP001")
    assert row["reversed"] == 0 and row["batch"] == 1  # the charge stands at the host
    with Journal.from_config(load_config(site)) as journal:
        p = journal.payment(int(str(paid["id"])))
        assert p.state.value == "approved" and "refund it instead" in p.reason
        assert journal.queue() == []
    listed = run_pitap("journal", "--config", str(site))
    line = next(x for x in listed.stdout.splitlines() if x.startswith(f"#{paid['id']} "))
    assert "state=approved" in line



def refund_of(site: Path, reader: str, amount: str, of: object) -> dict[str, object]:
    return pay(site, reader, amount, "visa-online", 1, "refund", "--of", str(of))

def test_a_refund_and_a_completion_are_voided_and_a_completion_is_refunded(
        tmp_path: Path, sim: HostSimulator) -> None:
    """A real terminal's rules: a refund of the open batch is voided (its own reversal,
    processing code 20; the purchase it refunded in full stands again and may be refunded
    again); a completion is a sale: voided in the open batch (0400 naming its 0220: the hold
    stands again, at the host too) and, once settled, refunded with --of."""
    reader = new_reader()
    site = write_site(tmp_path / "site.toml", tmp_path / "state", reader, sim.port)
    sale = pay(site, reader, "30.00")
    back = refund_of(site, reader, "30.00", sale["id"])
    done = run_pitap("void", str(back["id"]), "--json", "--config", str(site))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["state"] == "voided"
    rows = {(r["kind"], r["amount"]): r for r in sim.ledger.transactions("PITAP001")}
    assert rows[("refund", 3000)]["reversed"] == 1 and rows[("sale", 3000)]["reversed"] == 0
    with Journal.from_config(load_config(site)) as journal:
        assert journal.payment(int(str(sale["id"]))).state.value == "approved"
        assert journal.refunded_amount(int(str(sale["id"]))) == 0

    held = pay(site, reader, "50.00", "visa-online", 1, "preauth")
    completed = run_pitap("complete", str(held["id"]), "45.00", "--json", "--config", str(site))
    assert completed.returncode == 0, completed.stderr[-2000:]
    completion = json.loads(completed.stdout)["id"]
    done = run_pitap("void", str(completion), "--config", str(site))
    assert done.returncode == 0, done.stderr[-2000:]
    capture = next(r for r in sim.ledger.transactions("PITAP001") if r["amount"] == 4500)
    assert capture["reversed"] == 1  # the host undid the capture: the hold stands again
    holds = run_pitap("journal", "--holds", "--config", str(site)).stdout
    line = next(x for x in holds.splitlines() if x.startswith(f"#{held['id']} "))
    assert "expires" in line and "complet" not in line, line  # open again
    again = run_pitap("complete", str(held["id"]), "40.00", "--json", "--config", str(site))
    assert again.returncode == 0, again.stderr[-2000:]
    second = json.loads(again.stdout)["id"]

    settled = run_pitap("settle", "--json", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    z = json.loads(settled.stdout)
    assert z["totals"] == z["host_totals"] == {"sales_count": 2, "sales_amount": 7000,
                                               "refunds_count": 0, "refunds_amount": 0}
    assert z["voided"] == 2
    late = run_pitap("void", str(second), "--config", str(site))
    one_line_refusal(late, "settled: refund it instead")
    refunded = refund_of(site, reader, "40.00", second)
    assert refunded["outcome"] == "approved"
    with Journal.from_config(load_config(site)) as journal:
        assert journal.payment(int(str(second))).state.value == "refunded"

