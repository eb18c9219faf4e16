"""Receipts: the ESC/POS bytes decoded back into merchant and customer copies; a printer that is
offline or out of paper (a printer answering on a real pseudo-terminal) gives a clear message and
an on-screen QR receipt, and never an exception to the payment."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import pytest
from run_support import wait_until

from drivers.printer import FilePrinter, PrinterProblem, SerialPrinter
from firmware.config import load_config
from firmware.feedback import Feedback
from firmware.reasons import Reason
from firmware.receipt import ReceiptBuilder, receipt_lines, receipt_qr_payload
from ui.lang import load

PAYMENT = {
    "id": 12, "created_at": "2026-11-27T14:05:09", "txn_type": "purchase", "amount": 1250,
    "currency": 978, "terminal_id": "PITAP001", "outcome": "approved", "state": "approved",
    "scheme": "visa", "masked_pan": "476173******0010", "stan": 42, "auth_code": "A1B2C3",
    "reason": "approved",
}
BUILDER = ReceiptBuilder("Pitap Demo Shop", "Milano", "000000000000001", "PITAP001")


def decode_escpos(data: bytes) -> tuple[list[str], list[str], int]:
    """(text lines, QR contents, cuts) from ESC/POS bytes: the commands python-escpos emits."""
    text, qrs, cuts, i = bytearray(), [], 0, 0
    while i < len(data):
        b = data[i]
        if b == 0x1B:  # ESC
            cmd = data[i + 1]
            i += 2 if cmd == ord("@") else 3
        elif b == 0x1D:  # GS
            cmd = data[i + 1]
            if cmd == ord("("):  # GS ( k pL pH cn fn data
                length = data[i + 3] | data[i + 4] << 8
                body = data[i + 5:i + 5 + length]
                if body[:3] == b"1P0":
                    qrs.append(body[3:].decode())
                i += 5 + length
            elif cmd == ord("V"):
                cuts += 1
                i += 3
            else:
                i += 3
        else:
            text.append(b)
            i += 1
    return text.decode("cp437").splitlines(), qrs, cuts


def test_printed_receipt_has_both_copies_with_what_a_receipt_needs(tmp_path: Path) -> None:
    printer = FilePrinter(tmp_path / "receipts.bin")
    for copy in ("merchant", "customer"):
        printer.print_document(receipt_lines(BUILDER, PAYMENT, copy, load("en")))
    data = (tmp_path / "receipts.bin").read_bytes()
    lines, _qrs, cuts = decode_escpos(data)
    text = "\n".join(lines)
    assert cuts == 2
    assert text.count("Pitap Demo Shop") == 2
    for needed in ("MERCHANT COPY", "CUSTOMER COPY", "PITAP001", "27/11/2026 14:05:09",
                   "EUR 12.50", "APPROVED", "A1B2C3", "VISA", "**** 0010", "PURCHASE"):
        assert needed in text, needed
    assert b"476173" not in data  # the receipt shows the last four digits only
    assert all(len(line) <= 32 for line in lines)  # fits 58 mm paper


@pytest.mark.parametrize("columns", [32, 48])
def test_every_line_fits_the_paper_even_for_long_names_and_amounts(columns: int) -> None:
    builder = dataclasses.replace(BUILDER, merchant_name="Trattoria Da Giovanni e Figli",
                                  columns=columns)
    big = {**PAYMENT, "amount": 123456789}
    for code in ("en", "it"):
        for copy in ("merchant", "customer"):
            for line in receipt_lines(builder, big, copy, load(code)):
                assert len(line.text) * (2 if line.large else 1) <= columns, line
    lines = receipt_lines(builder, big, "customer", load("it"))
    assert any(line.text == "Totale EUR 1.234.567,89" for line in lines)


def test_declined_receipt_says_why_in_italian(tmp_path: Path) -> None:
    declined = {**PAYMENT, "outcome": "declined", "auth_code": "", "response_code": "51",
                "reason": "Insufficient funds"}
    FilePrinter(tmp_path / "r.bin").print_document(
        receipt_lines(BUILDER, declined, "customer", load("it")))
    lines, _, _ = decode_escpos((tmp_path / "r.bin").read_bytes())
    text = "\n".join(lines)
    assert "RIFIUTATA" in text and "Fondi insufficienti" in text and "EUR 12,50" in text
    assert "COPIA CLIENTE" in text


@pytest.mark.parametrize(("code", "word", "headline"), [
    ("en", "REFUND", "REFUND APPROVED"), ("it", "STORNO", "STORNO APPROVATO")])
def test_refund_receipt_and_qr_receipt_say_refund(code: str, word: str, headline: str) -> None:
    refund = {**PAYMENT, "txn_type": "refund", "amount": 500}
    texts = [line.text for line in receipt_lines(BUILDER, refund, "customer", load(code))]
    assert word in texts and headline in texts
    assert load(code).t("approved_refund") in receipt_qr_payload(BUILDER, refund, load(code))


def test_host_trouble_receipt_says_not_charged_and_why() -> None:
    failed = {**PAYMENT, "outcome": "error", "auth_code": "", "reason":
              "no reply from host (timed out); reversal queued"}
    texts = [line.text for line in receipt_lines(BUILDER, failed, "customer", load("en"),
                                                 Reason.NO_REPLY)]
    assert "NOT CHARGED" in texts and "No reply from bank" in texts
    assert not any("DECLINED" in text or "ERROR" in text for text in texts)


def test_the_host_free_text_decides_nothing_on_paper() -> None:
    """A reason is a code: a host text that merely mentions 'expired' or 'insufficient' is
    printed as it is, never taken for that reason (nor a terminal error for host trouble)."""
    declined = {**PAYMENT, "outcome": "declined", "auth_code": "", "response_code": "05",
                "reason": "Declined by card issuer (funds insufficient? card expired?)"}
    texts = [line.text for line in receipt_lines(BUILDER, declined, "customer", load("it"))]
    assert load("it").t("reason_do_not_honour") in texts
    assert not any(load("it").t(key) in texts
                   for key in ("reason_insufficient_funds", "reason_expired"))
    error = {**PAYMENT, "outcome": "error", "auth_code": "", "reason": "no reply from host"}
    texts = [line.text for line in receipt_lines(BUILDER, error, "customer", load("en"))]
    assert "NOT CHARGED" not in texts


def test_offline_approval_receipt_says_approved_offline_not_y1() -> None:
    offline = {**PAYMENT, "auth_code": "Y1", "offline": True}
    texts = [line.text for line in receipt_lines(BUILDER, offline, "customer", load("en"))]
    assert "Approved offline" in texts and not any("Y1" in text for text in texts)
    payload = receipt_qr_payload(BUILDER, offline, load("en"))
    assert "Approved offline" in payload and "Y1" not in payload


def test_qr_payload_names_the_payment_or_the_configured_address() -> None:
    text = receipt_qr_payload(BUILDER, PAYMENT, load("en"))
    assert "EUR 12.50" in text and "A1B2C3" in text and "0010" in text
    assert "476173" not in text
    url = dataclasses.replace(BUILDER, url="https://r.example/{terminal_id}/{id}")
    assert receipt_qr_payload(url, PAYMENT, load("en")) == "https://r.example/PITAP001/12"


class PtyPrinter:
    """A thermal printer at the far end of a pseudo-terminal: answers DLE EOT status queries."""

    def __init__(self, online: bool = True, paper: bool = True) -> None:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self.slave = slave
        self.online, self.paper = online, paper
        self.received = bytearray()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import select

        while not self.stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            self.received += chunk
            if b"\x10\x04\x01" in chunk:
                os.write(self.master, bytes([0x12 if self.online else 0x1A]))
            if b"\x10\x04\x04" in chunk:
                os.write(self.master, bytes([0x12 if self.paper else 0x72]))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(1)
        os.close(self.master)
        os.close(self.slave)


@pytest.mark.parametrize(("online", "paper", "kind"), [
    (True, True, ""), (True, False, "no_paper"), (False, True, "offline")])
def test_serial_printer_checks_status_before_printing(online: bool, paper: bool,
                                                      kind: str) -> None:
    far_end = PtyPrinter(online, paper)
    try:
        printer = SerialPrinter(far_end.path, timeout=10.0)  # it answers: the wait ends then
        lines = receipt_lines(BUILDER, PAYMENT, "customer", load("en"))
        if kind:
            with pytest.raises(PrinterProblem) as problem:
                printer.print_document(lines)
            assert problem.value.kind == kind
            assert b"CUSTOMER COPY" not in far_end.received  # nothing half-printed
        else:
            printer.print_document(lines)
            assert wait_until(lambda: b"CUSTOMER COPY" in far_end.received, seconds=30,
                              every=0.01)
    finally:
        far_end.close()


def test_missing_printer_is_offline() -> None:
    with pytest.raises(PrinterProblem) as problem:
        SerialPrinter("/dev/pitap-no-such-printer", timeout=0.2).print_document([])
    assert problem.value.kind == "offline"


def feedback_with_printer(tmp_path: Path, **printer: object) -> Feedback:
    cfg = load_config()
    cfg = dataclasses.replace(
        cfg, terminal=dataclasses.replace(cfg.terminal, state_dir=str(tmp_path)),
        printer=dataclasses.replace(cfg.printer, **printer))
    return Feedback.from_config(cfg)


def test_out_of_paper_shows_why_and_a_qr_receipt_and_does_not_raise(tmp_path: Path) -> None:
    far_end = PtyPrinter(online=True, paper=False)
    fb = feedback_with_printer(tmp_path, backend="serial", port=far_end.path, timeout_s=10.0)
    try:
        assert fb.receipt(PAYMENT) == "out of paper"
        assert fb.last_screen is not None and fb.last_screen.name == "receipt_qr"
        assert fb.last_screen.shows("Printer: out of paper")
        assert fb.last_screen.shows("Scan for your receipt")
    finally:
        fb.close()
        far_end.close()


def test_no_printer_shows_the_qr_receipt(tmp_path: Path) -> None:
    fb = feedback_with_printer(tmp_path, backend="none")
    try:
        assert fb.receipt(PAYMENT) == "qr"
        assert fb.last_screen is not None and fb.last_screen.shows("€12.50")
    finally:
        fb.close()


def test_file_printer_prints_both_copies_through_feedback(tmp_path: Path) -> None:
    fb = feedback_with_printer(tmp_path, backend="file")
    try:
        assert fb.receipt(PAYMENT) == "printed"
    finally:
        fb.close()
    lines, _, cuts = decode_escpos((tmp_path / "receipts.bin").read_bytes())
    assert cuts == 2 and "MERCHANT COPY" in lines and "CUSTOMER COPY" in lines


def test_hindi_terminal_prints_receipts_in_english(tmp_path: Path) -> None:
    cfg = load_config()
    cfg = dataclasses.replace(
        cfg, terminal=dataclasses.replace(cfg.terminal, state_dir=str(tmp_path), language="hi"),
        printer=dataclasses.replace(cfg.printer, backend="file"))
    fb = Feedback.from_config(cfg)
    try:
        assert fb.receipt(PAYMENT) == "printed"
    finally:
        fb.close()
    lines, _, _ = decode_escpos((tmp_path / "receipts.bin").read_bytes())
    assert "CUSTOMER COPY" in lines and "APPROVED" in lines  # no Devanagari code page on paper
