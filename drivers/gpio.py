"""The terminal's four contactless status lights and its buzzer, on the RPi.GPIO API.

`gpio_module(backend)` picks the real `RPi.GPIO` (on a Pi 5 the rpi-lgpio package provides the
same module) or the recording fake, loaded by name from the simulators package (development
machines only; a terminal does not carry it); everything above that call is the same code on a
Pi and on a desktop. Pins are BCM numbers from the configuration.

Tones follow EMV Contactless Book A's audio indications: success = one ~1500 Hz tone of 500 ms;
alert = two ~750 Hz tones of 200 ms with 200 ms between. One of our own, attention = three short
~1000 Hz beeps (100 ms, 100 ms apart), marks "not charged" (the host never decided), which is
neither a success nor a decline. A passive buzzer is driven with PWM at
the tone's frequency (50 % duty); an active buzzer (`pwm=False`) is simply switched on and off.
Tones play on a worker thread so the payment never waits for the buzzer.

Nothing here knows about payments: callers say how many lights and which tone.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from drivers.errors import PitapError

log = logging.getLogger(__name__)

# (frequency Hz, on seconds, off seconds after) for each tone
TONES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "success": ((1500.0, 0.5, 0.0),),
    "alert": ((750.0, 0.2, 0.2), (750.0, 0.2, 0.0)),
    "attention": ((1000.0, 0.1, 0.1), (1000.0, 0.1, 0.1), (1000.0, 0.1, 0.0)),
}


SIM_MODULE = "simulators.gpio_fake"  # gpio.backend = "sim": loaded by name, never imported


class GpioUnavailable(PitapError, RuntimeError):
    """The configured GPIO backend cannot be used on this machine."""


class Pwm(Protocol):
    """A PWM channel as RPi.GPIO's `GPIO.PWM(pin, frequency)` returns it."""

    def start(self, duty_cycle: float) -> None: ...

    def stop(self) -> None: ...

    def ChangeFrequency(self, frequency: float) -> None: ...  # noqa: N802 (RPi.GPIO's name)


class Gpio(Protocol):
    """The part of the RPi.GPIO API the drivers use: RPi.GPIO itself (rpi-lgpio on a Pi 5) or
    the simulators' recording fake satisfy it. Pins are BCM numbers."""

    BCM: int
    OUT: int
    IN: int
    LOW: int
    HIGH: int
    PUD_UP: int

    def setwarnings(self, flag: bool) -> None: ...

    def setmode(self, mode: int) -> None: ...

    def getmode(self) -> int | None: ...

    def setup(self, channel: int | Sequence[int], direction: int, pull_up_down: int = ...,
              initial: int = ...) -> None: ...

    def output(self, channel: int | Sequence[int], value: int | bool | Sequence[int]) -> None: ...

    def input(self, channel: int) -> int: ...

    def cleanup(self, channel: int | Sequence[int] | None = ...) -> None: ...

    def PWM(self, channel: int, frequency: float) -> Pwm: ...  # noqa: N802 (RPi.GPIO's name)


def gpio_module(backend: str) -> Gpio:
    """The RPi.GPIO-compatible module for `backend`: "rpi" (the real one) or "sim" (the fake).

    Returns a fresh fake for "sim", so each terminal gets its own recorded history."""
    if backend == "sim":
        try:
            fake = importlib.import_module(SIM_MODULE)
        except ModuleNotFoundError as exc:
            if exc.name not in ("simulators", SIM_MODULE):
                raise
            raise GpioUnavailable(
                'backend "sim" needs the simulators, which are not installed here (a terminal '
                'does not carry them): set gpio.backend = "rpi" on a Pi') from None
        gpio: Gpio = fake.FakeGPIO()
        return gpio
    if backend == "rpi":
        try:
            module: Any = importlib.import_module("RPi.GPIO")
        except (ImportError, RuntimeError) as exc:
            raise GpioUnavailable(
                f"RPi.GPIO is not usable here ({exc}); install pitap[pi] on the Pi "
                "(rpi-lgpio on a Pi 5) or set gpio.backend = \"sim\"") from None
        return module
    raise GpioUnavailable(f"unknown gpio backend {backend!r} (rpi or sim)")


