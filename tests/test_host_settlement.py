"""Store-and-forward and settlement against the real journal and the host simulator: a day of
mixed outcomes (approvals, declines, a host that stops answering mid-day and comes back,
offline approvals, refunds) settles with totals that agree with the simulator's ledger to the
unit; a disagreement uploads the batch; `pitap settle --json` prints the Z-report."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_support import MC_PAN, LoopbackServer, TestCard, auth_request, write_keys
from journal_support import walk_to
from run_support import wait_until

from firmware.config import Config, load_config
from firmware.host import connect, messages
from firmware.host.acquirer import Acquirer, HostUnavailable, NoReply
from firmware.host.dialect import load_dialect
from firmware.host.link import FrameError, FrameReader, frame
from firmware.host.saf import StoreAndForward
from firmware.host.settlement import BatchNotClosed, format_z_report, settle_day
from firmware.journal import Journal
from simulators.host.simulator import HostSimulator

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


def terminal_config(tmp_path: Path, port: int, response_timeout_s: float = 10.0) -> Config:
    """Room for a loaded machine: the simulator answers at once, or (test amount ...96) never,
    and a test with such an amount waits out the (then shorter) response timeout."""
    cfg = load_config()
    return dataclasses.replace(
        cfg,
        terminal=dataclasses.replace(cfg.terminal, state_dir=str(tmp_path / "state")),
        host=dataclasses.replace(cfg.host, port=port, response_timeout_s=response_timeout_s,
                                 connect_timeout_s=10.0),
    )


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return write_keys(tmp_path)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "state" / "journal.sqlite", tmp_path / "state" / "journal.key",
                     backoff=(0.0, 0.0))
    yield j
    j.close()


def pay(journal: Journal, acquirer: Acquirer, card: TestCard, amount: int,
        txn_type: str = "purchase") -> str:
    """What the terminal loop does around one online authorization; returns the outcome."""
    pid = journal.new_payment(txn_type, amount, 978, "PITAP001")
    stan = journal.next_stan()
    req = auth_request(card, amount, stan=stan, txn_type=txn_type)
    journal.keep_card_data(pid, req)
    walk_to(journal, pid, "awaiting_reply", stan=stan, scheme="visa" if card.cvn != 16
            else "mastercard", masked_pan=card.pan[:6] + "******" + card.pan[-4:])
    try:
        reply = acquirer.authorize(req)
    except HostUnavailable as exc:
        walk_to(journal, pid, "error", reason=str(exc))
        return "error"
    except NoReply as exc:
        journal.enqueue("reversal", pid)  # before the outcome: the reversal needs the card data
        walk_to(journal, pid, "error", reason=str(exc))
        return "reversal_queued"
    state = "approved" if reply.approved else "declined"
    journal.record(pid, state, response_code=reply.response_code, auth_code=reply.auth_code,
                   rrn=reply.rrn)
    return state


def offline_approval(journal: Journal, card: TestCard, amount: int) -> None:
    pid = journal.new_payment("purchase", amount, 978, "PITAP001")
    stan = journal.next_stan()
    req = dataclasses.replace(auth_request(card, amount, stan=stan), offline_approved=True)
    journal.keep_card_data(pid, req)
    walk_to(journal, pid, "approved", stan=stan, offline=True, scheme="visa")
    journal.enqueue("advice", pid)


def test_a_mixed_day_settles_in_agreement_with_the_ledger(tmp_path: Path, keys: Path,
                                                          journal: Journal) -> None:
    ledger = tmp_path / "ledger.sqlite"
    sim = HostSimulator(port=0, keys_file=keys, ledger_file=ledger).start()
    port = sim.port
    cfg = terminal_config(tmp_path, port, response_timeout_s=3.0)  # 1296 is never answered
    acquirer = connect(cfg, stan_source=journal.next_stan)
    visa, mc = TestCard(), TestCard(MC_PAN)
    outcomes = [pay(journal, acquirer, visa, 1000), pay(journal, acquirer, mc, 2550),
                pay(journal, acquirer, visa, 1051), pay(journal, acquirer, mc, 705),
                pay(journal, acquirer, visa, 1296), pay(journal, acquirer, mc, 397),
                pay(journal, acquirer, visa, 450, "refund")]
    assert outcomes == ["approved", "approved", "declined", "declined", "reversal_queued",
                        "reversal_queued", "approved"]
    offline_approval(journal, visa, 800)
    # the host stops answering mid-day: the queue cannot drain, payments fail cleanly
    sim.stop()
    saf = StoreAndForward(journal, acquirer, cfg.terminal.merchant_id)
    first = saf.drain()
    assert first.sent == [] and first.remaining == 3 and first.failed
    assert pay(journal, acquirer, visa, 999) == "error"
    assert journal.queue()[0].attempts == 1
    # ... and comes back: the queue drains in order, reversals repeated as 0401
    sim = HostSimulator(port=port, keys_file=keys, ledger_file=ledger).start()
    try:
        assert saf.drain(include_not_due=True).complete
        assert pay(journal, acquirer, mc, 1234) == "approved"
        z = settle_day(journal, acquirer, cfg)
        assert z.closed and z.agreed_first_time and z.response_code == "00"
        assert z.totals.counts() == {"sales_count": 4, "sales_amount": 1000 + 2550 + 800 + 1234,
                                     "refunds_count": 1, "refunds_amount": 450}
        assert z.host_totals == z.totals  # the simulator's ledger, to the unit
        batch = sim.ledger.batches("PITAP001")[-1]
        assert (batch["sales_amount"], batch["refunds_amount"], batch["host_agreed"]) == (
            5584, 450, 1)
        assert sum(1 for t in sim.ledger.transactions() if t["reversed"]) == 2
        text = format_z_report(z)
        assert "totals agreed" in text and "EUR 55.84" in text and "4761" not in text
        # the next day starts empty
        z2 = settle_day(journal, acquirer, cfg)
        assert z2.closed and z2.totals.sales_count == 0 and z2.batch == z.batch + 1
    finally:
        sim.stop()


def test_disagreement_uploads_the_batch_and_closes_it(tmp_path: Path, keys: Path,
                                                      journal: Journal) -> None:
    with HostSimulator(port=0, keys_file=keys) as sim:
        cfg = terminal_config(tmp_path, sim.port)
        acquirer = connect(cfg, stan_source=journal.next_stan)
        card = TestCard()
        assert pay(journal, acquirer, card, 1000) == "approved"
        # a charge the terminal never journaled (e.g. another application on the same id)
        acquirer.authorize(auth_request(card, 777, stan=journal.next_stan()))
        z = settle_day(journal, acquirer, cfg)
        assert z.closed and not z.agreed_first_time and z.uploaded == 1
        assert z.host_totals is not None
        assert z.host_totals.counts() == {"sales_count": 2, "sales_amount": 1777,
                                          "refunds_count": 0, "refunds_amount": 0}
        assert "disagreed; batch uploaded (1) and closed" in format_z_report(z)
        batch = sim.ledger.batches("PITAP001")[-1]
        assert (batch["uploaded"], batch["host_agreed"], batch["sales_amount"]) == (1, 0, 1000)


def test_host_away_at_settlement_resumes_the_same_batch(tmp_path: Path, keys: Path,
                                                        journal: Journal) -> None:
    with HostSimulator(port=0, keys_file=keys) as sim:
        port = sim.port
        cfg = terminal_config(tmp_path, port)
        acquirer = connect(cfg, stan_source=journal.next_stan)
        assert pay(journal, acquirer, TestCard(), 2000) == "approved"
    with pytest.raises(HostUnavailable):
        settle_day(journal, acquirer, cfg)
    assert pay(journal, acquirer, TestCard(), 300) == "error"  # host still away
    unfinished = journal.unfinished_settlements()
    assert len(unfinished) == 1
    sim2 = HostSimulator(port=port, keys_file=keys)
    sim2.ledger.book(terminal_id="PITAP001", stan="000001", mti="0100", kind="sale", amount=2000,
                     currency=978, response_code="00", approved=True)  # what the first host knew
    with sim2:
        z = settle_day(journal, acquirer, cfg)
    assert z.closed and z.batch == unfinished[0].batch and z.totals.sales_amount == 2000


def test_pitap_settle_json(tmp_path: Path, keys: Path, journal: Journal,
                           capsys: pytest.CaptureFixture[str]) -> None:
    from firmware.cli import main

    with HostSimulator(port=0, keys_file=keys) as sim:
        cfg = terminal_config(tmp_path, sim.port)
        acquirer = connect(cfg, stan_source=journal.next_stan)
        assert pay(journal, acquirer, TestCard(), 1500) == "approved"
        config_file = tmp_path / "terminal.toml"
        dialect = cfg.data_path("dialects/pitap-default.toml")
        config_file.write_text(
            f'[terminal]\nstate_dir = "{tmp_path / "state"}"\n'
            f'[host]\nport = {sim.port}\ndialect = "{dialect}"\n', encoding="utf-8")
        assert main(["settle", "--json", "--config", str(config_file)]) == 0
    z = json.loads(capsys.readouterr().out)
    assert z["closed"] and z["totals"]["sales_amount"] == 1500 and z["by_scheme"]["visa"]
    assert main(["settle", "--config", str(config_file)]) == 1  # host gone: one line, exit 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batch not closed" in err


def test_a_reversal_the_host_cannot_take_keeps_the_batch_open(
        tmp_path: Path, keys: Path, journal: Journal, capsys: pytest.CaptureFixture[str]) -> None:
    from firmware.cli import main

    ledger = tmp_path / "ledger.sqlite"
    with HostSimulator(port=0, keys_file=keys, ledger_file=ledger) as sim:
        port = sim.port
        cfg = terminal_config(tmp_path, port)
        acquirer = connect(cfg, stan_source=journal.next_stan)
        assert pay(journal, acquirer, TestCard(), 1000) == "approved"
        assert pay(journal, acquirer, TestCard(), 2096) == "reversal_queued"  # booked, unanswered
    # the host is away at end of day: the reversal cannot go, so the batch must not close
    with pytest.raises(BatchNotClosed, match=r"1 reversal\(s\) not acknowledged by the host"):
        settle_day(journal, acquirer, cfg)
    assert journal.settlements() == [] and len(journal.queue()) == 1
    config_file = tmp_path / "terminal.toml"
    config_file.write_text(f'[terminal]\nstate_dir = "{tmp_path / "state"}"\n'
                           f"[host]\nport = {port}\nconnect_timeout_s = 0.4\n", encoding="utf-8")
    assert main(["settle", "--config", str(config_file)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batch not closed: 1 reversal(s) not acknowledged" in err
    assert journal.settlements() == []
    with HostSimulator(port=port, keys_file=keys, ledger_file=ledger) as sim:
        z = settle_day(journal, acquirer, cfg)  # back: the reversal first, then the totals
        assert z.closed and z.agreed_first_time and z.totals.sales_amount == 1000
        assert [(t["amount"], t["reversed"], t["batch"]) for t in sim.ledger.transactions()] == [
            (1000, 0, z.batch), (2096, 1, z.batch)]
    acquirer.close()


def test_a_payment_waiting_for_its_reply_keeps_the_batch_open(tmp_path: Path, keys: Path,
                                                              journal: Journal) -> None:
    with HostSimulator(port=0, keys_file=keys) as sim:
        cfg = terminal_config(tmp_path, sim.port)
        acquirer = connect(cfg, stan_source=journal.next_stan)
        pid = journal.new_payment("purchase", 500, 978, "PITAP001")  # its 0100 is on its way
        walk_to(journal, pid, "awaiting_reply", stan=journal.next_stan())
        with pytest.raises(BatchNotClosed, match=f"payment #{pid} is still waiting"):
            settle_day(journal, acquirer, cfg)
        assert sim.ledger.batches() == [] and journal.settlements() == []
        acquirer.close()


def test_other_currency_payments_are_listed_not_settled(tmp_path: Path, keys: Path,
                                                        journal: Journal) -> None:
    with HostSimulator(port=0, keys_file=keys) as sim:
        cfg = terminal_config(tmp_path, sim.port)
        acquirer = connect(cfg, stan_source=journal.next_stan)
        card = TestCard()
        assert pay(journal, acquirer, card, 1000) == "approved"
        pid = journal.new_payment("purchase", 75000, 356, "PITAP001")  # an INR payment
        stan = journal.next_stan()
        req = dataclasses.replace(auth_request(card, 75000, stan=stan), currency=356)
        walk_to(journal, pid, "awaiting_reply", stan=stan)
        reply = acquirer.authorize(req)
        walk_to(journal, pid, "approved", auth_code=reply.auth_code, rrn=reply.rrn)
        z = settle_day(journal, acquirer, cfg)
        assert z.closed and z.agreed_first_time and z.totals.sales_amount == 1000
        assert z.other_currencies == {356: [1, 75000]}
        assert "Not settled here: 1 in INR 750.00" in format_z_report(z)
        assert sim.ledger.open_totals("PITAP001", 356).sales_amount == 75000  # still open


class SlowReversalHost(LoopbackServer):
    """Answers authorizations at once and a reversal only once `release` is set; `holding` is
    set while a reversal waits for it."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()
        self.dialect = load_dialect("pitap-default", load_config().source.parent)
        super().__init__(backlog=4)

    def serve(self, conn: socket.socket) -> None:
        reader = FrameReader(conn, "binary2", 4096)
        with conn:
            while True:
                try:
                    req = self.dialect.decode(reader.read(time.monotonic() + 60))
                except FrameError:
                    return
                if req["t"].startswith("04"):
                    self.holding.set()
                    self.release.wait(60)
                reply = {"t": messages.reply_mti(req["t"]), "11": req["11"], "41": req["41"],
                         "39": "00", "38": "654321"}
                conn.sendall(frame(self.dialect.encode(reply), "binary2"))


