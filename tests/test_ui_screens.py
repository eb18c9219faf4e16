"""Screens: every screen at every layout and language shows its texts whole and inside the panel."""

from __future__ import annotations

import itertools
import re

import pytest
from PIL import Image

from firmware.money import CURRENCIES, BatchTotals, Money
from firmware.void import VoidProblem
from ui import screens
from ui.lang import available, load
from ui.money import format_money
from ui.theme import LAYOUTS, has_glyph

EUR = Money.of(1250, "EUR")


def all_screens(view: screens.View) -> list[screens.Screen]:
    return [
        screens.ready_screen(view),
        screens.ready_screen(view, 12, Money.of(4567800, "EUR"), 3),  # [offline]: stored
        screens.amount_entry_screen(view, Money.of(123456, "EUR")),
        screens.amount_entry_screen(view, Money.of(500, "EUR"), "refund"),
        screens.present_card_screen(view, EUR),
        screens.present_card_screen(view, EUR, "refund"),
        screens.processing_screen(view, EUR),
        screens.card_read_screen(view),
        screens.approved_screen(view, EUR, "123456", "476173******0010", "visa"),
        screens.declined_screen(view, "insufficient_funds", EUR),
        screens.declined_screen(view, detail="fDDA signature invalid on the card's data"),
        screens.approved_screen(view, EUR, "Y1", "476173******0010", "visa", offline=True),
        screens.not_charged_screen(view, "host_unavailable", EUR),
        screens.not_charged_screen(view, "no_reply"),
        screens.not_charged_screen(view, "offline_limit", EUR),
        *(screens.message_screen(view, kind) for kind in screens.MESSAGES),
        screens.settlement_screen(view, BatchTotals(7, CURRENCIES["EUR"], 128, 1234567, 3, 4500),
                                  True, "27/11/2026 18:00"),
        screens.receipt_qr_screen(view, "PITAP001 000123 EUR 12.50 APPROVED 123456", EUR),
        screens.receipt_qr_screen(view, "PITAP001 000124", Money.of(99999999, "EUR"),
                                  view.lang.t("printer_problem", problem=view.lang.t(
                                      "printer_no_paper")), "approved"),
        screens.printer_problem_screen(view, view.lang.t("printer_no_paper")),
        screens.service_api_screen(view, "https://192.168.100.200:8443/", ":".join(
            f"{b:02X}" for b in range(200, 232))),
        screens.service_api_screen(view, "http://127.0.0.1:8080/", ""),
        screens.service_api_screen(view, "", ""),
        *refund_screens(view),
        screens.declined_screen(view, "pin_needed", Money.of(4065, "EUR")),
        screens.void_entry_screen(view, "123456789"),
        *(screens.message_screen(view, kind, view.lang.t(f"void_refused_{why}"), "void")
          for kind in ("voided", "void_refused") for why in VOID_PROBLEMS),
        screens.partial_screen(view, Money.of(155555, "EUR"), Money.of(311110, "EUR"),
                               Money.of(155555, "EUR")),
        screens.tip_prompt_screen(view, Money.of(1234567, "EUR"), [
            (10, Money.of(123457, "EUR")), (15, Money.of(185185, "EUR")),
            (20, Money.of(246913, "EUR"))]),
        screens.tip_entry_screen(view, Money.of(123456, "EUR"), Money.of(308641, "EUR")),
        screens.tip_entry_screen(view, Money.of(999999, "EUR"), Money.of(308641, "EUR"),
                                 too_much=True),
        screens.declined_screen(view, "upi_failed", Money.of(25000, "INR")),
        screens.upi_qr_screen(view, "upi://pay?pa=shop@ybl&pn=Shop&am=123456.78&cu=INR",
                              Money.of(12345678, "INR")),
    ]


VOID_PROBLEMS = [p.value for p in VoidProblem]


def refund_screens(view: screens.View) -> list[screens.Screen]:
    """What the customer sees during a refund: every one of them must say it is a refund."""
    refund = Money.of(500, "EUR")
    return [
        screens.present_card_screen(view, refund, "refund"),
        screens.processing_screen(view, refund, "refund"),
        screens.card_read_screen(view, "refund"),
        screens.approved_screen(view, refund, "123456", "476173******0010", "visa", "refund"),
        screens.declined_screen(view, "insufficient_funds", refund, "refund"),
        screens.not_charged_screen(view, "host_unavailable", refund, "refund"),
        *(screens.message_screen(view, kind, txn_type="refund") for kind in screens.MESSAGES),
        screens.receipt_qr_screen(view, "PITAP001 000125", refund, outcome="approved",
                                  txn_type="refund"),
    ]


