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

from firmware.receipt import receipt_lines, when_text
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


CARD = {"application_label": "Visa Debit", "aid": "A0000000031010", "rrn": "263361234567",
        "cvm": "cdcvm", "response_code": "00"}
SECOND = {"id": 13, "stan": 43, "amount": 1555, "masked_pan": "541333******0434",
          "scheme": "mastercard", "application_label": "Debit Mastercard",
          "aid": "A0000000041010", "rrn": "263361234568", "auth_code": "D4E5F6", "cvm": "signature",
          "response_code": "00"}
KINDS = {  # a kind -> (the payment dict as the journal gives it, its amount lines)
    "sale": (CARD, ["Total EUR 12.50"]),
    "tipped sale": (CARD | {"amount": 1500, "tip": 250},
                    ["Subtotal EUR 12.50", "Tip EUR 2.50", "Total EUR 15.00"]),
    "refund": (CARD | {"txn_type": "refund", "cvm": "no_cvm"}, ["Total EUR 12.50"]),
    "void": (CARD | {"state": "voided"}, ["Total EUR 12.50"]),
    "completion": (CARD | {"txn_type": "completion", "amount": 11500, "held": 12000},
                   ["Held EUR 120.00", "Completed EUR 115.00"]),
    "partial": (CARD | {"amount": 1555, "response_code": "10", "asked": 3110,
                        "parts": [PAYMENT | CARD | {"amount": 1555, "response_code": "10"},
                                  PAYMENT | SECOND]},
                ["Approved EUR 15.55 of EUR 31.10", "Total paid EUR 31.10"]),
}
HEADINGS = {"sale": "PURCHASE", "tipped sale": "PURCHASE", "refund": "REFUND", "void": "VOID",
            "completion": "COMPLETION", "partial": "PURCHASE"}
CVM = {"sale": "Verified by device", "tipped sale": "Verified by device",
       "refund": "No cardholder verification", "completion": "Verified by device"}


def squeeze(line: str) -> str:
    return " ".join(line.split())


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_of_receipt_has_every_line_a_scheme_asks_for(kind: str) -> None:
    """Item 6 of issue 13, line by line, on both copies and the QR e-receipt: merchant name and
    city, terminal id, date and time, the transaction type, the card's last four, its own label
    (not the scheme's name) and AID, the amount lines, the CVM statement, auth code, response,
    STAN and RRN, the copy. A sale paid in parts: each part's card, label, AID, approval code,
    STAN, RRN, response and CVM on its own lines, none of them on the sale's."""
    from firmware.receipt import receipt_qr_payload

    extra, amounts = KINDS[kind]
    payment = PAYMENT | extra
    lang = load("en")
    for copy in ("merchant", "customer"):
        lines = [squeeze(x.text) for x in receipt_lines(BUILDER, payment, copy, lang)]
        assert all(len(x.text) <= BUILDER.columns
                   for x in receipt_lines(BUILDER, payment, copy, lang))
        for needed in ("Pitap Demo Shop", "Milano", "Terminal PITAP001",
                       f"Date {when_text(payment)}", HEADINGS[kind], *amounts,
                       f"{copy.upper()} COPY"):
            assert needed in lines, (needed, lines)
        card = [x for x in lines if not x.startswith(("Part", "  "))]
        if kind != "partial":
            for needed in ("Application Visa Debit", "AID A0000000031010", "Card **** 0010",
                           "STAN 000042", "RRN 263361234567", "Auth code A1B2C3",
                           "Response 00"):
                assert needed in card, (needed, lines)
            assert "VISA" not in " ".join(lines)  # the card's label, not the scheme's name
            if kind == "void":
                assert "VOIDED" in lines and not any("erif" in x for x in lines)
            else:
                assert CVM[kind] in lines
            assert not any(x.startswith("x___") for x in lines)
            continue
        for needed in ("Part 1 **** 0010 EUR 15.55", "Auth code A1B2C3 STAN 000042",
                       "Application Visa Debit", "AID A0000000031010", "RRN 263361234567",
                       "Response 10", "Verified by device",
                       "Part 2 **** 0434 EUR 15.55", "Auth code D4E5F6 STAN 000043",
                       "Application Debit Mastercard", "AID A0000000041010",
                       "RRN 263361234568", "Response 00", "Signature"):
            assert needed in lines, (needed, lines)
        # the first part's card and answer are not printed as the whole sale's
        assert lines.count("Application Visa Debit") == 1 and "Card **** 0010" not in lines
        assert lines.count("Response 10") == 1 and "Auth code A1B2C3" not in lines
        assert sum(x.startswith("x___") for x in lines) == 1  # the second card signed
    qr = receipt_qr_payload(BUILDER, payment, lang).splitlines()
    for needed in ("Pitap Demo Shop", "Milano", "Terminal PITAP001", when_text(payment),
                   "CUSTOMER COPY"):
        assert needed in qr, (needed, qr)
    if kind != "partial":
        for needed in ("Visa Debit •••• 0010", "AID A0000000031010", "Auth code A1B2C3",
                       "STAN 000042 RRN 263361234567", "Response 00"):
            assert needed in qr, (needed, qr)
    else:
        assert "Response 10" in [squeeze(x) for x in qr] and "Signature" in [
            squeeze(x) for x in qr]
