"""A recording stand-in for the `RPi.GPIO` module: the lowest layer this machine lacks.

It offers the RPi.GPIO calls pitap's drivers use (setmode, setup, output, input, cleanup, PWM,
setwarnings, getmode) with the same constants, and records every change with a monotonic
timestamp, so tests can assert what the status lights, the buzzer and a panel's DC/RST lines did.
The driver code above it is the code that runs on a Pi: only the module object differs.

Inputs model wiring: a pin set up as input reads its pull (up = 1, down = 0) unless `connect()`
ties it to another pin (a pressed key of a matrix keypad joins a row and a column), in which case
it reads that pin's output level; `set_input()` forces a level (a button to ground, say).
Listeners (`add_listener`) see every event as it happens (the SPI panel emulator watches DC).

Use it as a module (`from simulators import gpio_fake as GPIO`: module-level functions act on a
shared default instance) or make a private `FakeGPIO()` per test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# The RPi.GPIO constants (same values as the C module's).
BOARD = 10
BCM = 11
OUT = 0
IN = 1
LOW = 0
HIGH = 1
PUD_OFF = 20
PUD_DOWN = 21
PUD_UP = 22
RISING = 31
FALLING = 32
BOTH = 33
VERSION = "0.7.1-pitap-fake"
RPI_INFO = {"P1_REVISION": 3, "TYPE": "simulated", "MANUFACTURER": "pitap", "PROCESSOR": "none"}


@dataclass(frozen=True)
class PinEvent:
    """One recorded change: `kind` is setup, output, pwm_start, pwm_frequency, pwm_duty,
    pwm_stop or cleanup; `value` is the level, frequency or duty cycle."""

    t: float
    pin: int
    kind: str
    value: float


@dataclass
class _Pin:
    direction: int = IN
    level: int = LOW
    pull: int = PUD_OFF
    forced: int | None = None


@dataclass
class FakeGPIO:
    """One simulated GPIO header; methods mirror the RPi.GPIO module's functions."""

    clock: Callable[[], float] = time.monotonic
    events: list[PinEvent] = field(default_factory=list)
    mode: int | None = None
    pins: dict[int, _Pin] = field(default_factory=dict)
    links: dict[int, set[int]] = field(default_factory=dict)
    listeners: list[Callable[[PinEvent], None]] = field(default_factory=list)
    warnings: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # constants, so an instance can stand in for the module as well
    BOARD = BOARD
    BCM = BCM
    OUT = OUT
    IN = IN
    LOW = LOW
    HIGH = HIGH
    PUD_OFF = PUD_OFF
    PUD_DOWN = PUD_DOWN
    PUD_UP = PUD_UP
    RISING = RISING
    FALLING = FALLING
    BOTH = BOTH

    # ---- recording ---------------------------------------------------------------------
    def _record(self, pin: int, kind: str, value: float) -> None:
        event = PinEvent(self.clock(), pin, kind, value)
        with self._lock:
            self.events.append(event)
            listeners = list(self.listeners)
        for listener in listeners:
            listener(event)

    def add_listener(self, listener: Callable[[PinEvent], None]) -> None:
        self.listeners.append(listener)

    def level(self, pin: int) -> int:
        """The level a pin is driven to (outputs) or reads (inputs)."""
        return self.input(pin)

    def history(self, pin: int | None = None, kinds: Iterable[str] | None = None
                ) -> list[PinEvent]:
        """Recorded events, optionally only for `pin` and of `kinds`."""
        wanted = set(kinds) if kinds is not None else None
        with self._lock:
            events = list(self.events)
        return [e for e in events
                if (pin is None or e.pin == pin) and (wanted is None or e.kind in wanted)]

    def clear_history(self) -> None:
        with self._lock:
            self.events.clear()

    # ---- wiring (the test's hands) -----------------------------------------------------
    def connect(self, a: int, b: int) -> None:
        """Join two pins' wires (a key pressed between a row and a column)."""
        self.links.setdefault(a, set()).add(b)
        self.links.setdefault(b, set()).add(a)

    def disconnect(self, a: int, b: int) -> None:
        self.links.get(a, set()).discard(b)
        self.links.get(b, set()).discard(a)

    def set_input(self, pin: int, level: int | None) -> None:
        """Force what an input reads (None: back to its pull / wiring)."""
        self.pins.setdefault(pin, _Pin()).forced = level

    # ---- the RPi.GPIO API --------------------------------------------------------------
    def setwarnings(self, flag: bool) -> None:
        self.warnings = bool(flag)

    def setmode(self, mode: int) -> None:
        if mode not in (BOARD, BCM):
            raise ValueError("An invalid mode was passed to setmode()")
        if self.mode is not None and self.mode != mode:
            raise ValueError("A different mode has already been set!")
        self.mode = mode

    def getmode(self) -> int | None:
        return self.mode

    def _check_mode(self) -> None:
        if self.mode is None:
            raise RuntimeError(
                "Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or "
                "GPIO.setmode(GPIO.BCM)")

    def setup(self, channel: int | Iterable[int], direction: int, pull_up_down: int = PUD_OFF,
              initial: int | None = None) -> None:
        self._check_mode()
        channels = [channel] if isinstance(channel, int) else list(channel)
        for pin in channels:
            state = self.pins.setdefault(pin, _Pin())
            state.direction = direction
            state.pull = pull_up_down
            if direction == OUT:
                state.level = int(bool(initial)) if initial is not None else LOW
                self._record(pin, "setup", state.level)
            else:
                self._record(pin, "setup", -1)

    def output(self, channel: int | Iterable[int], value: int | bool | Iterable[int]) -> None:
        self._check_mode()
        channels = [channel] if isinstance(channel, int) else list(channel)
        values = ([value] * len(channels) if isinstance(value, int | bool)
                  else list(value))
        for pin, val in zip(channels, values, strict=True):
            state = self.pins.get(pin)
            if state is None or state.direction != OUT:
                raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
            state.level = int(bool(val))
            self._record(pin, "output", state.level)

    def input(self, channel: int) -> int:
        state = self.pins.get(channel)
        if state is None:
            raise RuntimeError("You must setup() the GPIO channel first")
        if state.direction == OUT:
            return state.level
        if state.forced is not None:
            return state.forced
        for other in self.links.get(channel, ()):
            peer = self.pins.get(other)
            if peer is not None and peer.direction == OUT:
                return peer.level
        return HIGH if state.pull == PUD_UP else LOW

    def cleanup(self, channel: int | Iterable[int] | None = None) -> None:
        if channel is None:
            channels = list(self.pins)
        else:
            channels = [channel] if isinstance(channel, int) else list(channel)
        for pin in channels:
            if pin in self.pins:
                del self.pins[pin]
                self._record(pin, "cleanup", 0)
        if channel is None:
            self.mode = None

    def PWM(self, channel: int, frequency: float) -> FakePWM:  # noqa: N802 (RPi.GPIO's name)
        state = self.pins.get(channel)
        if state is None or state.direction != OUT:
            raise RuntimeError("You must setup() the GPIO channel as an output first")
        return FakePWM(self, channel, frequency)


