"""What the customer and the shopkeeper see and hear during a payment: screens on the configured
display, the four contactless status lights and the buzzer's tones, receipts.

`Feedback.from_config(cfg)` wires the display (drivers.display), lights and buzzer
(drivers.gpio) and the printer (drivers.printer) from the configuration; the terminal loop calls
one method a state: ready, amount_entry, present_card, processing, card_read, approved,
declined, not_charged, message, receipt, settlement, closed, close. The light and tone sequence
follows the shop terminals' (EMV Contactless Book A) convention:

    ready / amount / present card   first light on              (ready to read)
    processing                      first two lights            (card in the field)
    card read                       all four lights + success   (card may leave)
    approved                        lights off (+ success tone when no card-read tone came)
    declined                        lights off + alert tone
    not charged (host trouble)      middle two lights + attention tone (three short beeps)
    see phone / one card / again    first light + alert tone    (present again)

A refund says so on every customer screen: `present_card(..., txn_type)` remembers the kind
of the payment for the screens that follow it (until `ready`).

Listeners (`listen`): every screen shown is told, by its name and the payment it belongs to
(set by `present_card` / `partial`, until `ready`), to whoever listens, and so is whatever the
terminal `emit`s that is no screen (a payment's outcome); the terminal API's events
(firmware.api.events) come from here, so keypad and API payments are told alike.

A failing display, buzzer or printer is logged and never stops or changes a payment.
Card numbers are shown by their last four digits only; nothing here logs card data.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable

from drivers.display import Display, Spi, open_display
from drivers.gpio import Buzzer, Gpio, GpioUnavailable, StatusLights, gpio_module
from drivers.keypad import KEY_NAMES, KeypadSettings
from drivers.printer import Printer, PrinterProblem, open_printer
from firmware.config import Config, ConfigError
from firmware.money import BatchTotals, Money
from firmware.payment import TxnType
from firmware.reasons import Reason
from firmware.receipt import ReceiptBuilder, paid_amount, receipt_qr_payload, render_receipt
from ui import screens
from ui.lang import load as load_language

log = logging.getLogger(__name__)

ALERT_MESSAGES = {"see_phone", "one_card_only", "try_again"}
VOID_MESSAGES = {"voided", "void_refused"}  # labelled "Void", whatever the last payment was
# "Not charged": neither the first light (ready to read) nor all four (card read) nor none.
NOT_CHARGED_LIGHTS = (False, True, True, False)
# Ready, with payments stored for the bank ([offline]): the first light and the last.
STORED_LIGHTS = (True, False, False, True)

# A listener: (screen or event name, the payment it belongs to or None, more data).
Listener = Callable[[str, "int | None", dict[str, object]], None]


class Feedback:
    """Screens, lights, tones and receipts for one terminal."""

    def __init__(self, display: Display, lights: StatusLights | None, buzzer: Buzzer | None,
                 *, language: str = "en", merchant: str = "",
                 printer: Printer | None = None, receipt_builder: ReceiptBuilder | None = None,
                 clock: Callable[[], dt.datetime] | None = None, gpio: Gpio | None = None) -> None:
        self.display = display
        self.lights = lights
        self.buzzer = buzzer
        self.printer = printer
        self.receipt_builder = receipt_builder
        self.gpio = gpio  # the RPi.GPIO-like module the lights and buzzer use (tests read it)
        self.lang = load_language(language)
        self.merchant = merchant
        self.clock = clock or dt.datetime.now
        self.last_screen: screens.Screen | None = None
        self.recent: deque[screens.Screen] = deque(maxlen=32)  # the last screens shown
        self.last_money: Money | None = None
        # of the payment in progress: its screens name a refund
        self.txn_type: TxnType = TxnType.PURCHASE
        self._tone_this_payment = False
        self.key_legends: dict[str, str] | None = None  # None: a desktop keyboard's
        self.payment_id: int | None = None  # the journal payment the screens are about
        self.listeners: list[Listener] = []

    @classmethod
    def from_config(cls, cfg: Config, gpio: Gpio | None = None, spi: Spi | None = None,
                    sleep: Callable[[float], None] | None = None) -> Feedback:
        """Display, lights, buzzer and printer as [display], [gpio] and [printer] say.
        `gpio` / `spi` put a simulator below the drivers (tests, the panel emulator); `sleep`
        times the tones (tests pass a simulated clock's)."""
        if gpio is None:
            try:
                gpio = gpio_module(cfg.gpio.backend)
            except GpioUnavailable as exc:
                raise ConfigError(f"{cfg.source}: gpio: {exc}") from None
        display = open_display(cfg.display, cfg.state_dir, gpio=gpio, spi=spi)
        lights = StatusLights(gpio, cfg.gpio.led_pins, cfg.gpio.active_high)
        buzzer = Buzzer(gpio, cfg.gpio.buzzer_pin, cfg.gpio.active_high,
                        pwm=cfg.gpio.buzzer_pwm, sleep=sleep or time.sleep)
        try:
            load_language(cfg.terminal.language)
        except ValueError as exc:
            raise ConfigError(f"{cfg.source}: terminal.language: {exc}") from None
        printer, builder = _printer_from_config(cfg)
        feedback = cls(display, lights, buzzer, language=cfg.terminal.language,
                       merchant=cfg.terminal.merchant_name,
                       printer=printer, receipt_builder=builder, gpio=gpio)
        feedback.key_legends = key_legends(cfg.keypad)
        return feedback

    # ---- plumbing --------------------------------------------------------------------
    def _view(self) -> screens.View:
        lit = self.lights.lit if self.lights is not None else 0
        return screens.View(self.display.width, self.display.height, self.lang,
                            merchant=self.merchant, lights=lit,
                            clock=self.clock().strftime("%H:%M"))

    def listen(self, listener: Listener) -> None:
        """Tell `listener` every screen shown and every event emitted (on the caller's thread:
        it must be quick and never block)."""
        self.listeners.append(listener)

    def emit(self, name: str, payment_id: int | None = None, **data: object) -> None:
        """Tell the listeners `name` (a screen's name, or an event such as "outcome")."""
        for listener in list(self.listeners):
            try:
                listener(name, payment_id, data)
            except Exception:
                log.exception("feedback listener failed")

    def _show(self, render: Callable[[screens.View], screens.Screen]) -> screens.Screen | None:
        try:
            screen = render(self._view())
        except Exception:
            log.exception("display failed; the payment goes on")
            return None
        self.emit(screen.name, self.payment_id)
        try:
            self.display.show(screen.image, screen.name)
        except Exception:
            log.exception("display failed; the payment goes on")
            return None
        self.last_screen = screen
        self.recent.append(screen)
        return screen

    def _lights(self, count: int) -> None:
        if self.lights is None:
            return
        try:
            self.lights.show(count)
        except Exception:
            log.exception("status lights failed")

    def _light_pattern(self, lit: tuple[bool, ...]) -> None:
        if self.lights is None:
            return
        try:
            self.lights.pattern(lit)
        except Exception:
            log.exception("status lights failed")

    def _tone(self, tone: str) -> None:
        if self.buzzer is None:
            return
        try:
            self.buzzer.play(tone)
        except Exception:
            log.exception("buzzer failed")

    # ---- the states ------------------------------------------------------------------
    def ready(self, stored_count: int = 0, stored: Money | None = None,
              declined_late: int = 0) -> None:
        """The ready screen; with payments stored for the bank ([offline]) their count and
        total, and how many the bank declined after the fact, for the shopkeeper (and the
        first and last lights instead of the first alone)."""
        if stored_count:
            self._light_pattern(STORED_LIGHTS)
        else:
            self._lights(1)
        self.last_money = None
        self.txn_type = TxnType.PURCHASE
        self.payment_id = None
        self._show(lambda v: screens.ready_screen(v, stored_count, stored, declined_late))

    def amount_entry(self, money: Money, txn_type: TxnType = TxnType.PURCHASE) -> None:
        self._lights(1)
        keys = self.key_legends
        self._show(lambda v: screens.amount_entry_screen(v, money, txn_type, keys))

    def void_entry(self, digits: str) -> None:
        """The shopkeeper keys the number of the payment to void."""
        self._lights(1)
        keys = self.key_legends
        self._show(lambda v: screens.void_entry_screen(v, digits, keys))

    def tip_prompt(self, amount: Money, presets: list[tuple[int, Money]]) -> None:
        """[tips] mode = "prompt": the customer chooses a tip before the tap (firmware.tips's
        keys: 1..3 the presets, another amount, no tip)."""
        from firmware.tips import CUSTOM_KEY, NO_TIP_KEY

        self._lights(1)
        self._show(lambda v: screens.tip_prompt_screen(v, amount, presets, CUSTOM_KEY,
                                                       NO_TIP_KEY))

    def tip_entry(self, tip: Money, most: Money, too_much: bool = False) -> None:
        """Another tip amount being keyed, at most `most`."""
        self._lights(1)
        keys = self.key_legends
        self._show(lambda v: screens.tip_entry_screen(v, tip, most, too_much, keys))

    def present_card(self, money: Money, txn_type: TxnType = TxnType.PURCHASE,
                     payment_id: int | None = None) -> None:
        """Waiting for a tap; `payment_id` the journal payment (told to the listeners)."""
        self.payment_id = payment_id
        self._lights(1)
        self._tone_this_payment = False
        self.txn_type = txn_type
        self.last_money = money
        self._show(lambda v: screens.present_card_screen(v, money, txn_type))

    def partial(self, paid: Money, total: Money, left: Money,
                payment_id: int | None = None) -> None:
        """A partial approval: "Approved X of Y, Z left", and a tap wanted for the rest."""
        self.payment_id = payment_id
        self._lights(1)
        self._tone_this_payment = False
        self.txn_type = TxnType.PURCHASE
        self.last_money = left
        self._show(lambda v: screens.partial_screen(v, paid, total, left))

    def processing(self) -> None:
        self._lights(2)
        money, kind = self.last_money, self.txn_type
        self._show(lambda v: screens.processing_screen(v, money, kind))

    def card_read(self) -> None:
        self._lights(4)
        self._tone("success")
        self._tone_this_payment = True
        kind = self.txn_type
        self._show(lambda v: screens.card_read_screen(v, kind))

    def approved(self, money: Money, auth_code: str = "", masked_pan: str = "", scheme: str = "",
                 offline: bool = False) -> None:
        if not self._tone_this_payment:
            self._tone("success")
        self._tone_this_payment = False
        self._lights(0)
        kind = self.txn_type
        self._show(lambda v: screens.approved_screen(v, money, auth_code, masked_pan, scheme,
                                                     kind, offline))

    def declined(self, reason: Reason | None = None, money: Money | None = None,
                 detail: str = "") -> None:
        """`reason` the code the screen translates; `detail` the free text it shows for a
        reason it has no words for."""
        self._tone("alert")
        self._tone_this_payment = False
        self._lights(0)
        money = money if money is not None else self.last_money
        kind = self.txn_type
        self._show(lambda v: screens.declined_screen(v, reason or "", money, kind, detail))

    def not_charged(self, reason: Reason | None = None, detail: str = "") -> None:
        """The host never decided (unreachable, or no reply and reversed): nothing charged,
        try again or pay another way. Amber, not the red of a decline, with its own tone."""
        self._tone("attention")
        self._tone_this_payment = False
        self._light_pattern(NOT_CHARGED_LIGHTS)
        money, kind = self.last_money, self.txn_type
        self._show(lambda v: screens.not_charged_screen(v, reason or "", money, kind, detail))

    def message(self, kind: str, detail: str = "") -> None:
        """see_phone, one_card_only, try_again (present again), no_card, out_of_service,
        cancelled, voided, void_refused (closed: see `closed`)."""
        if kind not in screens.MESSAGES:
            log.warning("unknown message kind %r shown as try_again", kind)
            kind = "try_again"
        if kind in ALERT_MESSAGES:
            self._tone("alert")
            self._lights(1)
        else:
            self._lights(0)
        txn_type: str = "void" if kind in VOID_MESSAGES else self.txn_type
        self._show(lambda v: screens.message_screen(v, kind, detail, txn_type))

    def upi_qr(self, payload: str, money: Money, payment_id: int | None = None) -> None:
        """A UPI payment's dynamic QR with its amount, while the PSP is asked whether the payer
        paid (firmware.upi.tender): the first light, as while waiting for a card. `payment_id`
        the journal payment (told to the listeners)."""
        self.payment_id = payment_id
        self._lights(1)
        self._tone_this_payment = False
        self.txn_type = TxnType.PURCHASE
        self.last_money = money
        self._show(lambda v: screens.upi_qr_screen(v, payload, money))

    def service_api(self, url: str, fingerprint: str) -> None:
        """The terminal API's service screen: its address and certificate fingerprint."""
        self._lights(0)
        self._show(lambda v: screens.service_api_screen(v, url, fingerprint))

    def closed(self) -> None:
        """The service stops: lights off and "Closed", so nobody taps a terminal that is not
        listening (shown last, before `close`)."""
        self._lights(0)
        self.txn_type = TxnType.PURCHASE
        self._show(lambda v: screens.message_screen(v, "closed"))

    def settlement(self, totals: BatchTotals, agreed: bool | None = None) -> None:
        """The end-of-day report of a batch's totals; `agreed`: whether the host's matched."""
        when = self.clock().strftime("%d/%m/%Y %H:%M")
        self._show(lambda v: screens.settlement_screen(v, totals, agreed, when))

    def receipt(self, payment: dict, qr: bool = True, reason: Reason | None = None) -> str:
        """Print merchant and customer copies, or show a QR e-receipt when there is no printer
        (or it fails: then its trouble is shown too); with `qr` False (nothing was charged:
        the screen says what to do) no QR; `reason` why it was not approved (a code).
        Returns "printed", "qr", "" or the problem.
        Never raises: a receipt never changes the payment."""
        builder = self.receipt_builder
        problem = ""
        if self.printer is not None and builder is not None:
            try:
                paper_lang = self.lang if self.lang.printable else load_language("en")
                for copy in ("merchant", "customer"):
                    render_receipt(self.printer, builder, payment, copy, paper_lang, reason)
                return "printed"
            except Exception as exc:  # printer offline, out of paper, cable...
                kind = exc.kind if isinstance(exc, PrinterProblem) else ""
                problem = {"offline": self.lang.t("printer_offline"),
                           "no_paper": self.lang.t("printer_no_paper")}.get(kind, str(exc))
                log.warning("receipt not printed: %s", exc)
        if not qr:
            return problem
        try:
            payload = receipt_qr_payload(builder, payment, self.lang, reason)
            money = Money.of(paid_amount(payment), int(payment.get("currency", 0)))
            note = self.lang.t("printer_problem", problem=problem) if problem else ""
            outcome = str(payment.get("outcome") or "")
            kind = TxnType(payment.get("txn_type") or TxnType.PURCHASE)
            self._show(lambda v: screens.receipt_qr_screen(v, payload, money, note, outcome,
                                                           kind))
        except Exception:
            log.exception("e-receipt QR not shown")
        return problem or "qr"

    def wait(self) -> None:
        """Let queued tones finish (tests, shutdown)."""
        if self.buzzer is not None:
            self.buzzer.wait()

    def close(self) -> None:
        for part in (self.buzzer, self.lights, self.display, self.printer):
            if part is None:
                continue
            try:
                part.close()
            except Exception:
                log.exception("closing %s failed", type(part).__name__)


def key_legends(keypad: KeypadSettings) -> dict[str, str] | None:
    """Which legend is OK / clear / cancel on the configured keypad (None for a keyboard)."""
    if keypad.backend == "matrix":
        legends = [ch for row in keypad.layout for ch in row]
    elif keypad.backend == "buttons":
        legends = list(keypad.button_keys)
    else:
        return None
    found: dict[str, str] = {}
    for legend in legends:
        meaning = KEY_NAMES.get(legend)
        if meaning in ("enter", "clear", "cancel"):
            found.setdefault(meaning, legend)
    return found


def _printer_from_config(cfg: Config) -> tuple[Printer | None, ReceiptBuilder]:
    """(printer, receipt builder) from [printer]; (None, builder) when there is no printer."""
    builder = ReceiptBuilder.from_config(cfg)
    return open_printer(cfg.printer, cfg.state_dir), builder
