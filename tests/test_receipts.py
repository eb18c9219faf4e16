"""Receipts the schemes accept, through the real stack (a phone on nfcpy's udp: driver, the host
simulator on 127.0.0.1, the journal, the file printer's ESC/POS bytes): the card's own label and
AID, the cardholder verification, auth code, response, STAN and RRN, both copies; VOID for a
void. And the lines on their own (signature, no verification)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from run_support import run_pitap
from test_ui_receipt import BUILDER, PAYMENT, decode_escpos

from firmware.receipt import receipt_lines
from simulators.demo import free_port
from simulators.host.simulator import HostSimulator
from simulators.wallet.phone import SimulatedPhone
from ui.lang import load

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


def receipt_copies(path: Path) -> list[list[str]]:
    """The printed copies, each its lines (a copy ends with its cut)."""
    lines, _qrs, _cuts = decode_escpos(path.read_bytes())
    copies, current = [], []
    for line in lines:
        current.append(line.strip())
        if line.strip() in ("MERCHANT COPY", "CUSTOMER COPY"):
            copies.append(current)
            current = []
        elif copies and line.strip() == "Thank you":
            copies[-1] += current
            current = []
    return copies


def test_a_payment_and_its_void_print_what_a_receipt_needs(tmp_path: Path) -> None:
    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    receipts = tmp_path / "state" / "receipts.bin"
    with HostSimulator(port=0, ledger_file=tmp_path / "ledger.sqlite") as sim:
        site = tmp_path / "site.toml"
        site.write_text(f'[terminal]\nstate_dir = "{tmp_path / "state"}"\n'
                        f'[reader]\npath = "{reader}"\n[host]\nport = {sim.port}\n'
                        '[display]\nbackend = "none"\n[printer]\nbackend = "file"\n',
                        encoding="utf-8")
        wallet = SimulatedPhone("mastercard-online", reader)
        wallet.start(taps=1, timeout=120.0)
        try:
            done = run_pitap("pay", "123.45", "--json", "--config", str(site))
        finally:
            wallet.stop()
        assert done.returncode == 0, done.stderr[-2000:]
        paid = json.loads(done.stdout)
        (row,) = sim.ledger.transactions("PITAP001")
        listed = run_pitap("journal", "--json", "--config", str(site))
        cvm = json.loads(listed.stdout.splitlines()[0])["cvm"]
        assert cvm == "cdcvm"  # above the CVM limit the phone verified its owner: journalled
        statement = "Verified by device"
        sale = receipt_copies(receipts)
        assert [c[-1] if c[-1] != "Thank you" else "CUSTOMER COPY" for c in sale] == [
            "MERCHANT COPY", "CUSTOMER COPY"]
        for copy in sale:
            text = "\n".join(copy)
            for needed in ("PURCHASE", "APPROVED", "EUR 123.45",
                           f"**** {paid['masked_pan'][-4:]}", str(row["auth_code"]),
                           f"RRN{' ' * 17}{row['rrn']}", f"STAN{' ' * 22}{paid['stan']:06d}",
                           f"Response{' ' * 22}00", "Contactless"):
                assert needed in text, (needed, copy)
            application = [x for x in copy if x.startswith("Application")]
            assert application == [f"Application{' ' * 11}MASTERCARD"]  # the card's own label
            assert any(x.startswith("AID") and x.endswith("A0000000041010") for x in copy)
            assert statement in copy, (statement, copy)
            assert paid["masked_pan"][:6] not in text  # the last four digits only

        receipts.unlink()
        voided = run_pitap("void", str(paid["id"]), "--config", str(site))
        assert voided.returncode == 0, voided.stderr[-2000:]
    void = receipt_copies(receipts)
    assert len(void) == 2
    for copy in void:
        assert "VOID" in copy and "VOIDED" in copy and "PURCHASE" not in copy
        assert "Verified by device" not in copy and "EUR 123.45" in "\n".join(copy)


@pytest.mark.parametrize(("cvm", "statement"), [
    ("cdcvm", "Verified by device"), ("no_cvm", "No cardholder verification"),
    ("", "No cardholder verification"), ("signature", "Signature"),
])
def test_the_cvm_statement_says_how_the_cardholder_was_verified(cvm: str, statement: str) -> None:
    lines = [line.text for line in receipt_lines(BUILDER, PAYMENT | {"cvm": cvm}, "customer",
                                                 load("en"))]
    assert statement in lines
    signature_line = [x for x in lines if x.startswith("x___")]
    assert len(signature_line) == (1 if cvm == "signature" else 0)
    assert all(len(x) <= BUILDER.columns for x in lines)


def test_the_qr_e_receipt_carries_the_same_essentials_and_fits_every_panel() -> None:
    from firmware.money import Money
    from firmware.receipt import receipt_qr_payload
    from ui import screens
    from ui.theme import LAYOUTS

    full = PAYMENT | {"application_label": "Visa Debit", "aid": "A0000000031010",
                      "rrn": "263361234567", "cvm": "cdcvm", "response_code": "00"}
    payload = receipt_qr_payload(BUILDER, full, load("en"))
    for needed in ("Purchase", "Visa Debit •••• 0010", "AID A0000000031010",
                   "STAN 000042 RRN 263361234567", "Verified by device", "Auth code A1B2C3"):
        assert needed in payload.splitlines(), (needed, payload)
    voided = receipt_qr_payload(BUILDER, full | {"state": "voided"}, load("en"))
    assert "Void" in voided.splitlines() and "Voided" in voided.splitlines()
    assert "Verified by device" not in voided
    for size in LAYOUTS:
        shown = screens.receipt_qr_screen(screens.View(*size, load("en")), payload,
                                          Money.of(1250, "EUR"), outcome="approved")
        assert shown.image.size == size