def colours(image: Image.Image) -> set[tuple[int, int, int]]:
    return {colour for _count, colour in image.getcolors(maxcolors=1 << 20)}


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize(("size", "code"), list(itertools.product(LAYOUTS, available())))
def test_every_text_fits_whole_inside_the_panel(size: tuple[int, int], code: str) -> None:
    w, h = size
    view = screens.View(w, h, load(code), merchant="Pitap Demo Shop", lights=1, clock="14:05")
    for screen in all_screens(view):
        assert screen.image.size == (w, h)
        for drawn in screen.texts:
            assert not drawn.truncated, (screen.name, drawn)
            left, top, right, bottom = drawn.box
            assert left >= 0 and right <= w and top >= 0 and bottom <= h, (screen.name, drawn)
            assert drawn.size >= 9, (screen.name, drawn)  # legible on a 2" panel
            missing = [ch for ch in drawn.text if not has_glyph(drawn.font, ch)]
            assert not missing, (screen.name, drawn.font, missing)  # no "tofu" boxes
        for a, b in itertools.combinations(screen.texts, 2):
            assert not overlaps(a.box, b.box), (screen.name, a, b)


@pytest.mark.parametrize("size", LAYOUTS)
def test_screens_say_what_a_customer_needs(size: tuple[int, int]) -> None:
    view = screens.View(*size, load("en"), merchant="Corner Shop")
    approved = screens.approved_screen(view, EUR, "A1B2C3", "476173******0010", "visa")
    for text in ("Approved", "€12.50", "A1B2C3", "VISA", "•••• 0010"):
        assert approved.shows(text), text
    assert not any("476173" in s for s in approved.strings)  # last four only on screen
    present = screens.present_card_screen(view, EUR)
    assert present.shows("€12.50") and present.shows("Present card or phone")
    declined = screens.declined_screen(view, "insufficient_funds")
    assert declined.shows("Declined") and declined.shows("Insufficient funds")
    assert screens.message_screen(view, "see_phone").shows("See phone")
    assert screens.message_screen(view, "one_card_only").shows("Present one card only")
    assert screens.message_screen(view, "try_again").shows("Try again")
    assert screens.card_read_screen(view).shows("Card read OK")
    assert screens.message_screen(view, "out_of_service", "Bank not reachable").shows(
        "Bank not reachable")
    assert screens.ready_screen(view).shows("Corner Shop")


def test_hindi_screens_are_in_devanagari_with_indian_amounts() -> None:
    view = screens.View(320, 240, load("hi"))
    approved = screens.approved_screen(view, Money.of(12345600, "INR"), "123456")
    assert approved.shows("स्वीकृत") and approved.shows("₹1,23,456.00")
    fonts = {t.text: t.font for t in approved.texts}
    assert fonts["स्वीकृत"] == "Lohit-Devanagari.ttf"
    assert fonts["₹1,23,456.00"].startswith("DejaVuSans")  # amounts in one face everywhere


def test_italian_screens_are_in_italian() -> None:
    view = screens.View(320, 240, load("it"))
    approved = screens.approved_screen(view, Money.of(123456, "EUR"), "123456")
    assert approved.shows("Approvata") and approved.shows("1.234,56 €")
    assert screens.declined_screen(view, "insufficient_funds").shows("Fondi insufficienti")
    assert screens.message_screen(view, "see_phone").shows("Guardare il telefono")


def test_present_card_draws_the_contactless_symbol_in_the_middle() -> None:
    view = screens.View(320, 240, load("en"))
    image = screens.present_card_screen(view, EUR).image
    accent = view.theme.accent
    assert accent in colours(image.crop((100, 90, 220, 170)))
    idle = screens.ready_screen(view).image.crop((100, 90, 220, 170))
    assert accent not in colours(idle)  # idle: the symbol is greyed


