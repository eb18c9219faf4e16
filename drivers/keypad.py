"""Keys for amount entry: a 4x4 matrix keypad or separate buttons on GPIO (debounced), or the
keyboard of a desktop. Every backend has `read_key(timeout) -> str | None`, `drain()` (forget
keys pressed and not read yet, and a key still held), `live` and `close()`.

`live` is True when keys come from a person as they press them (a matrix, buttons, a keyboard
on a terminal): such a keypad can be watched from another thread with short timeouts while a
payment runs. A keyboard on a pipe or file is a script (False): its keys are read in order,
each when the loop asks for one, and never dropped.

Keys come out as names: "0".."9", "enter", "clear" (delete the last digit), "cancel", "f1",
"f2", and "quit" when a keyboard's input ends. Legends map to names by KEY_NAMES (on the usual
membrane keypad: # enter, * and C clear, D cancel, A f1, B f2).

The matrix is scanned the usual way: rows are outputs held high, each row in turn is driven low
and the columns (inputs with pull-ups) that read low are the keys down in it. A key counts once
it has read down for `debounce_ms` without a break, and again only after it has been released.
GPIO through an RPi.GPIO-compatible module (the real one or simulators/gpio_fake.py).
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TextIO, TypedDict, Unpack

from drivers.gpio import Gpio, prepare

KEY_NAMES: dict[str, str] = {
    "#": "enter", "*": "clear", "C": "clear", "D": "cancel", "A": "f1", "B": "f2",
    **{str(d): str(d) for d in range(10)},
}


class Keypad(Protocol):
    """What the service needs of a keypad (the backends below)."""

    @property
    def live(self) -> bool:
        """True when keys come from a person as they press them: read during a payment."""
        ...

    def read_key(self, timeout: float | None = None) -> str | None: ...

    def drain(self) -> None: ...

    def close(self) -> None: ...


class Timing(TypedDict, total=False):
    """DebouncedKeys' timing, as keyword arguments of the matrix and button keypads."""

    debounce_ms: int
    poll_s: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]


