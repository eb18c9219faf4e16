"""Feedback: the light and tone sequence of approved and declined payments, screens as PNG files,
and a broken display that never stops a payment. Pins are recorded by the RPi.GPIO fake."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from firmware.config import load_config
from firmware.feedback import Feedback
from firmware.money import CURRENCIES, BatchTotals, Money
from simulators.gpio_fake import FakeGPIO, PinEvent


class SimClock:
    """Simulated time: `sleep` advances it at once, so a 500 ms tone takes no wall time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


@pytest.fixture
def terminal(tmp_path: Path):
    cfg = load_config()
    cfg = dataclasses.replace(cfg, terminal=dataclasses.replace(
        cfg.terminal, state_dir=str(tmp_path)))
    clock = SimClock()
    gpio = FakeGPIO(clock=clock)
    fb = Feedback.from_config(cfg, gpio=gpio, sleep=clock.sleep)
    yield fb, gpio, cfg
    fb.close()


EUR1 = Money.of(100, "EUR")


def run(fb: Feedback, gpio: FakeGPIO, pins: list[int], *steps) -> list[list[int]]:
    """Call each (method, args...) step; the levels of the four light pins after each one."""
    seen = []
    for name, *args in steps:
        getattr(fb, name)(*args)
        seen.append([gpio.level(p) for p in pins])
    return seen


def tones(events: list[PinEvent]) -> list[tuple[float, float]]:
    """(frequency Hz, duration s) of each tone the buzzer pin sounded."""
    out, freq, start = [], 0.0, 0.0
    for e in events:
        if e.kind == "pwm_frequency":
            freq = e.value
        elif e.kind == "pwm_start":
            start = e.t
        elif e.kind == "pwm_stop":
            out.append((freq, round(e.t - start, 3)))
    return out


def test_approved_payment_lights_and_tones(terminal) -> None:
    fb, gpio, cfg = terminal
    lights = run(fb, gpio, cfg.gpio.led_pins, ("ready",), ("amount_entry", Money.of(1250, "EUR")),
                 ("present_card", Money.of(1250, "EUR")), ("processing",), ("card_read",),
                 ("approved", Money.of(1250, 978), "123456", "476173******0010", "visa"))
    fb.wait()
    # first light when ready, two while reading, all four on a good read, off after
    assert lights == [[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1],
                      [0, 0, 0, 0]]
    # one success tone (~1500 Hz, 500 ms), nothing else
    assert tones(gpio.history(cfg.gpio.buzzer_pin)) == [(1500.0, 0.5)]
    assert fb.last_screen is not None and fb.last_screen.name == "approved"