def test_outcome_colours_are_green_and_red() -> None:
    view = screens.View(320, 240, load("en"))
    ok = colours(screens.approved_screen(view, EUR).image)
    ko = colours(screens.declined_screen(view, "x").image)
    assert view.theme.success in ok and view.theme.failure not in ok
    assert view.theme.failure in ko and view.theme.success not in ko


def test_header_lights_mirror_the_status_lights() -> None:
    dark = screens.ready_screen(screens.View(320, 240, load("en"), lights=0)).image
    lit = screens.ready_screen(screens.View(320, 240, load("en"), lights=4)).image
    on = screens.View().theme.light_on
    assert on not in colours(dark.crop((200, 0, 320, 30)))
    assert on in colours(lit.crop((200, 0, 320, 30)))


@pytest.mark.parametrize(
    ("money", "code", "text"),
    [
        (Money.of(1250, "EUR"), "en", "€12.50"),
        (Money.of(1250, "EUR"), "it", "12,50 €"),
        (Money.of(123456789, "EUR"), "en", "€1,234,567.89"),
        (Money.of(123456789, "EUR"), "it", "1.234.567,89 €"),
        (Money.of(5, "USD"), "en", "$0.05"),
        (Money.of(1200, "JPY"), "en", "¥1,200"),
        (Money.of(1250, "KWD"), "en", "KWD 1.250"),
        (Money.of(1250, "CHF"), "it", "12,50 CHF"),
        (Money.of(-1250, "GBP"), "en", "-£12.50"),
        (Money.of(99900, "INR"), "en", "₹999.00"),
    ],
)
def test_amounts_follow_the_currency_exponent_and_the_language(
        money: Money, code: str, text: str) -> None:
    assert format_money(money, load(code)) == text


def test_indian_grouping_for_a_language_that_asks_for_it() -> None:
    from dataclasses import replace

    from ui.money import group

    assert group("123456789", ",", (3, 2)) == "12,34,56,789"
    indian = replace(load("en"), grouping=(3, 2))
    assert format_money(Money.of(1234567800, "INR"), indian) == "₹1,23,45,678.00"


def test_every_language_has_every_text_with_the_same_placeholders() -> None:
    english = load("en").text
    for code in available():
        lang = load(code)
        assert set(lang.text) == set(english), code
        for key, value in english.items():
            assert set(re.findall(r"{\w+}", lang.text[key])) == set(re.findall(r"{\w+}", value))


# Latin words a Hindi screen writes as Indian shops and banks do (everything else in Devanagari).
# UPI, QR, AID and key names; and on the service screen the technical names a technician reads
# out as they are (API, SHA-256, HTTP, Pi)
LATIN_IN_HINDI = {"UPI", "QR", "AID", "F2", "B", "API", "SHA", "HTTP", "Pi"}


def test_no_hindi_text_is_left_in_english() -> None:
    """Outside its {placeholders}, a Hindi text has no Latin word but LATIN_IN_HINDI's."""
    for key, value in load("hi").text.items():
        words = set(re.findall(r"[A-Za-z]\w*", re.sub(r"{\w+}", "", value)))
        assert words <= LATIN_IN_HINDI, (key, value)


def test_unknown_language_and_message_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="xx"):
        load("xx")
    with pytest.raises(ValueError, match="hello"):
        screens.message_screen(screens.View(), "hello")


def test_see_phone_without_detail_gives_the_standard_hint() -> None:
    screen = screens.message_screen(screens.View(), "see_phone")
    assert screen.strings.count("See phone") == 1
    assert screen.shows("Follow the instructions")


@pytest.mark.parametrize("code", available())
def test_a_reason_is_a_code_and_free_text_is_never_read_for_one(code: str) -> None:
    """The host's or kernel's words are shown as given, never mistaken for a reason: only the
    code picks a translation."""
    lang = load(code)
    view = screens.View(320, 240, lang)
    for reason in ("insufficient_funds", "expired", "host_unavailable"):
        assert screens.declined_screen(view, reason).shows(lang.t(f"reason_{reason}"))
    words = "issuer says: not expired, funds not insufficient"
    shown = screens.declined_screen(view, detail=words)
    assert shown.shows("Issuer says: not expired")
    assert not any(shown.shows(lang.t(f"reason_{r}")) for r in ("expired", "insufficient_funds"))
    assert screens.not_charged_screen(view, detail="host unavailable: refused").shows(
        "Host unavailable: refused")