class FakePWM:
    """RPi.GPIO.PWM: software PWM on one output pin, recorded as events."""

    def __init__(self, gpio: FakeGPIO, pin: int, frequency: float) -> None:
        if frequency <= 0:
            raise ValueError("frequency must be greater than 0.0")
        self.gpio = gpio
        self.pin = pin
        self.frequency = float(frequency)
        self.duty = 0.0
        self.running = False
        gpio._record(pin, "pwm_frequency", self.frequency)

    def start(self, duty_cycle: float) -> None:
        self.duty = float(duty_cycle)
        self.running = True
        self.gpio._record(self.pin, "pwm_start", self.duty)

    def ChangeFrequency(self, frequency: float) -> None:  # noqa: N802
        self.frequency = float(frequency)
        self.gpio._record(self.pin, "pwm_frequency", self.frequency)

    def ChangeDutyCycle(self, duty_cycle: float) -> None:  # noqa: N802
        self.duty = float(duty_cycle)
        self.gpio._record(self.pin, "pwm_duty", self.duty)

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.gpio._record(self.pin, "pwm_stop", 0)


# ---- module-level API on a shared default instance (`import ... as GPIO`) ----------------
_default = FakeGPIO()


def default() -> FakeGPIO:
    """The shared instance behind the module-level functions."""
    return _default


def reset() -> FakeGPIO:
    """Start the shared instance afresh (tests); returns it."""
    global _default
    _default = FakeGPIO()
    return _default


def setwarnings(flag: bool) -> None:
    _default.setwarnings(flag)


def setmode(mode: int) -> None:
    _default.setmode(mode)


def getmode() -> int | None:
    return _default.getmode()


def setup(channel: int | Iterable[int], direction: int, pull_up_down: int = PUD_OFF,
          initial: int | None = None) -> None:
    _default.setup(channel, direction, pull_up_down, initial)


def output(channel: int | Iterable[int], value: int | bool | Iterable[int]) -> None:
    _default.output(channel, value)


def input(channel: int) -> int:  # noqa: A001 (RPi.GPIO's name)
    return _default.input(channel)


def cleanup(channel: int | Iterable[int] | None = None) -> None:
    _default.cleanup(channel)


def PWM(channel: int, frequency: float) -> FakePWM:  # noqa: N802
    return _default.PWM(channel, frequency)