class DebouncedKeys:
    """Polls `scan()` (the legends down now) and reports each debounced press once."""

    live = True

    def __init__(self, debounce_ms: int = 30, poll_s: float = 0.005,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.debounce_s = debounce_ms / 1000
        self.poll_s = poll_s
        self.clock = clock
        self.sleep = sleep
        self.down_since: dict[str, float] = {}
        self.reported: set[str] = set()

    def scan(self) -> set[str]:
        raise NotImplementedError

    def poll(self) -> str | None:
        """One scan; the name of a key whose press has just become certain, if any."""
        now = self.clock()
        down = self.scan()
        for legend in list(self.down_since):
            if legend not in down:  # released (or bounced open): start again
                del self.down_since[legend]
                self.reported.discard(legend)
        found = None
        for legend in sorted(down):
            since = self.down_since.setdefault(legend, now)
            if (found is None and legend not in self.reported
                    and now - since >= self.debounce_s):
                self.reported.add(legend)
                found = KEY_NAMES.get(legend, legend)
        return found

    def read_key(self, timeout: float | None = None) -> str | None:
        deadline = None if timeout is None else self.clock() + timeout
        while True:
            key = self.poll()
            if key is not None:
                return key
            if deadline is not None and self.clock() >= deadline:
                return None
            self.sleep(self.poll_s)

    def drain(self) -> None:
        """Keys down now count as already reported: one held across the end of a payment does
        not fire afterwards (it counts again once released and pressed)."""
        now = self.clock()
        for legend in self.scan():
            self.down_since.setdefault(legend, now)
            self.reported.add(legend)


class MatrixKeypad(DebouncedKeys):
    """A row x column membrane keypad (4x4 or 3x4) on GPIO pins (BCM)."""

    def __init__(self, gpio: Gpio, row_pins: Sequence[int], col_pins: Sequence[int],
                 layout: Sequence[str], **timing: Unpack[Timing]) -> None:
        super().__init__(**timing)
        if len(layout) != len(row_pins) or any(len(r) != len(col_pins) for r in layout):
            raise ValueError("keypad layout must have one legend a row and column")
        self.gpio = gpio
        self.rows = list(row_pins)
        self.cols = list(col_pins)
        self.layout = list(layout)
        prepare(gpio)
        gpio.setup(self.rows, gpio.OUT, initial=gpio.HIGH)
        gpio.setup(self.cols, gpio.IN, pull_up_down=gpio.PUD_UP)

    def scan(self) -> set[str]:
        down = set()
        for r, row in enumerate(self.rows):
            self.gpio.output(row, self.gpio.LOW)
            for c, col in enumerate(self.cols):
                if self.gpio.input(col) == self.gpio.LOW:
                    down.add(self.layout[r][c])
            self.gpio.output(row, self.gpio.HIGH)
        return down

    def close(self) -> None:
        self.gpio.cleanup(self.rows + self.cols)


class ButtonKeypad(DebouncedKeys):
    """Separate push buttons, each from its pin to ground (pull-up: pressed reads low)."""

    def __init__(self, gpio: Gpio, pins: Sequence[int], legends: Sequence[str],
                 **timing: Unpack[Timing]) -> None:
        super().__init__(**timing)
        if len(pins) != len(legends):
            raise ValueError("one legend for each button pin")
        self.gpio = gpio
        self.buttons = dict(zip(pins, legends, strict=True))
        prepare(gpio)
        gpio.setup(list(self.buttons), gpio.IN, pull_up_down=gpio.PUD_UP)

    def scan(self) -> set[str]:
        return {legend for pin, legend in self.buttons.items()
                if self.gpio.input(pin) == self.gpio.LOW}

    def close(self) -> None:
        self.gpio.cleanup(list(self.buttons))


# Characters of a desktop keyboard -> key names.
KEYBOARD: dict[str, str] = {
    "\n": "enter", "\r": "enter", "=": "enter",
    "\x7f": "clear", "\b": "clear", "c": "clear", "C": "clear", "*": "clear",
    "\x1b": "cancel", "x": "cancel", "X": "cancel", "q": "quit", "Q": "quit",
    "r": "f1", "R": "f1", "s": "f2", "S": "f2",
    **{str(d): str(d) for d in range(10)},
}


class KeyboardKeypad:
    """A desktop keyboard (or any text stream): digits, Enter, Backspace/c, Esc/x, r (refund),
    q (quit). On a terminal it reads keys as typed (cbreak mode) and restores the mode."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdin
        self._saved: Any = None
        self._fd: int | None = None  # read with select (a timeout) when the stream has one
        try:
            self._fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self._tty = self._fd is not None and os.isatty(self._fd)
        if self._fd is not None and self._tty:
            import termios
            import tty

            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)

    @property
    def live(self) -> bool:
        """True on a terminal (keys as typed); False for a script on a pipe or file."""
        return self._tty

    def drain(self) -> None:
        """Drop what was typed and not read yet (on a terminal; a script is never dropped)."""
        if self._fd is not None and self._tty:
            import termios

            termios.tcflush(self._fd, termios.TCIFLUSH)

    def read_key(self, timeout: float | None = None) -> str | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._fd is not None:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready, _, _ = select.select([self._fd], [], [], wait)
                if not ready:
                    return None
                char = os.read(self._fd, 1).decode(errors="replace")
            else:
                char = self.stream.read(1)
            if char == "":
                return "quit"
            key = KEYBOARD.get(char)
            if key is not None:
                return key

    def close(self) -> None:
        if self._fd is not None and self._saved is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None


class NoKeypad:
    """No keys (amounts come from elsewhere)."""

    live = True

    def drain(self) -> None:
        return None

    def read_key(self, timeout: float | None = None) -> str | None:
        if timeout:
            time.sleep(timeout)
        return None

    def close(self) -> None:
        return None


class KeypadSettings(Protocol):
    """What `open_keypad` reads of a [keypad] section (firmware.config.KeypadSection)."""

    @property
    def backend(self) -> str: ...  # keyboard | matrix | buttons | none
    @property
    def row_pins(self) -> Sequence[int]: ...
    @property
    def col_pins(self) -> Sequence[int]: ...
    @property
    def layout(self) -> Sequence[str]: ...  # the legends, one string a row
    @property
    def button_pins(self) -> Sequence[int]: ...
    @property
    def button_keys(self) -> Sequence[str]: ...
    @property
    def debounce_ms(self) -> int: ...


def open_keypad(section: KeypadSettings, gpio: Gpio | None = None,
                stream: TextIO | None = None) -> Keypad:
    """The keypad a [keypad] section names (keyboard | matrix | buttons | none)."""
    backend = section.backend
    if backend == "keyboard":
        return KeyboardKeypad(stream)
    if backend == "none":
        return NoKeypad()
    if gpio is None:
        from drivers.gpio import gpio_module

        gpio = gpio_module("rpi")
    if backend == "matrix":
        return MatrixKeypad(gpio, section.row_pins, section.col_pins, section.layout,
                            debounce_ms=section.debounce_ms)
    if backend == "buttons":
        return ButtonKeypad(gpio, section.button_pins, section.button_keys,
                            debounce_ms=section.debounce_ms)
    raise ValueError(f"unknown keypad backend {backend!r}")