@pytest.mark.parametrize("code", available())
def test_every_refund_screen_says_refund_in_every_language(code: str) -> None:
    lang = load(code)
    view = screens.View(320, 240, lang)
    word = lang.t("refund")
    for screen in refund_screens(view):
        assert any(word in text for text in screen.strings), (code, screen.name, screen.strings)
    purchase = screens.approved_screen(view, EUR, "123456")
    assert not any(word in text for text in purchase.strings)


def test_refund_outcomes_and_hints_speak_of_refunding() -> None:
    view = screens.View(320, 240, load("en"))
    assert screens.approved_screen(view, EUR, txn_type="refund").shows("Refund approved")
    assert screens.declined_screen(view, "", EUR, "refund").shows("Refund declined")
    cancelled = screens.message_screen(view, "cancelled", txn_type="refund")
    assert cancelled.shows("Nothing was refunded") and not cancelled.shows("charged")
    assert screens.message_screen(view, "cancelled").shows("Nothing was charged")


def test_host_trouble_is_amber_and_says_nothing_was_charged_not_declined() -> None:
    view = screens.View(320, 240, load("en"))
    screen = screens.not_charged_screen(view, "no_reply", EUR)
    assert screen.shows("Not charged") and screen.shows("Try again or use another payment")
    assert screen.shows("No reply from bank") and not screen.shows("Declined")
    found = colours(screen.image)
    assert view.theme.warning in found and view.theme.failure not in found
    refund = screens.not_charged_screen(view, "host_unavailable", EUR, "refund")
    assert refund.shows("Refund not made") and not refund.shows("charged")


def test_an_offline_approval_shows_approved_offline_instead_of_y1() -> None:
    view = screens.View(320, 240, load("en"))
    screen = screens.approved_screen(view, EUR, "Y1", "476173******0010", "visa", offline=True)
    assert screen.shows("Approved offline") and not screen.shows("Y1")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_receipt_qr_decodes_to_the_receipt(layout: tuple[int, int]) -> None:
    from pyzbar import pyzbar

    receipt = "Pitap Demo Shop\nTerminal PITAP001\n02/12/2026 07:05\nTotal EUR 12.50\nApproved"
    view = screens.View(*layout, load("en"), merchant="Pitap Demo Shop")
    screen = screens.receipt_qr_screen(view, receipt, EUR, "Printer: out of paper", "approved")
    (found,) = pyzbar.decode(screen.image)
    assert found.data.decode() == receipt


def test_only_ui_qr_makes_qr_codes() -> None:
    from pathlib import Path

    root = Path(screens.__file__).resolve().parents[1]
    makers = sorted(str(p.relative_to(root)) for top in ("firmware", "drivers", "ui")
                    for p in (root / top).rglob("*.py")
                    if re.search(r"^\s*(import|from) qrcode\b", p.read_text(), re.MULTILINE))
    assert makers == ["ui/qr.py"]


def test_the_api_service_screen_shows_the_fingerprint_grouped_to_read_aloud(tmp_path) -> None:
    """The service screen (enter on the ready screen, `pitap run`) rendered as a PNG by the
    terminal's display: the API's address and every byte of the SHA-256 fingerprint, four bytes
    a group, in each language."""
    import hashlib

    from PIL import Image

    from drivers.display import PngSink
    from firmware.feedback import Feedback

    digest = hashlib.sha256(b"a terminal's certificate").digest()
    fingerprint = ":".join(f"{b:02X}" for b in digest)
    for code in available():
        folder = tmp_path / code
        feedback = Feedback(PngSink(folder, 320, 240), None, None, language=code)
        feedback.service_api("https://192.168.1.20:8443/", fingerprint)
        shown = feedback.last_screen
        assert shown is not None and shown.name == "service_api"
        text = " ".join(t.text for t in shown.texts)
        assert "https://192.168.1.20:8443/" in text
        assert text.replace(" ", "").count(digest.hex().upper()[:8]) == 1
        assert "".join(screens.fingerprint_groups(fingerprint)).replace(" ", "") == \
            digest.hex().upper()
        for group in screens.fingerprint_groups(fingerprint):
            assert group in text and len(group) == 9  # "ABCD EF01"
        (png,) = folder.glob("*-service_api.png")
        assert Image.open(png).size == (320, 240)
        feedback.close()
