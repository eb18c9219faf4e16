"""The Z-report keeps cards and UPI apart: a day of card payments (the host simulator, a real
ISO 8583 server) and UPI payments (the PSP simulator, real HTTP) settles with the card totals
agreeing with the host's ledger to the unit, no UPI payment sent to the acquirer, and the UPI
payments on lines of their own (count and total per currency)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from host_support import TestCard, write_keys
from test_host_settlement import pay, terminal_config

from drivers.display import NullDisplay
from firmware.feedback import Feedback
from firmware.host import connect
from firmware.host.settlement import format_z_report, settle_day
from firmware.journal import Journal
from firmware.upi.config import UpiSection
from firmware.upi.psp import connect_psp
from firmware.upi.tender import UpiTender
from simulators.host.simulator import HostSimulator
from simulators.upi.psp import PspSimulator

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


def test_the_z_report_shows_cards_and_upi_apart(tmp_path: Path) -> None:
    keys = write_keys(tmp_path)
    state = tmp_path / "state"
    with HostSimulator(port=0, keys_file=keys) as host, PspSimulator(pay_delay_s=0.2) as psp, \
            Journal.open(state / "journal.sqlite", state / "journal.key") as journal:
        cfg = terminal_config(tmp_path, host.port)
        acquirer = connect(cfg, stan_source=journal.next_stan)
        upi_cfg = UpiSection(payee_vpa="pitapdemo@okaxis", mcc="5411", psp_url=psp.url,
                             poll_interval_s=0.2, request_expiry_s=10)
        upi = UpiTender(journal, connect_psp(upi_cfg), Feedback(NullDisplay(), None, None),
                        upi_cfg, "PITAP001", "Pitap Demo Shop")
        card = TestCard()
        assert pay(journal, acquirer, card, 1000) == "approved"
        assert upi.take(25000).outcome == "approved"
        assert upi.take(30000).outcome == "approved"
        assert upi.take(25005).outcome == "declined"
        paid = journal.payments()[1].id
        assert upi.refund(paid, 5000).outcome == "approved"
        assert pay(journal, acquirer, card, 2000) == "approved"
        z = settle_day(journal, acquirer, cfg)
        assert z.closed and z.agreed_first_time  # the host's ledger: cards only
        assert z.totals.counts() == {"sales_count": 2, "sales_amount": 3000,
                                     "refunds_count": 0, "refunds_amount": 0}
        assert z.host_totals == z.totals and z.other_currencies == {}
        assert all(t["amount"] in (1000, 2000) for t in host.ledger.transactions())
        (inr,) = z.upi.values()
        assert inr.counts() == {"sales_count": 2, "sales_amount": 55000,
                                "refunds_count": 1, "refunds_amount": 5000}
        assert z.upi_outcomes == {"approved": 3, "declined": 1}
        text = format_z_report(z)
        cards, upi_part = text.split("UPI (settled by the PSP, not the host)")
        assert "EUR 30.00" in cards and "INR" not in cards
        assert "UPI sales        2" in upi_part and "INR 550.00" in upi_part
        assert "INR 50.00" in upi_part and "UPI not paid: declined 1" in upi_part
        assert z.as_dict()["upi"] == {"356": inr.counts()}
        # the next batch starts with no UPI either
        z2 = settle_day(journal, acquirer, dataclasses.replace(cfg))
        assert z2.upi == {} and "UPI" not in format_z_report(z2)
