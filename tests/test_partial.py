"""Partial approval (ISO 8583 response code 10, the amount approved in field 4) through the real
stack: a phone on nfcpy's udp: driver, the host simulator on 127.0.0.1 (test amount ...10
approves half), the journal; the rest is taken with a second tap, or the part is reversed, and
`pitap settle` reconciles the host's ledger with the journal to the minor unit."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from host_support import LoopbackServer
from run_support import run_pitap, wait_until

from firmware.config import load_config, shipped_config_dir
from firmware.host import messages
from firmware.host.dialect import load_dialect
from firmware.host.link import FrameReader, frame
from firmware.journal import Journal
from firmware.payment import PaymentState
from firmware.terminal import Terminal
from simulators.demo import free_port
from simulators.host.simulator import HostSimulator
from simulators.wallet.phone import SimulatedPhone

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


def test_the_rest_of_a_partial_approval_is_taken_with_a_second_tap(
        host_sim, make_config, phone) -> None:
    term = Terminal.from_config(make_config(host_sim.port))
    try:
        phone("visa-online", term.cfg.reader.path, taps=2)
        result = term.pay(3110)
        parts = [term.journal.payment(p) for p in result.parts]
        partial = [s for s in term.feedback.recent if s.name == "partial"]
    finally:
        term.close()
    assert result.outcome == "approved", result.reason
    assert (result.amount, result.approved_amount, len(result.parts)) == (3110, 3110, 2)
    assert [(p.amount, p.outcome, p.response_code) for p in parts] == [
        (1555, "approved", "10"), (1555, "approved", "00")]
    (screen,) = partial
    assert screen.shows("Approved €15.55 of €31.10") and screen.shows("€15.55 left")
    booked = [(r["amount"], r["response_code"], r["approved"], r["reversed"])
              for r in host_sim.ledger.transactions("PITAP001")]
    assert booked == [(1555, "10", 1, 0), (1555, "00", 1, 0)]


def site_file(tmp_path: Path, port: int, reader: str, presentment_timeout_s: float) -> Path:
    site = tmp_path / "site.toml"
    site.write_text(f'[terminal]\nstate_dir = "{tmp_path / "state"}"\n'
                    f"presentment_timeout_s = {presentment_timeout_s}\n"
                    f'[reader]\npath = "{reader}"\n[host]\nport = {port}\n'
                    '[display]\nbackend = "none"\n', encoding="utf-8")
    return site


@pytest.mark.parametrize("second_tap", [True, False])
def test_pitap_pay_with_a_partial_approval_settles_what_was_charged(
        tmp_path: Path, second_tap: bool) -> None:
    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    with HostSimulator(port=0, ledger_file=tmp_path / "ledger.sqlite") as sim:
        # without a second tap the rest waits out a short presentment timeout: no card
        site = site_file(tmp_path, sim.port, reader, 15.0 if second_tap else 2.0)
        wallet = SimulatedPhone("mastercard-online", reader)
        wallet.start(taps=2 if second_tap else 1, timeout=120.0)
        try:
            done = run_pitap("pay", "31.10", "--json", "--config", str(site))
        finally:
            wallet.stop()
        paid = json.loads(done.stdout)
        assert done.returncode == (0 if second_tap else 1), done.stderr[-2000:]
        assert paid["approved_amount"] == (3110 if second_tap else 0)
        if not second_tap:
            assert paid["outcome"] == "no_card" and "reversed" in paid["reason"]

        settled = run_pitap("settle", "--json", "--config", str(site))
        assert settled.returncode == 0, settled.stderr[-2000:]
        z = json.loads(settled.stdout)
        charged = {"sales_count": 2, "sales_amount": 3110} if second_tap else {
            "sales_count": 0, "sales_amount": 0}
        assert z["closed"] and z["agreed_first_time"]
        assert z["totals"] == z["host_totals"] == charged | {"refunds_count": 0,
                                                             "refunds_amount": 0}
        assert z["voided"] == (0 if second_tap else 1)
        rows = sim.ledger.transactions("PITAP001")
        assert rows[0]["amount"] == 1555 and rows[0]["response_code"] == "10"
        assert rows[0]["reversed"] == (0 if second_tap else 1)
    with Journal.from_config(load_config(site)) as journal:
        first = journal.payments()[0]
        assert first.amount == 1555 and journal.history(first.id)[0].get("amount") == 3110
        assert first.state == ("approved" if second_tap else "voided")


@pytest.mark.parametrize("field4", ["", "000000000000", "000000003110", "00000000999x"])
def test_a_partial_approval_without_a_smaller_amount_is_not_taken_as_one(field4: str) -> None:
    dialect = load_dialect("pitap-default", shipped_config_dir())
    doc = {"t": "0110", "39": "10", "11": "000001", "41": "PITAP001"}
    if field4:
        doc["4"] = field4
    assert messages.auth_response(doc, dialect, 3110).approved_amount is None
    assert messages.auth_response(doc | {"4": "000000001555"}, dialect, 3110).approved_amount \
        == 1555


class PartialWithoutAmount(LoopbackServer):
    """A host that answers every 0100 with 39 = 10 and field 4 the amount asked (not less)."""

    def serve(self, conn: socket.socket) -> None:
        dialect = load_dialect("pitap-default", shipped_config_dir())
        with conn:
            reader = FrameReader(conn, dialect.length_header, dialect.max_message)
            while True:
                try:
                    req = dialect.decode(reader.read(time.monotonic() + 30))
                except Exception:  # noqa: BLE001 - the connection ended
                    return
                reply = {"t": messages.reply_mti(req["t"]), "39": "10" if req["t"] == "0100"
                         else "00", **{f: req[f] for f in ("4", "11", "41") if f in req}}
                conn.sendall(frame(dialect.encode(reply), dialect.length_header))


def test_a_partial_approval_for_no_smaller_amount_is_reversed(make_config, phone) -> None:
    host = PartialWithoutAmount()
    try:
        term = Terminal.from_config(make_config(host.port))
        try:
            phone("visa-online", term.cfg.reader.path)
            result = term.pay(3110)
            states = [h.state for h in term.journal.history(result.id)]
        finally:
            term.close()
    finally:
        host.close()
    assert result.outcome == "error" and result.approved_amount == 0
    # a reversal was queued; the background sender may or may not have sent it yet
    assert PaymentState.REVERSAL_QUEUED in states
    assert states[-1] in (PaymentState.REVERSAL_QUEUED, PaymentState.ERROR, PaymentState.REVERSED)


def test_the_shopkeeper_cancelling_the_rest_reverses_the_part(host_sim, make_config,
                                                              phone) -> None:
    term = Terminal.from_config(make_config(host_sim.port))
    try:
        phone("visa-online", term.cfg.reader.path)

        def cancelled() -> bool:  # the cancel key, pressed once the rest is asked for
            return any(s.name == "partial" for s in term.feedback.recent)

        result = term.pay(3110, cancelled=cancelled)
        first = term.journal.payment(result.id)
        term.saf.wake()
        assert wait_until(lambda: term.journal.payment(result.id).state == "voided", 60)
        last = term.feedback.recent[-1]
    finally:
        term.close()
    assert (result.outcome, result.approved_amount, result.parts) == ("cancelled", 0, [result.id])
    assert first.amount == 1555 and first.state in ("void_queued", "voided")
    assert last.name == "cancelled"
    (row,) = host_sim.ledger.transactions("PITAP001")
    assert (row["amount"], row["reversed"]) == (1555, 1) and "void" in row["reason"]


def _states(journal_file: Path) -> list[str]:
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{journal_file}?mode=ro", uri=True, timeout=1.0)
        try:
            return [r[0] for r in conn.execute("SELECT state FROM payments ORDER BY id")]
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def test_a_kill_while_the_rest_is_asked_for_leaves_nothing_charged(tmp_path: Path) -> None:
    import signal

    from run_support import start_pitap

    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    with HostSimulator(port=0, ledger_file=tmp_path / "ledger.sqlite") as sim:
        site = site_file(tmp_path, sim.port, reader, 120.0)
        wallet = SimulatedPhone("visa-online", reader)
        wallet.start(taps=1, timeout=120.0)
        pay = start_pitap("pay", "31.10", "--config", str(site))
        try:
            # killed once the first part is approved and the rest waits for its tap
            assert wait_until(lambda: _states(tmp_path / "state" / "journal.sqlite")
                              == ["approved", "started"], seconds=120)
        finally:
            pay.send_signal(signal.SIGKILL)
            pay.wait(timeout=30)
            wallet.stop()
        (row,) = sim.ledger.transactions("PITAP001")
        assert (row["amount"], row["reversed"]) == (1555, 0)

        settled = run_pitap("settle", "--json", "--config", str(site))
        assert settled.returncode == 0, settled.stderr[-2000:]
        z = json.loads(settled.stdout)
        assert z["closed"] and z["agreed_first_time"] and z["voided"] == 1
        assert z["totals"] == z["host_totals"] == {"sales_count": 0, "sales_amount": 0,
                                                   "refunds_count": 0, "refunds_amount": 0}
        (row,) = sim.ledger.transactions("PITAP001")
        assert row["reversed"] == 1
    with Journal.from_config(load_config(site)) as journal:
        first, rest = journal.payments()
        assert (first.state, rest.state, rest.part_of) == ("voided", "error", first.id)


def test_the_receipt_and_the_z_report_group_the_parts(tmp_path: Path) -> None:
    """One receipt for a sale paid in two parts (two copies, not one a part): "Approved X of Y",
    a line a part with its card, approval code and STAN, the total paid; the Z-report lists the
    sale with its parts (each counted in the sales)."""
    from test_receipts import receipt_copies
    from test_void import pay

    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    with HostSimulator(port=0, ledger_file=tmp_path / "ledger.sqlite") as sim:
        site = site_file(tmp_path, sim.port, reader, 15.0)
        site.write_text(site.read_text(encoding="utf-8") + '[printer]\nbackend = "file"\n',
                        encoding="utf-8")
        paid = pay(site, reader, "31.10", taps=2)
        assert paid["parts"] == [1, 2] and paid["approved_amount"] == 3110
        rows = sim.ledger.transactions("PITAP001")
        copies = receipt_copies(tmp_path / "state" / "receipts.bin")
        assert len(copies) == 2  # merchant and customer copy of the one sale
        for copy in copies:
            text = "\n".join(copy)
            assert "Approved EUR 15.55 of EUR 31.10" in copy, copy
            parts = [x for x in copy if x.startswith("Part ")]
            assert [x.split()[:2] + x.split()[-2:] for x in parts] == [
                ["Part", "1", "EUR", "15.55"], ["Part", "2", "EUR", "15.55"]]
            assert all(f"**** {paid['masked_pan'][-4:]}" in x for x in parts)
            for row in rows:
                assert f"Auth code {row['auth_code']}  STAN {row['stan']}" in text, text
            assert "TOTAL PAID EUR 31.10" in text.upper() and "APPROVED" in text

        settled = run_pitap("settle", "--config", str(site))
        assert settled.returncode == 0, settled.stderr[-2000:]
        assert any(line.split() == ["partial", "#1", "2", "parts", "EUR", "31.10"]
                   for line in settled.stdout.splitlines()), settled.stdout
    with Journal.from_config(load_config(site)) as journal:
        ((first, parts),) = journal.partial_sales()
        assert (first.id, [p.id for p in parts], journal.asked(first.id)) == (1, [1, 2], 3110)
