"""Tips through the real stack: `pitap pay --tip` and `pitap tip ID AMOUNT` with a simulated
phone on nfcpy's udp: driver, the host simulator on 127.0.0.1 with its SQLite ledger, the
journal file; the ledger, the journal and the Z-report of `pitap settle` agree to the minor
unit; refusals are one line, exit 2, nothing sent; a kill during an adjustment is recovered.
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

from firmware.config import ConfigError, load_config
from firmware.host import messages
from firmware.host.acquirer import AuthRequest
from firmware.host.dialect import load_dialect
from firmware.journal import Journal
from firmware.money import CURRENCIES
from firmware.payment import TxnType
from firmware.tips import TipProblem, TipRefused, parse_tip, preset_tip
from simulators.demo import free_port
from simulators.host.simulator import HostSimulator
from simulators.wallet.phone import SimulatedPhone

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")
EUR = CURRENCIES["EUR"]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[HostSimulator]:
    with HostSimulator(port=0, ledger_file=tmp_path / "ledger.sqlite") as s:
        yield s


def write_site(path: Path, state: Path, reader: str, port: int, mode: str = "adjust",
               response_timeout_s: float = 10.0, extra: str = "") -> Path:
    path.write_text(f'[terminal]\nstate_dir = "{state}"\n[reader]\npath = "{reader}"\n'
                    f"[host]\nport = {port}\nresponse_timeout_s = {response_timeout_s}\n"
                    f'[display]\nbackend = "none"\n[tips]\nmode = "{mode}"\n{extra}',
                    encoding="utf-8")
    return path


def new_reader() -> str:
    return f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"


def pay(site: Path, reader: str, amount: str, *extra: str,
        profile: str = "visa-online") -> dict[str, object]:
    phone = SimulatedPhone(profile, reader)
    phone.start(taps=1, timeout=120.0)
    try:
        done = run_pitap("pay", amount, *extra, "--json", "--config", str(site))
    finally:
        phone.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def one_line_refusal(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def test_field_54_is_an_iso_additional_amount_in_every_dialect() -> None:
    import datetime as dt

    from firmware.config import shipped_config_dir

    req = AuthRequest(stan=7, amount=1375, currency=978, txn_type=TxnType.PURCHASE, pan="",
                      pan_sequence=None, expiry="", track2=b"", icc_data=b"",
                      terminal_id="PITAP001", merchant_id="000000000000001",
                      when=dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC), auth_code="123456",
                      rrn="633610000001", tip=125)
    for name in ("pitap-default", "bcd-tpdu", "ascii4-binary"):
        dialect = load_dialect(name, shipped_config_dir())
        sale = dialect.decode(dialect.encode(messages.authorization(req, "0100", dialect)))
        assert sale["4"] == "000000001375" and sale["54"] == "0044978C000000000125"
        adjust = dialect.decode(dialect.encode(messages.tip_adjustment(req, 300, 8, dialect)))
        assert (adjust["t"], adjust["3"], adjust["4"], adjust["11"]) == (
            "0220", "020000", "000000001550", "000008")
        assert adjust["54"] == "0044978C000000000300"
        assert adjust["90"].startswith("0100000007") and adjust["37"] == "633610000001"
        assert messages.parse_additional_amounts(adjust["54"]) == {"44": 300}


def test_tip_amounts_and_config() -> None:
    assert parse_tip("2.50", EUR) == 250 and parse_tip("0", EUR) == 0
    assert preset_tip(1250, 15) == 188  # 187.5 rounded half up
    for bad, why in (("-1", TipProblem.NEGATIVE), ("1e3", TipProblem.MALFORMED),
                     ("1.234", TipProblem.MALFORMED), ("9" * 20, TipProblem.OVER_TOLERANCE)):
        with pytest.raises(TipRefused) as caught:
            parse_tip(bad, EUR)
        assert caught.value.why is why


@pytest.mark.parametrize("tips, words", [
    ('mode = "sometimes"', "tips.mode"),
    ("presets = [10, 15, 20, 25]", "at most 3"),
    ("presets = [10, 10]", "once"),
    ("max_percent = 10\npresets = [15]", "over max_percent"),
    ("max_percent = 0", "tips.max_percent"),
    ("presets = [0]", "tips.presets"),
])
def test_bad_tips_config_is_one_line(tmp_path: Path, tips: str, words: str) -> None:
    site = tmp_path / "site.toml"
    site.write_text(f"[tips]\n{tips}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(site)
    assert words in str(caught.value)


def test_a_tipped_payment_and_an_adjustment_settle_with_the_host(tmp_path: Path,
                                                                 sim: HostSimulator) -> None:
    reader = new_reader()
    site = write_site(tmp_path / "site.toml", tmp_path / "state", reader, sim.port)
    tipped = pay(site, reader, "20.00", "--tip", "3.00")
    assert (tipped["amount"], tipped["tip"]) == (2300, 300)
    later = pay(site, reader, "12.00")
    pid = int(str(later["id"]))

    done = run_pitap("tip", str(pid), "1.80", "--json", "--config", str(site))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"id": pid, "tip": 180, "adjusted": True, "amount": 1380,
                                       "base": 1200, "refused": "", "pending": ""}
    again = run_pitap("tip", str(pid), "2.00", "--config", str(site))  # changed again: absolute
    assert again.returncode == 0 and "total 13.80" not in again.stdout, again.stdout
    assert "tip 2.00 EUR" in again.stdout and "total 14.00 EUR" in again.stdout
    rows = {r["stan"]: r for r in sim.ledger.transactions("PITAP001")}
    assert sorted((r["amount"], r["tip"]) for r in rows.values()) == [(1400, 200), (2300, 300)]

    with Journal.from_config(load_config(site)) as journal:
        p = journal.payment(pid)
        assert (p.amount, p.tip, p.base, p.state) == (1400, 200, 1200, "approved")
        assert journal.queue() == []

    settled = run_pitap("settle", "--json", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    z = json.loads(settled.stdout)
    sales = {"sales_count": 2, "sales_amount": 3700, "refunds_count": 0, "refunds_amount": 0}
    assert z["closed"] and z["agreed_first_time"]
    assert z["totals"] == z["host_totals"] == sales
    assert (z["tips_count"], z["tips_amount"]) == (2, 500)
    assert sum(int(r["tip"]) for r in sim.ledger.transactions("PITAP001")) == 500
    (batch,) = sim.ledger.batches("PITAP001")
    assert (batch["sales_count"], batch["sales_amount"], batch["host_agreed"]) == (2, 3700, 1)

    late = run_pitap("tip", str(pid), "1.00", "--config", str(site))
    one_line_refusal(late, "settled")


def test_the_z_report_and_the_receipt_show_the_tip(tmp_path: Path, sim: HostSimulator) -> None:
    reader = new_reader()
    printed = tmp_path / "receipts.txt"
    site = write_site(tmp_path / "site.toml", tmp_path / "state", reader, sim.port,
                      extra=f'[printer]\nbackend = "file"\npath = "{printed}"\n')
    pay(site, reader, "20.00", "--tip", "2.50")
    text = printed.read_text(encoding="utf-8", errors="replace")
    assert "Subtotal" in text and "EUR 20.00" in text
    assert "Tip" in text and "EUR 2.50" in text and "EUR 22.50" in text
    settled = run_pitap("settle", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    line = next(x for x in settled.stdout.splitlines() if "of which tips" in x)
    assert "1" in line and "EUR 2.50" in line


def test_bad_tips_are_one_line_exit_2_and_send_nothing(tmp_path: Path,
                                                       sim: HostSimulator) -> None:
    state = tmp_path / "state"
    reader = new_reader()
    site = write_site(tmp_path / "site.toml", state, reader, sim.port)
    off = write_site(tmp_path / "off.toml", state, reader, sim.port, mode="off")
    prompt = write_site(tmp_path / "prompt.toml", state, reader, sim.port, mode="prompt")
    for args, words in ((("10.00", "--tip", "-1"), "negative"),
                        (("10.00", "--tip", "abc"), "digits"),
                        (("10.00", "--tip", "2.51"), "over the tolerance"),
                        (("10.00", "--tip", "99999999999999"), "tip"),
                        (("10.00", "--tip", "1.005"), "decimals")):
        one_line_refusal(run_pitap("pay", *args, "--config", str(site)), words)
    one_line_refusal(run_pitap("pay", "10.00", "--tip", "1", "--config", str(off)), "off")
    assert not (state / "journal.sqlite").exists()  # nothing journalled

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
        rupees = approved(50000, currency=356)
        voided = approved(2000)
        j.record(voided, "void_queued")
        good = approved(1000)
    cases = {
        ("99", "1.00"): "no payment 99",
        (str(declined), "1.00"): "was not approved",
        (str(refunded), "1.00"): "refunded",
        (str(refund), "1.00"): "only a purchase",
        (str(rupees), "1.00"): "INR",
        (str(voided), "1.00"): "voided",
        (str(good), "2.51"): "over the tolerance",
        (str(good), "-1"): "negative",
        (str(good), "0"): "nothing to change",
        ("abc", "1.00"): "payment id",
    }
    for args, words in cases.items():
        one_line_refusal(run_pitap("tip", *args, "--config", str(site)), words)
    one_line_refusal(run_pitap("tip", str(good), "1.00", "--config", str(prompt)), "adjust")
    assert sim.ledger.transactions() == []
    with Journal.from_config(cfg) as j:
        assert j.queue() == [] and (j.payment(good).amount, j.payment(good).tip) == (1000, 0)


def test_a_tip_while_the_host_is_away_is_queued_and_settle_sends_it_first(
        tmp_path: Path, sim: HostSimulator) -> None:
    reader = new_reader()
    state = tmp_path / "state"
    site = write_site(tmp_path / "site.toml", state, reader, sim.port)
    away = write_site(tmp_path / "away.toml", state, reader, free_port(socket.SOCK_STREAM))
    paid = pay(site, reader, "30.00")
    pid = int(str(paid["id"]))

    done = run_pitap("tip", str(pid), "4.50", "--json", "--config", str(away))
    assert done.returncode == 1, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert (result["adjusted"], result["amount"]) == (False, 3000) and result["pending"]
    queued = run_pitap("journal", "--queue", "--config", str(site))
    assert "tip" in queued.stdout and f"payment #{pid}" in queued.stdout

    settled = run_pitap("settle", "--json", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    z = json.loads(settled.stdout)
    assert z["closed"] and z["agreed_first_time"] and z["totals"] == z["host_totals"]
    assert z["totals"]["sales_amount"] == 3450 and z["tips_amount"] == 450
    (row,) = sim.ledger.transactions("PITAP001")
    assert (row["amount"], row["tip"]) == (3450, 450)


def _pending_tips(journal_file: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{journal_file}?mode=ro", uri=True, timeout=1.0)
        try:
            row = conn.execute("SELECT COUNT(*) FROM queue WHERE kind = 'tip' AND done_at IS"
                               " NULL").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return int(row[0])


class BlackHole(LoopbackServer):
    """Accepts and reads, never answers: the adjustment waits until it is killed."""

    def serve(self, conn: socket.socket) -> None:
        with conn:
            while not self.stop.is_set() and conn.recv(4096):
                pass


def test_an_adjustment_killed_waiting_for_the_host_is_sent_by_settle_once(
        tmp_path: Path, sim: HostSimulator) -> None:
    reader = new_reader()
    state = tmp_path / "state"
    site = write_site(tmp_path / "site.toml", state, reader, sim.port)
    paid = pay(site, reader, "12.00")
    pid = int(str(paid["id"]))
    hole = BlackHole()
    try:
        silent = write_site(tmp_path / "silent.toml", state, reader, hole.port,
                            response_timeout_s=120.0)
        tip = start_pitap("tip", str(pid), "2.00", "--config", str(silent))
        try:
            # queued durably before it is sent: the kill is triggered by that
            assert wait_until(lambda: _pending_tips(state / "journal.sqlite") == 1, seconds=120)
        finally:
            tip.send_signal(signal.SIGKILL)
            tip.wait(timeout=30)
    finally:
        hole.close()
    (row,) = sim.ledger.transactions("PITAP001")
    assert (row["amount"], row["tip"]) == (1200, 0)  # the real host has not heard of it

    settled = run_pitap("settle", "--json", "--config", str(site))
    assert settled.returncode == 0, settled.stderr[-2000:]
    z = json.loads(settled.stdout)
    assert z["closed"] and z["agreed_first_time"]
    assert z["totals"] == z["host_totals"] and z["totals"]["sales_amount"] == 1400
    (row,) = sim.ledger.transactions("PITAP001")
    assert (row["amount"], row["tip"], row["batch"]) == (1400, 200, z["batch"])
    with Journal.from_config(load_config(site)) as journal:
        p = journal.payment(pid)
        assert (p.amount, p.tip) == (1400, 200) and journal.queue() == []
        adjusted = [h for h in journal.history(pid) if h.get("reason") == "tip adjusted"]
        assert len(adjusted) == 1
