"""Keypads: a 4x4 matrix scanned through the RPi.GPIO API (keys pressed by joining a row and a
column wire in the recording fake), debounced; buttons; the desktop keyboard; amount entry."""

from __future__ import annotations

import io

import pytest

from drivers.keypad import ButtonKeypad, KeyboardKeypad, MatrixKeypad
from firmware.service import AmountEntry
from simulators.gpio_fake import FakeGPIO

ROWS, COLS = [4, 17, 27, 22], [23, 16, 20, 21]
LAYOUT = ["123A", "456B", "789C", "*0#D"]


class Hands:
    """Simulated time plus a script of (time, press/release, legend): sleeping runs the
    script, so presses and bounces happen at exact moments between scans."""

    def __init__(self, gpio: FakeGPIO, script: list[tuple[float, str, str]]) -> None:
        self.gpio = gpio
        self.now = 0.0
        self.script = sorted(script)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        while self.script and self.script[0][0] <= self.now:
            _, action, legend = self.script.pop(0)
            r = next(i for i, row in enumerate(LAYOUT) if legend in row)
            c = LAYOUT[r].index(legend)
            (self.gpio.connect if action == "press" else self.gpio.disconnect)(ROWS[r], COLS[c])


def matrix(script: list[tuple[float, str, str]]) -> tuple[MatrixKeypad, Hands]:
    gpio = FakeGPIO()
    hands = Hands(gpio, script)
    pad = MatrixKeypad(gpio, ROWS, COLS, LAYOUT, debounce_ms=30, poll_s=0.005,
                       clock=hands.clock, sleep=hands.sleep)
    return pad, hands


def keys(pad, limit: float = 2.0) -> list[str]:
    out = []
    while (key := pad.read_key(timeout=limit)) is not None:
        out.append(key)
    return out


def test_matrix_reads_each_press_once_with_names() -> None:
    script = []
    for i, legend in enumerate("1250#D"):
        script += [(0.1 + i * 0.2, "press", legend), (0.2 + i * 0.2, "release", legend)]
    pad, _ = matrix(script)
    assert keys(pad) == ["1", "2", "5", "0", "enter", "cancel"]


def test_matrix_ignores_bounces_and_presses_shorter_than_the_debounce() -> None:
    script = [(0.100, "press", "7"), (0.104, "release", "7"), (0.108, "press", "7"),
              (0.112, "release", "7"), (0.116, "press", "7"),  # contact bounce, then held
              (0.400, "release", "7"),
              (0.600, "press", "8"), (0.615, "release", "8")]  # 15 ms: a glitch, not a key
    pad, _ = matrix(script)
    assert keys(pad) == ["7"]


def test_held_key_does_not_repeat() -> None:
    pad, _ = matrix([(0.05, "press", "5"), (1.5, "release", "5")])
    assert keys(pad, limit=1.0) == ["5"]


def test_matrix_drives_rows_low_one_at_a_time() -> None:
    pad, hands = matrix([])
    pad.gpio.clear_history()
    pad.scan()
    lows = [e.pin for e in pad.gpio.history(kinds={"output"}) if e.value == 0]
    assert lows == ROWS
    assert all(pad.gpio.level(r) == 1 for r in ROWS)  # idle rows are high again


def test_buttons_on_pull_ups() -> None:
    gpio = FakeGPIO()
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s
        gpio.set_input(26, 0 if 0.1 <= now[0] < 0.3 else None)

    pad = ButtonKeypad(gpio, [26, 19], ["#", "D"], debounce_ms=20, clock=lambda: now[0],
                       sleep=sleep)
    assert keys(pad, limit=1.0) == ["enter"]


def test_keyboard_keys() -> None:
    pad = KeyboardKeypad(io.StringIO("12\x7f5x\n?r"))
    got = [pad.read_key(1.0) for _ in range(8)]
    assert got == ["1", "2", "clear", "5", "cancel", "enter", "f1", "quit"]  # "?" means nothing


@pytest.mark.parametrize(("presses", "minor", "last"), [
    ("1250", 1250, "changed"),
    ("0012", 12, "changed"),  # leading zeros are not digits
    ("125c", 12, "changed"),
    ("c", 0, "cancel"),  # clear on an empty entry leaves it
    ("e", 0, "service"),  # nothing to pay: the terminal API's service screen
    ("e1", 1, "changed"),  # ... and the amount keyed after it
    ("1234567890", 123456789, "ignored"),  # nine digits at most
])
def test_amount_entry_keys_like_a_till(presses: str, minor: int, last: str) -> None:
    entry = AmountEntry(2)
    names = {"c": "clear", "e": "enter"}
    result = ""
    for p in presses:
        result = entry.press(names.get(p, p))
    assert entry.minor == minor and result == last


def test_amount_entry_refund_and_enter() -> None:
    entry = AmountEntry(2)
    for k in "500":
        entry.press(k)
    assert entry.press("f1") == "changed" and entry.txn_type == "refund"
    assert entry.press("enter") == "enter" and entry.minor == 500


def test_f1_a_second_time_is_void_mode_where_enter_voids_the_payment_keyed() -> None:
    entry = AmountEntry(2)
    for k in "500":
        entry.press(k)
    entry.press("f1")
    assert entry.press("f1") == "changed" and entry.voiding and entry.digits == ""
    assert entry.press("enter") == "ignored"  # no number yet
    for k in "12":
        entry.press(k)
    assert entry.press("enter") == "void" and entry.minor == 12
    assert entry.press("f1") == "changed" and not entry.voiding and entry.txn_type == "purchase"


def test_matrix_drain_forgets_a_key_held_across_it() -> None:
    pad, hands = matrix([(0.05, "press", "D"), (0.5, "release", "D"),
                         (0.7, "press", "5"), (0.8, "release", "5")])
    hands.sleep(0.06)  # D is down (not yet debounced) when the payment ends
    pad.drain()
    assert keys(pad) == ["5"]  # D never fires; the next press does


def test_keyboard_on_a_terminal_drain_drops_what_was_typed_ahead() -> None:
    import os

    master, slave = os.openpty()
    with os.fdopen(slave, "r") as stream:
        pad = KeyboardKeypad(stream)
        assert pad.live
        os.write(master, b"99x")
        assert pad.read_key(1.0) == "9"
        pad.drain()
        assert pad.read_key(0.2) is None
        os.write(master, b"5")
        assert pad.read_key(1.0) == "5"
        pad.close()
    os.close(master)


def test_keyboard_script_is_not_live_and_never_drained() -> None:
    pad = KeyboardKeypad(io.StringIO("12"))
    assert not pad.live
    pad.drain()
    assert [pad.read_key(0), pad.read_key(0)] == ["1", "2"]
