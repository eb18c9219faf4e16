"""A UPI payment end to end in one process: the real HTTP PSP client against the real simulated
PSP (aiohttp on 127.0.0.1), a real SQLite journal, screens written as PNG. Every test amount
ends as the README's table says; approved only after the PSP's SUCCESS; the QR on screen
decodes (zbar) to exactly the fields asked; a refund goes back through the PSP. No test waits
on time: polling waits on the simulator's answers, with generous ceilings."""

from __future__ import annotations

import dataclasses
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from PIL import Image

from drivers.display import PngSink
from firmware.feedback import Feedback
from firmware.journal import Journal
from firmware.payment import PaymentOutcome, PaymentState, Tender
from firmware.receipt import ReceiptBuilder, receipt_lines
from firmware.recovery import recover_upi
from firmware.upi.config import UpiSection, VoiceSection
from firmware.upi.psp import PspNoReply, UpiStatus, connect_psp, mask_vpa
from firmware.upi.tender import UpiRefused, UpiTender
from firmware.voice import Announcer, Phrase, phrase_text, render_wav
from simulators.upi.psp import PAYER_VPA, PspSimulator
from ui.lang import load as load_language

try:
    from pyzbar import pyzbar
except ImportError as exc:  # the decoder's C library
    raise ImportError(f"{exc}: install the zbar library (apt-get install libzbar0)") from exc


@pytest.fixture(scope="module")
def psp_sim() -> Iterator[PspSimulator]:
    with PspSimulator(pay_delay_s=0.3, slow_pay_delay_s=1.5) as sim:
        yield sim


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "state" / "journal.sqlite", tmp_path / "state" / "journal.key")
    yield j
    j.close()


def settings(url: str, **changes: object) -> UpiSection:
    base = UpiSection(payee_vpa="pitap.demo-shop@okaxis", payee_name="Chai & Samosa Corner",
                      mcc="5814", psp_url=url, poll_interval_s=0.2, request_expiry_s=10,
                      response_timeout_s=30.0)
    return dataclasses.replace(base, **changes)


def tender(journal: Journal, tmp_path: Path, cfg: UpiSection) -> UpiTender:
    feedback = Feedback(PngSink(tmp_path / "screens", 320, 240), None, None, language="en",
                        merchant="Chai & Samosa Corner",
                        receipt_builder=ReceiptBuilder("Chai & Samosa Corner", "Mumbai",
                                                       "M1", "PITAP001"))
    return UpiTender(journal, connect_psp(cfg), feedback, cfg, "PITAP001",
                     "Chai & Samosa Corner", "Mumbai")


def screens(tmp_path: Path) -> list[str]:
    return [p.name.split("-", 1)[1][:-4] for p in sorted((tmp_path / "screens").glob("*.png"))]


def test_approved_only_after_the_psp_says_success(journal: Journal, tmp_path: Path,
                                                  psp_sim: PspSimulator) -> None:
    result = tender(journal, tmp_path, settings(psp_sim.url)).take(25000)
    assert result.outcome is PaymentOutcome.APPROVED
    p = journal.payment(result.id)
    assert (p.tender, p.state, p.amount, p.currency) == (Tender.UPI, PaymentState.APPROVED,
                                                         25000, 356)
    assert p.upi_reference == result.upi_reference and p.upi_reference in psp_sim.requests
    assert p.psp_reference.isdigit() and p.payer_vpa == mask_vpa(PAYER_VPA)
    # journalled pending before the QR was shown, approved after
    assert [h.state for h in journal.history(p.id)] == ["started", "upi_pending", "approved"]
    assert screens(tmp_path)[:2] == ["upi_qr", "approved"]


