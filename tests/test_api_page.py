"""The cashier page in a real browser: headless Chromium (the machine's chromium and
chromium-driver, through Selenium) on a phone-sized window drives the page served by the terminal
API through whole payments: the key typed once (kept in the browser), an amount keyed, the live
state from the events, the receipt, a void, a cancel and today's totals; a simulated phone taps
on the terminal's udp: reader and the host simulator authorizes. On an INR terminal with [upi],
the "UPI" button takes a payment by QR, the simulated PSP's payer paying when the test moves its
clock."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from api_support import Running, StoppedClock
from run_support import wait_until

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT_S = 90

pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(DRIVER)),
    reason="needs chromium and chromium-driver (apt; .ci/run installs them)")


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=390,844"):  # a phone's screen
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def text_of(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def wait_text(driver, element_id: str, wanted: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_S).until(lambda d: wanted in text_of(d, element_id),
                                        f"#{element_id} never showed {wanted!r}")


def click(driver, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()


def type_into(driver, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def test_the_page_takes_voids_and_cancels_payments(api: Running, browser, phone,
                                                   host_sim) -> None:
    driver = browser
    driver.get(api.base + "/")
    type_into(driver, "key", api.key)
    click(driver, "save-key")
    wait_text(driver, "link", "live")  # the events stream is open
    driver.refresh()  # the key stays in the browser: not asked again
    wait_text(driver, "link", "live")
    assert not driver.find_element("id", "upi").is_displayed()  # a EUR terminal: cards only

    phone("visa-online", api.cfg.reader.path)
    type_into(driver, "amount", "12.50")
    type_into(driver, "reference", "page-1")
    click(driver, "pay")
    wait_text(driver, "state", "Approved")
    assert "12.50 EUR: approved" in text_of(driver, "last-summary")
    wait_text(driver, "totals", "1 sales 12.50 EUR")

    click(driver, "receipt-btn")
    wait_text(driver, "receipt", "EUR 12.50")
    assert "CUSTOMER COPY" in text_of(driver, "receipt")

    click(driver, "void")
    wait_text(driver, "state", "Voided")
    wait_text(driver, "totals", "0 sales 0.00 EUR")

    type_into(driver, "amount", "3.00")
    click(driver, "pay")  # nobody taps
    wait_text(driver, "state", "Waiting for card")
    click(driver, "cancel")
    wait_text(driver, "state", "Cancelled")

    outcomes = [(p.amount, str(p.outcome), p.state.value) for p in api.terminal.journal.payments()]
    assert outcomes == [(1250, "approved", "voided"), (300, "cancelled", "cancelled")]
    approved = [r for r in host_sim.ledger.transactions() if r["approved"]]
    assert len(approved) == 1


def test_a_bad_amount_is_said_on_the_page_and_nothing_starts(api: Running, browser) -> None:
    driver = browser
    driver.get(api.base + "/")
    type_into(driver, "key", api.key)
    click(driver, "save-key")
    wait_text(driver, "link", "live")
    type_into(driver, "amount", "12.505")
    click(driver, "pay")
    wait_text(driver, "message", "amount:")
    assert api.terminal.journal.payments() == []


def test_the_upi_button_takes_a_payment_by_qr(upi_api: Running, browser, upi_psp,
                                              psp_clock: StoppedClock) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(upi_api.base + "/")
    type_into(driver, "key", upi_api.key)
    click(driver, "save-key")
    wait_text(driver, "link", "live")
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element("id", "upi").is_displayed(),
                                        "no UPI button on an INR terminal with [upi]")
    type_into(driver, "amount", "250.00")
    click(driver, "upi")
    wait_text(driver, "state", "Scan the QR on the terminal")
    assert wait_until(lambda: len(upi_psp.requests) == 1, seconds=WAIT_S)  # the PSP holds it
    psp_clock.payer_acts()  # the payer scans and pays
    wait_text(driver, "state", "Approved")
    summary = text_of(driver, "last-summary")
    assert "250.00 INR: approved UPI" in summary and "@okicici" in summary
    assert not driver.find_element("id", "void").is_enabled()  # refunded, never voided
    (paid,) = upi_api.terminal.journal.payments()
    assert (paid.tender.value, paid.state.value) == ("upi", "approved")
