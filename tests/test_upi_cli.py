"""`pitap pay AMOUNT --upi` as a shopkeeper runs it: a subprocess against the simulated PSP (a
real HTTP server on 127.0.0.1) with a real SQLite journal. Bad input is one line and exit 2
with nothing journalled; a payment killed (SIGKILL) while its request is pending is recovered
at the next start as the PSP says, never approved without the PSP's SUCCESS; a UPI payment is
refunded through the PSP and never voided."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_support import run_pitap, start_pitap, wait_until

from firmware.journal import Journal, Payment
from firmware.payment import PaymentState
from firmware.upi.config import UpiSection
from firmware.upi.psp import UpiStatus, connect_psp
from simulators.upi.psp import PspSimulator

LIMIT_S = 120.0  # generous ceilings: nothing here asserts how long anything took


@pytest.fixture(scope="module")
def psp_sim() -> Iterator[PspSimulator]:
    # the payer pays 3 s after the request: time for a kill while it is pending
    with PspSimulator(pay_delay_s=3.0, slow_pay_delay_s=4.0) as sim:
        yield sim


class StoppedClock:
    """The simulated PSP's clock, moved only by the test: its payer pays when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def site(tmp_path: Path, psp_url: str | None, currency: str = "INR") -> Path:
    upi = (f'[upi]\npayee_vpa = "pitapdemo@okaxis"\nmcc = "5411"\npsp_url = "{psp_url}"\n'
           'poll_interval_s = 0.2\nrequest_expiry_s = 60\n') if psp_url else ""
    path = tmp_path / "site.toml"
    path.write_text(f'[terminal]\nstate_dir = "{tmp_path / "state"}"\ncurrency = "{currency}"\n'
                    f'[display]\nbackend = "png"\ndirectory = "{tmp_path / "screens"}"\n'
                    f'[gpio]\nbackend = "sim"\n{upi}')
    return path


def payments(tmp_path: Path) -> list[Payment]:
    journal_file = tmp_path / "state" / "journal.sqlite"
    if not journal_file.exists():
        return []
    with Journal.open(journal_file, tmp_path / "state" / "journal.key",
                      create_key=False) as journal:
        return journal.payments()


@pytest.mark.parametrize(
    ("args", "currency", "configured", "says"),
    [
        (("250.00", "--upi"), "EUR", True, "INR only"),
        (("250.00", "--upi", "--currency", "EUR"), "INR", True, "INR only"),
        (("250.00", "--upi"), "INR", False, "UPI is not configured"),
        (("250.001", "--upi"), "INR", True, "amount"),
        (("250.00", "--upi", "--tip", "1"), "INR", True, "--tip"),
        (("200000.00", "--upi"), "INR", True, "am must be"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_journalled(
        tmp_path: Path, psp_sim: PspSimulator, args: tuple[str, ...], currency: str,
        configured: bool, says: str) -> None:
    cfg = site(tmp_path, psp_sim.url if configured else None, currency)
    run = run_pitap("pay", *args, "--config", str(cfg))
    assert run.returncode == 2, run.stdout + run.stderr
    assert says in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert payments(tmp_path) == []


def test_a_payment_is_approved_after_the_psps_success(tmp_path: Path,
                                                      psp_sim: PspSimulator) -> None:
    run = run_pitap("pay", "250.00", "--upi", "--json", "--config",
                    str(site(tmp_path, psp_sim.url)))
    assert run.returncode == 0, run.stdout + run.stderr
    (p,) = payments(tmp_path)
    assert p.state is PaymentState.APPROVED and p.psp_reference
    assert connect_psp(UpiSection(psp_url=psp_sim.url)).status(
        p.upi_reference).status is UpiStatus.SUCCESS
    assert '"tender": "upi"' in run.stdout and '"outcome": "approved"' in run.stdout


@pytest.mark.parametrize("amount", ["250.00", "250.08"])  # pays later; never pays
def test_killed_while_pending_recovers_as_the_psp_says(tmp_path: Path, amount: str) -> None:
    clock = StoppedClock()  # nobody pays until the test moves the PSP's clock
    with PspSimulator(pay_delay_s=3.0, clock=clock) as psp_sim:
        killed_while_pending_then_recovered(tmp_path, psp_sim, clock, amount)


def killed_while_pending_then_recovered(tmp_path: Path, psp_sim: PspSimulator,
                                        clock: StoppedClock, amount: str) -> None:
    cfg = site(tmp_path, psp_sim.url)
    proc = start_pitap("pay", amount, "--upi", "--config", str(cfg),
                       stdin=subprocess.DEVNULL)

    def pending_at_the_psp() -> bool:
        found = payments(tmp_path)
        return (len(found) == 1 and found[0].state is PaymentState.UPI_PENDING
                and found[0].upi_reference in psp_sim.requests)

    try:
        assert wait_until(pending_at_the_psp, LIMIT_S)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=LIMIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=LIMIT_S)
    (killed,) = payments(tmp_path)
    assert killed.state is PaymentState.UPI_PENDING and not killed.charged
    # the next start asks the PSP: a payment that pays later ends approved (once paid), one
    # that never pays is withdrawn there and ends cancelled; never approved without SUCCESS
    clock.now += 10  # the payer of 250.00 pays now, after the kill
    if amount == "250.00":
        psp = connect_psp(UpiSection(psp_url=psp_sim.url))
        assert psp.status(killed.upi_reference).status is UpiStatus.SUCCESS
    # the next start (another UPI payment) recovers first; its own payer pays when told
    again = start_pitap("pay", "1.00", "--upi", "--config", str(cfg), stdin=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: len(psp_sim.requests) == 2, LIMIT_S)
        clock.now += 10
        _out, err = again.communicate(timeout=LIMIT_S)
    finally:
        if again.poll() is None:
            again.kill()
            again.communicate(timeout=LIMIT_S)
    assert again.returncode == 0, err
    assert "UPI request left pending; ended as the PSP says" in err, err
    recovered = payments(tmp_path)[0]
    said = psp_sim.requests[killed.upi_reference]
    if amount == "250.00":
        assert recovered.state is PaymentState.APPROVED and recovered.psp_reference
    else:
        assert recovered.state is PaymentState.CANCELLED and said.cancelled_at is not None
        assert not recovered.charged and recovered.psp_reference == ""


def test_refund_through_the_psp_and_no_void(tmp_path: Path, psp_sim: PspSimulator) -> None:
    cfg = str(site(tmp_path, psp_sim.url))
    assert run_pitap("pay", "250.00", "--upi", "--config", cfg).returncode == 0
    (paid,) = payments(tmp_path)
    void = run_pitap("void", str(paid.id), "--config", cfg)
    assert void.returncode == 2 and "UPI: refund it instead" in void.stderr
    refund = run_pitap("refund", "100.00", "--of", str(paid.id), "--config", cfg)
    assert refund.returncode == 0, refund.stdout + refund.stderr
    assert "refund" in refund.stdout and "approved" in refund.stdout
    too_much = run_pitap("refund", "200.00", "--of", str(paid.id), "--config", cfg)
    assert too_much.returncode == 2 and "150.00 INR left" in too_much.stderr
    assert "Traceback" not in void.stderr + refund.stderr + too_much.stderr
    paid_now, refunded = payments(tmp_path)
    assert (refunded.tender.value, refunded.refund_of, refunded.amount) == ("upi", paid.id,
                                                                             10000)
    assert refunded.state is PaymentState.APPROVED and paid_now.state is PaymentState.APPROVED