def test_the_qr_on_screen_carries_exactly_the_fields(journal: Journal, tmp_path: Path,
                                                     psp_sim: PspSimulator) -> None:
    result = tender(journal, tmp_path, settings(psp_sim.url)).take(123456)
    (png,) = sorted((tmp_path / "screens").glob("*-upi_qr.png"))
    found = pyzbar.decode(Image.open(io.BytesIO(png.read_bytes())),
                          symbols=[pyzbar.ZBarSymbol.QRCODE])
    (text,) = [symbol.data.decode("utf-8") for symbol in found]
    parts = urlsplit(text)
    assert f"{parts.scheme}://{parts.netloc}" == "upi://pay"
    assert parse_qsl(parts.query, strict_parsing=True) == [
        ("pa", "pitap.demo-shop@okaxis"), ("pn", "Chai & Samosa Corner"), ("am", "1234.56"),
        ("cu", "INR"), ("tr", result.upi_reference), ("tn", "Sale"), ("mc", "5814")]
    assert journal.payment(result.id).upi_reference == result.upi_reference


def test_the_bharatqr_form_on_screen_is_crc_checked_and_carries_our_reference(
        journal: Journal, tmp_path: Path, psp_sim: PspSimulator) -> None:
    from firmware.upi.bharatqr import crc_ok

    result = tender(journal, tmp_path, settings(psp_sim.url, qr_form="bharatqr")).take(25000)
    assert result.outcome is PaymentOutcome.APPROVED
    (png,) = sorted((tmp_path / "screens").glob("*-upi_qr.png"))
    (symbol,) = pyzbar.decode(Image.open(io.BytesIO(png.read_bytes())),
                              symbols=[pyzbar.ZBarSymbol.QRCODE])
    text = symbol.data.decode("ascii")
    assert crc_ok(text) and text.startswith("000201010212")
    assert "pitap.demo-shop@okaxis" in text and result.upi_reference in text
    assert "5303356" in text and "5406250.00" in text  # INR, 250.00


def test_a_declining_payer_is_declined_not_charged(journal: Journal, tmp_path: Path,
                                                   psp_sim: PspSimulator) -> None:
    result = tender(journal, tmp_path, settings(psp_sim.url)).take(25005)
    p = journal.payment(result.id)
    assert result.outcome is PaymentOutcome.DECLINED and p.state is PaymentState.DECLINED
    assert "payer declined" in p.reason and not p.charged and p.psp_reference == ""
    assert "declined" in screens(tmp_path)


def test_pending_then_success_is_approved(journal: Journal, tmp_path: Path,
                                          psp_sim: PspSimulator) -> None:
    result = tender(journal, tmp_path, settings(psp_sim.url)).take(25007)
    assert result.outcome is PaymentOutcome.APPROVED
    assert journal.payment(result.id).state is PaymentState.APPROVED


def test_a_payer_who_never_pays_expires_not_charged(
        journal: Journal, tmp_path: Path, psp_sim: PspSimulator) -> None:
    result = tender(journal, tmp_path, settings(psp_sim.url)).take(25008)
    p = journal.payment(result.id)
    assert result.outcome is PaymentOutcome.DECLINED and p.state is PaymentState.DECLINED
    assert "request expired" in p.reason and not p.charged


def test_the_shopkeeper_cancels_while_the_qr_is_shown(journal: Journal, tmp_path: Path,
                                                      psp_sim: PspSimulator) -> None:
    t = tender(journal, tmp_path, settings(psp_sim.url, request_expiry_s=600))

    def cancel_once_the_qr_is_up() -> bool:  # the shopkeeper presses Cancel, QR on screen
        shown = t.feedback.last_screen
        return shown is not None and shown.name == "upi_qr"

    result = t.take(25008, cancel_once_the_qr_is_up)
    p = journal.payment(result.id)
    assert result.outcome is PaymentOutcome.CANCELLED and p.state is PaymentState.CANCELLED
    assert psp_sim.requests[p.upi_reference].cancelled_at is not None  # withdrawn at the PSP
    assert not p.charged


def test_no_answer_to_the_create_then_the_status_tells(journal: Journal, tmp_path: Path,
                                                       psp_sim: PspSimulator) -> None:
    # ...96: the PSP books and pays the request, its answer to the create never comes
    result = tender(journal, tmp_path, settings(psp_sim.url, response_timeout_s=0.5)).take(25096)
    p = journal.payment(result.id)
    assert result.outcome is PaymentOutcome.APPROVED and p.state is PaymentState.APPROVED
    assert p.psp_reference  # only the PSP's SUCCESS made it approved