def test_a_slow_reversal_never_holds_up_a_payment(tmp_path: Path, journal: Journal) -> None:
    host = SlowReversalHost()
    cfg = terminal_config(tmp_path, host.port)
    cfg = dataclasses.replace(cfg, host=dataclasses.replace(cfg.host, response_timeout_s=60.0))
    acquirer = connect(cfg, stan_source=journal.next_stan)
    card = TestCard()
    pid = journal.new_payment("purchase", 900, 978, "PITAP001")
    stan = journal.next_stan()
    journal.keep_card_data(pid, auth_request(card, 900, stan=stan))
    walk_to(journal, pid, "awaiting_reply", stan=stan)
    journal.enqueue("reversal", pid)
    saf = StoreAndForward(journal, acquirer)
    saf.start(interval_s=0.05)
    try:
        assert host.holding.wait(60)  # the reversal reached the host, which keeps it waiting
        assert pay(journal, acquirer, card, 1000) == "approved"
        # ...while the reversal is still waiting for its answer: not one attempt counted yet
        # (a payment queued behind it would have come only after the reversal timed out)
        (item,) = journal.queue()
        assert item.kind == "reversal" and item.attempts == 0 and not item.last_error
        host.release.set()
        assert wait_until(lambda: not journal.queue(), seconds=60, every=0.05)
        assert journal.payment(pid).state == "reversed"
    finally:
        host.release.set()
        saf.stop()
        acquirer.close()