def prepare(gpio: Gpio) -> None:
    """BCM numbering, once (a second setmode with the same mode is fine on RPi.GPIO)."""
    gpio.setwarnings(False)
    if gpio.getmode() is None:
        gpio.setmode(gpio.BCM)


class StatusLights:
    """Four status lights in a row; `show(n)` lights the first n, `pattern()` any mix."""

    def __init__(self, gpio: Gpio, pins: Sequence[int], active_high: bool = True) -> None:
        if len(pins) != 4:
            raise ValueError("four status light pins are needed")
        self.gpio = gpio
        self.pins = list(pins)
        self.on_level = gpio.HIGH if active_high else gpio.LOW
        self.off_level = gpio.LOW if active_high else gpio.HIGH
        self.state = [False] * 4
        prepare(gpio)
        for pin in self.pins:
            gpio.setup(pin, gpio.OUT, initial=self.off_level)

    def pattern(self, lit: Sequence[bool]) -> None:
        """Set each light; only lights whose state changes are written."""
        for i, (pin, want) in enumerate(zip(self.pins, lit, strict=True)):
            if self.state[i] != bool(want):
                self.gpio.output(pin, self.on_level if want else self.off_level)
                self.state[i] = bool(want)

    def show(self, count: int) -> None:
        """The first `count` lights on, the rest off."""
        self.pattern([i < count for i in range(4)])

    @property
    def lit(self) -> int:
        return sum(self.state)

    def close(self) -> None:
        self.show(0)
        self.gpio.cleanup(self.pins)


class Buzzer:
    """A buzzer on one pin playing the success and alert tones without blocking the caller."""

    def __init__(self, gpio: Gpio, pin: int, active_high: bool = True, pwm: bool = True,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.gpio = gpio
        self.pin = pin
        self.on_level = gpio.HIGH if active_high else gpio.LOW
        self.off_level = gpio.LOW if active_high else gpio.HIGH
        self.use_pwm = pwm
        self.sleep = sleep
        prepare(gpio)
        gpio.setup(pin, gpio.OUT, initial=self.off_level)
        self._pwm: Pwm | None = None
        self._pwm_frequency = 0.0
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._worker = threading.Thread(target=self._run, name="buzzer", daemon=True)
        self._worker.start()

    def play(self, tone: str) -> None:
        """Queue `tone` ("success", "alert" or "attention"); returns at once."""
        if tone not in TONES:
            raise ValueError(f"unknown tone {tone!r} (known: {', '.join(TONES)})")
        self._idle.clear()
        self._queue.put(tone)

    def success(self) -> None:
        self.play("success")

    def alert(self) -> None:
        self.play("alert")

    def wait(self, timeout: float = 5.0) -> bool:
        """Block until every queued tone has played (tests, shutdown)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            tone = self._queue.get()
            if tone is None:
                break
            try:
                self._sound(TONES[tone])
            except Exception:  # a buzzer fault must never stop the terminal
                log.exception("buzzer failed playing %s", tone)
            if self._queue.empty():
                self._idle.set()

    def _sound(self, steps: Sequence[tuple[float, float, float]]) -> None:
        for frequency, on_s, off_s in steps:
            if self.use_pwm:
                if self._pwm is None:
                    self._pwm = self.gpio.PWM(self.pin, frequency)
                elif self._pwm_frequency != frequency:
                    self._pwm.ChangeFrequency(frequency)
                self._pwm_frequency = frequency
                self._pwm.start(50)
                self.sleep(on_s)
                self._pwm.stop()
            else:
                self.gpio.output(self.pin, self.on_level)
                self.sleep(on_s)
                self.gpio.output(self.pin, self.off_level)
            if off_s:
                self.sleep(off_s)

    def close(self) -> None:
        self.wait()
        self._queue.put(None)
        self._worker.join(timeout=2)
        if self._pwm is not None:
            self._pwm.stop()
        self.gpio.cleanup(self.pin)