def test_psp_unavailable_creates_nothing(journal: Journal, tmp_path: Path) -> None:
    from simulators.demo import free_port

    result = tender(journal, tmp_path, settings(f"http://127.0.0.1:{free_port()}")).take(25000)
    p = journal.payment(result.id)
    assert result.outcome is PaymentOutcome.ERROR and p.state is PaymentState.ERROR
    assert "unavailable" in result.reason and "\n" not in result.reason
    assert "upi_qr" not in screens(tmp_path)  # no QR for a request the PSP never got


def test_bad_input_is_refused_before_anything_is_journalled(journal: Journal, tmp_path: Path,
                                                            psp_sim: PspSimulator) -> None:
    from firmware.money import CURRENCIES

    t = tender(journal, tmp_path, settings(psp_sim.url, max_amount=100000))
    with pytest.raises(UpiRefused, match="am "):
        t.take(100001)
    with pytest.raises(UpiRefused, match="INR only"):
        t.take(100, currency=CURRENCIES["EUR"])
    with pytest.raises(UpiRefused, match="not configured"):
        tender(journal, tmp_path, settings(psp_sim.url, payee_vpa="")).take(100)
    assert journal.payments() == []


def test_the_receipt_names_upi_the_payer_masked_and_both_references(
        journal: Journal, tmp_path: Path, psp_sim: PspSimulator) -> None:
    result = tender(journal, tmp_path, settings(psp_sim.url)).take(25000)
    payment = journal.payment(result.id).as_dict()
    lines = [line.text for line in receipt_lines(
        ReceiptBuilder("Chai & Samosa Corner", "Mumbai", "M1", "PITAP001"), payment,
        "customer", load_language("en"))]
    text = "\n".join(lines)
    assert "UPI" in text and mask_vpa(PAYER_VPA) in text and PAYER_VPA not in text
    assert str(payment["psp_reference"]) in text and result.upi_reference in text
    assert "STAN" not in text and "Contactless" not in text


def test_a_upi_refund_goes_back_through_the_psp(journal: Journal, tmp_path: Path,
                                                psp_sim: PspSimulator) -> None:
    t = tender(journal, tmp_path, settings(psp_sim.url))
    paid = t.take(25000)
    part = t.refund(paid.id, 10000)
    assert part.outcome is PaymentOutcome.APPROVED and part.psp_reference
    refund = journal.payment(part.id)
    assert (refund.tender, refund.txn_type.value, refund.refund_of) == (Tender.UPI, "refund",
                                                                        paid.id)
    with pytest.raises(UpiRefused, match="only 150.00 INR left"):
        t.refund(paid.id, 20000)
    rest = t.refund(paid.id)
    assert rest.outcome is PaymentOutcome.APPROVED and rest.amount == 15000
    assert journal.payment(paid.id).state is PaymentState.REFUNDED
    assert journal.refunded_amount(paid.id) == 25000
    with pytest.raises(UpiRefused, match="only 0.00 INR left"):
        t.refund(paid.id, 1)
    card = journal.new_payment("purchase", 100, 356, "PITAP001")
    with pytest.raises(UpiRefused, match="not an approved UPI payment"):
        t.refund(card, 1)