def test_declined_payment_lights_and_alert_tone(terminal) -> None:
    fb, gpio, cfg = terminal
    lights = run(fb, gpio, cfg.gpio.led_pins, ("ready",), ("present_card", Money.of(5100, "EUR")),
                 ("processing",), ("declined", "insufficient_funds"))
    fb.wait()
    assert lights == [[1, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    buzzer = gpio.history(cfg.gpio.buzzer_pin)
    assert tones(buzzer) == [(750.0, 0.2), (750.0, 0.2)]
    starts = [e.t for e in buzzer if e.kind == "pwm_start"]
    assert round(starts[1] - starts[0], 3) == 0.4  # 200 ms on, 200 ms off, 200 ms on
    assert fb.last_screen is not None and fb.last_screen.shows("Insufficient funds")


def test_not_charged_has_its_own_lights_tone_and_amber_screen(terminal) -> None:
    fb, gpio, cfg = terminal
    lights = run(fb, gpio, cfg.gpio.led_pins, ("ready",), ("present_card", Money.of(1250, "EUR")),
                 ("processing",), ("not_charged", "host_unavailable"))
    fb.wait()
    assert lights[-1] == [0, 1, 1, 0]  # neither ready (first), card read (all) nor declined (off)
    assert tones(gpio.history(cfg.gpio.buzzer_pin)) == [(1000.0, 0.1)] * 3
    screen = fb.last_screen
    assert screen is not None and screen.name == "not_charged"
    assert screen.shows("Not charged") and screen.shows("Bank not reachable")
    amber = fb._view().theme.warning
    assert amber in {c for _n, c in screen.image.getcolors(maxcolors=1 << 20)}


def test_ready_with_payments_stored_for_the_bank_lights_first_and_last(terminal) -> None:
    fb, gpio, cfg = terminal
    lights = run(fb, gpio, cfg.gpio.led_pins, ("ready", 2, Money.of(3851, "EUR")), ("ready",))
    assert lights == [[1, 0, 0, 1], [1, 0, 0, 0]]  # [offline]; nothing stored: the first alone
    fb.ready(2, Money.of(3851, "EUR"))
    assert fb.last_screen is not None and fb.last_screen.shows("Stored for the bank: 2 · €38.51")


def test_approval_without_card_read_still_sounds_success_once(terminal) -> None:
    fb, gpio, cfg = terminal
    fb.present_card(EUR1)
    fb.approved(EUR1, "999999")
    fb.wait()
    assert tones(gpio.history(cfg.gpio.buzzer_pin)) == [(1500.0, 0.5)]


def test_see_phone_alerts_and_waits_for_the_next_tap(terminal) -> None:
    fb, gpio, cfg = terminal
    lights = run(fb, gpio, cfg.gpio.led_pins, ("present_card", EUR1), ("processing",),
                 ("message", "see_phone"))
    fb.wait()
    assert lights == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0]]
    assert [f for f, _ in tones(gpio.history(cfg.gpio.buzzer_pin))] == [750.0, 750.0]
    assert fb.last_screen is not None and fb.last_screen.shows("See phone")


def test_every_screen_shown_is_a_numbered_png(terminal) -> None:
    fb, _gpio, cfg = terminal
    fb.ready()
    fb.present_card(Money.of(1250, "EUR"))
    fb.message("try_again")
    files = sorted(p.name for p in cfg.state_path(cfg.display.directory).iterdir())
    assert files == ["001-ready.png", "002-present_card.png", "003-try_again.png"]


def test_a_broken_display_does_not_stop_the_payment(terminal) -> None:
    fb, gpio, cfg = terminal

    class Broken:
        width, height = 320, 240

        def show(self, image, name="screen"):
            raise OSError("SPI bus gone")

        def close(self) -> None:
            return None

    fb.display = Broken()
    lights = run(fb, gpio, cfg.gpio.led_pins, ("present_card", EUR1), ("card_read",),
                 ("approved", EUR1))
    fb.wait()
    assert lights == [[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]
    assert tones(gpio.history(cfg.gpio.buzzer_pin)) == [(1500.0, 0.5)]


def test_settlement_report_from_the_host_totals(terminal) -> None:
    fb, _gpio, _cfg = terminal
    fb.settlement(BatchTotals(7, CURRENCIES["EUR"], 12, 45678, 1, 1250), agreed=False)
    screen = fb.last_screen
    assert screen is not None and screen.name == "settlement"
    for text in ("Batch 7", "12", "€456.78", "-€12.50", "€444.28", "Totals differ"):
        assert screen.shows(text), text


def test_unknown_language_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    from firmware.config import ConfigError

    cfg = load_config()
    cfg = dataclasses.replace(cfg, terminal=dataclasses.replace(
        cfg.terminal, state_dir=str(tmp_path), language="xx"))
    with pytest.raises(ConfigError, match="terminal.language.*xx.*en, hi, it"):
        Feedback.from_config(cfg)


def test_amount_entry_names_the_keypad_keys(tmp_path: Path) -> None:
    cfg = load_config()
    cfg = dataclasses.replace(
        cfg, terminal=dataclasses.replace(cfg.terminal, state_dir=str(tmp_path)),
        keypad=dataclasses.replace(cfg.keypad, backend="matrix"))
    fb = Feedback.from_config(cfg, gpio=FakeGPIO())
    try:
        fb.amount_entry(Money.of(1250, "EUR"))
        assert fb.last_screen is not None and fb.last_screen.shows("OK #   Clear C   Cancel D")
    finally:
        fb.close()