def test_recovery_ends_a_pending_request_as_the_psp_says(journal: Journal, tmp_path: Path,
                                                         psp_sim: PspSimulator) -> None:
    """A request the terminal left pending (a crash): recovery asks the PSP. Paid: approved;
    never paid: withdrawn, not charged; never reached the PSP: error, not charged."""
    from firmware.upi.link import new_reference
    from firmware.upi.psp import CollectRequest

    psp = connect_psp(settings(psp_sim.url))
    ids = {}
    for amount in (25000, 25008, 25001):
        ref = new_reference("PITAP001")
        pid = journal.new_payment("purchase", amount, 356, "PITAP001", tender=Tender.UPI,
                                  upi_reference=ref)
        journal.record(pid, PaymentState.UPI_PENDING)
        if amount != 25001:  # 25001: journalled, then the crash came before the create
            psp.create(CollectRequest(ref, amount, "pitap.demo-shop@okaxis", "Shop", "5814"))
        ids[amount] = (pid, ref)
    pid, ref = ids[25000]
    psp_sim_paid = _wait_paid(psp, ref)
    assert psp_sim_paid
    report = recover_upi(journal, psp)
    assert sorted(report.upi_settled) == sorted(p for p, _ in ids.values())
    assert journal.payment(ids[25000][0]).state is PaymentState.APPROVED
    assert journal.payment(ids[25008][0]).state is PaymentState.CANCELLED
    assert journal.payment(ids[25001][0]).state is PaymentState.ERROR
    assert recover_upi(journal, psp).upi_settled == []  # nothing more to do


def test_recovery_never_approves_while_the_psp_is_silent(journal: Journal, tmp_path: Path
                                                         ) -> None:
    from simulators.demo import free_port

    pid = journal.new_payment("purchase", 25000, 356, "PITAP001", tender=Tender.UPI,
                              upi_reference="PITAP001ABCDEF")
    journal.record(pid, PaymentState.UPI_PENDING)
    report = recover_upi(journal, connect_psp(settings(f"http://127.0.0.1:{free_port()}")))
    assert report.upi_pending == [pid] and len(report.problems) == 1
    assert journal.payment(pid).state is PaymentState.UPI_PENDING


def _wait_paid(psp: object, reference: str) -> bool:
    """Ask the PSP until the simulated payer paid (a generous ceiling, no sleeps to sync)."""
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if psp.status(reference).status is UpiStatus.SUCCESS:  # type: ignore[attr-defined]
                return True
        except PspNoReply:
            pass
        time.sleep(0.05)
    return False


class KeepingAnnouncer(Announcer):
    """The real announcer ([voice] on, ALSA's null device), keeping a copy of each WAV it
    speaks, rendered the same way (espeak-ng), for the test to measure with sox."""

    def __init__(self, settings: VoiceSection, folder: Path) -> None:
        super().__init__(settings, "en")
        self.folder, self.spoken = folder, []

    def announce(self, phrase: Phrase, paise: int = 0) -> bool:
        wav = self.folder / f"{self.language}-{phrase.value}.wav"
        render_wav(phrase_text(phrase, self.language, paise), self.language, wav)
        self.spoken.append(wav)
        return super().announce(phrase, paise)


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("soxi") is None
                    or shutil.which("aplay") is None,
                    reason="needs espeak-ng, sox and aplay (apt-get install espeak-ng sox "
                    "alsa-utils)")
@pytest.mark.parametrize("language", ["en", "hi", "it"])
def test_the_outcome_is_spoken_in_every_language(journal: Journal, tmp_path: Path,
                                                 psp_sim: PspSimulator, language: str) -> None:
    t = tender(journal, tmp_path, settings(psp_sim.url))
    voice = KeepingAnnouncer(VoiceSection(enabled=True, language=language, device="null"),
                             tmp_path)
    t.announcer = voice
    assert t.take(25000).outcome is PaymentOutcome.APPROVED
    assert t.take(25005).outcome is PaymentOutcome.DECLINED
    assert [w.name for w in voice.spoken] == [f"{language}-received.wav",
                                              f"{language}-failed.wav"]
    for wav in voice.spoken:
        seconds = float(subprocess.run(["soxi", "-D", str(wav)], capture_output=True,
                                       text=True, check=True).stdout)
        assert 0.4 < seconds < 10, (wav.name, seconds)  # a few words as spoken, not silence
        stats = subprocess.run(["sox", str(wav), "-n", "stat"], capture_output=True,
                               text=True, check=True).stderr
        rms = float(next(line for line in stats.splitlines()
                         if line.startswith("RMS     amplitude")).split(":")[1])
        assert rms > 0.02, (wav.name, rms)  # speech, not silence
