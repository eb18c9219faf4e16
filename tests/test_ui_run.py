"""`pitap run`: the service loop with real parts: keys -> amount -> a simulated phone taps over
nfcpy's udp: driver -> the host simulator on loopback -> outcome on screen, lights, tones,
receipt bytes -> ready. Only the GPIO header is simulated (the recording fake)."""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from run_support import start_pitap, wait_until

from drivers.keypad import KeyboardKeypad
from firmware.cli import main
from firmware.money import CURRENCIES
from firmware.service import TerminalService
from firmware.terminal import Terminal
from simulators.wallet.phone import SimulatedPhone


@pytest.fixture
def tty_keys() -> Iterator[tuple[KeyboardKeypad, Callable[[str], None]]]:
    """A keyboard keypad on a pseudo-terminal (keys as typed, like a person at a desk), and a
    function that types text into it."""
    master, slave = os.openpty()
    stream = os.fdopen(slave, "r")
    keypad = KeyboardKeypad(stream)
    yield keypad, lambda text: os.write(master, text.encode()) and None
    keypad.close()
    stream.close()
    os.close(master)


def screens_shown(cfg) -> list[str]:
    directory = Path(cfg.display.directory)
    return [p.stem.split("-", 1)[1] for p in sorted(directory.glob("*.png"))]


def test_keyed_amount_is_paid_shown_lit_sounded_and_printed(make_config, host_sim, phone,
                                                             tmp_path: Path) -> None:
    cfg = make_config(host_sim.port)
    cfg = dataclasses.replace(cfg, printer=dataclasses.replace(cfg.printer, backend="file"))
    phone("visa-online", cfg.reader.path)
    terminal = Terminal.from_config(cfg)
    try:
        service = TerminalService(terminal, KeyboardKeypad(io.StringIO("1250\n")),
                                  currency=CURRENCIES["EUR"], result_hold_s=0)
        assert service.run(max_payments=1) == 1
        terminal.feedback.wait()
        gpio = terminal.feedback.gpio
    finally:
        terminal.close()
    (result,) = service.results
    assert result.outcome == "approved" and result.amount == 1250
    shown = screens_shown(cfg)
    assert shown[:5] == ["ready", "amount_entry", "amount_entry", "amount_entry", "amount_entry"]
    assert shown[5:8] == ["present_card", "processing", "card_read"]
    assert "approved" in shown[8:]
    # all four lights on a good read, and one success tone
    lights = cfg.gpio.led_pins
    counts = [sum(levels.get(p, 0) for p in lights)
              for levels in _levels_over_time(gpio, lights)]
    assert max(counts) == 4  # all four on the good read
    assert counts[-1] == 0  # and off once the outcome is shown
    starts = [e.value for e in gpio.history(cfg.gpio.buzzer_pin, {"pwm_frequency"})]
    assert starts == [1500.0]
    receipts = cfg.state_path(cfg.printer.path).read_bytes()
    assert receipts.count(b"COPY") == 2 and b"12.50" in receipts and b"476173" not in receipts


def _levels_over_time(gpio, pins):
    levels: dict[int, int] = {}
    for e in gpio.history(kinds={"output"}):
        if e.pin in pins:
            levels[e.pin] = int(e.value)
            yield dict(levels)


def test_cancel_and_quit_take_no_payment(make_config, host_sim) -> None:
    cfg = make_config(host_sim.port)
    terminal = Terminal.from_config(cfg)
    try:
        service = TerminalService(terminal, KeyboardKeypad(io.StringIO("99x5cc")),
                                  currency=CURRENCIES["EUR"], result_hold_s=0)
        assert service.run() == 0  # keys end: quit
    finally:
        terminal.close()
    assert service.results == []
    assert screens_shown(cfg).count("ready") == 3  # start, after cancel (x), after clear-out


def test_terminal_that_cannot_start_says_out_of_service(tmp_path: Path) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text(
        f'[terminal]\nstate_dir = "{tmp_path / "state"}"\n'
        '[reader]\npath = "tty:pitap-no-such-port:pn532"\n'
        f'[display]\ndirectory = "{tmp_path / "screens"}"\n'
        f'[kernel]\naid_table = "{Path("config/aids.toml").resolve()}"\n'
        f'capk_file = "{Path("config/capk/test.txt").resolve()}"\n'
        f'[host]\ndialect = "{Path("config/dialects/pitap-default.toml").resolve()}"\n')
    assert main(["run", "--config", str(config), "--max-payments", "1"]) == 1
    shots = sorted((tmp_path / "screens").glob("*.png"))
    assert shots and shots[-1].name.endswith("out_of_service.png")


def test_f2_settles_the_batch_and_shows_the_report(make_config, host_sim, phone) -> None:
    cfg = make_config(host_sim.port)
    phone("visa-online", cfg.reader.path)
    terminal = Terminal.from_config(cfg)
    try:
        service = TerminalService(terminal, KeyboardKeypad(io.StringIO("1250\ns")),
                                  currency=CURRENCIES["EUR"], result_hold_s=0)
        assert service.run() == 1
        report = next(s for s in terminal.feedback.recent if s.name == "settlement")
    finally:
        terminal.close()
    assert service.results[0].outcome == "approved"
    assert report.shows("€12.50") and report.shows("Totals agree")


def test_a_phone_that_left_mid_tap_is_asked_for_the_same_amount_again(
        make_config, host_sim, tty_keys) -> None:
    cfg = make_config(host_sim.port, presentment_timeout_s=10.0)
    keypad, type_keys = tty_keys
    leaving = SimulatedPhone("leaves-field", cfg.reader.path)
    left = leaving.start(taps=1, timeout=30.0)
    terminal = Terminal.from_config(cfg)
    service = TerminalService(terminal, keypad, currency=CURRENCIES["EUR"], result_hold_s=0)
    runner = threading.Thread(target=service.run, kwargs={"max_payments": 2}, daemon=True)
    staying = SimulatedPhone("visa-online", cfg.reader.path)
    try:
        runner.start()
        type_keys("1250\n")
        left.join(30.0)  # that phone is gone; the customer taps again with another
        staying.start(taps=1, timeout=30.0)
        runner.join(60.0)
        assert not runner.is_alive()
    finally:
        leaving.stop()
        staying.stop()
        terminal.close()
    first, second = service.results
    assert (first.outcome, second.outcome) == ("try_again", "approved"), second.reason
    assert first.amount == second.amount == 1250 and second.id == first.id + 1
    shown = screens_shown(cfg)
    assert shown.index("try_again") < len(shown) - 1 - shown[::-1].index("present_card")
    assert [r["approved"] for r in host_sim.ledger.transactions()] == [1]


def start_service(terminal, keypad, **run: object) -> tuple[TerminalService, threading.Thread]:
    service = TerminalService(terminal, keypad, currency=CURRENCIES["EUR"], result_hold_s=0)
    runner = threading.Thread(target=service.run, kwargs=run, daemon=True)
    runner.start()
    return service, runner


def showing(terminal, name: str) -> bool:
    screen = terminal.feedback.last_screen
    return screen is not None and screen.name == name


def test_esc_on_present_card_cancels_at_once_and_keys_pressed_meanwhile_are_dropped(
        make_config, host_sim, tty_keys) -> None:
    cfg = make_config(host_sim.port, presentment_timeout_s=30.0)
    keypad, type_keys = tty_keys
    terminal = Terminal.from_config(cfg)
    try:
        service, runner = start_service(terminal, keypad)
        type_keys("1250\n")
        assert wait_until(lambda: showing(terminal, "present_card"), seconds=10)
        type_keys("99")  # pressed while the terminal waits for a card: dropped
        type_keys("\x1b")  # Esc
        assert wait_until(lambda: service.results, seconds=5)  # far inside the 30 s timeout
        (result,) = service.results
        assert result.outcome == "cancelled"
        assert wait_until(lambda: showing(terminal, "ready"), seconds=5)
        type_keys("q")
        runner.join(10)
        assert not runner.is_alive()
        journal = terminal.journal.payment(result.id)
    finally:
        terminal.close()
    assert journal.outcome == "cancelled"
    assert host_sim.ledger.transactions() == []
    shown = screens_shown(cfg)
    after = shown[shown.index("cancelled"):]
    assert after == ["cancelled", "ready"]  # the 9s typed during the payment never showed up


ROWS, COLS = [4, 17, 27, 22], [23, 16, 20, 21]
LAYOUT = ["123A", "456B", "789C", "*0#D"]


def test_the_cancel_key_of_a_matrix_keypad_cancels_the_wait(make_config, host_sim) -> None:
    from drivers.keypad import MatrixKeypad

    cfg = make_config(host_sim.port, presentment_timeout_s=30.0)
    terminal = Terminal.from_config(cfg)
    gpio = terminal.feedback.gpio
    keypad = MatrixKeypad(gpio, ROWS, COLS, LAYOUT, debounce_ms=20)

    def press(legend: str, release_seen: bool = True) -> None:
        # held until the keypad has taken the press, released until it has seen the release:
        # a busy machine may poll late, never too early
        row = next(i for i, keys in enumerate(LAYOUT) if legend in keys)
        pins = ROWS[row], COLS[LAYOUT[row].index(legend)]
        gpio.connect(*pins)
        assert wait_until(lambda: legend in keypad.reported, seconds=10)
        gpio.disconnect(*pins)
        if release_seen:
            assert wait_until(lambda: legend not in keypad.down_since, seconds=10)

    try:
        service, runner = start_service(terminal, keypad, max_payments=1)
        for legend in "500#":
            press(legend)
        assert wait_until(lambda: showing(terminal, "present_card"), seconds=10)
        press("D", release_seen=False)  # nothing polls the keypad once the wait has ended
        runner.join(10)
        assert not runner.is_alive()
    finally:
        keypad.close()
        terminal.close()
    (result,) = service.results
    assert (result.outcome, result.amount) == ("cancelled", 500)
    assert host_sim.ledger.transactions() == []


def site_config(tmp_path: Path, host_port: int) -> Path:
    """A terminal configuration file for a `pitap` subprocess: udp: reader with nobody tapping,
    the host simulator of the test, screens as PNG, the keyboard as keypad."""
    from simulators.demo import free_port

    config = tmp_path / "terminal.toml"
    config.write_text(
        f'[terminal]\nstate_dir = "{tmp_path / "state"}"\npresentment_timeout_s = 60.0\n'
        f'[reader]\npath = "udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"\n'
        f'[host]\nport = {host_port}\n'
        f'[display]\ndirectory = "{tmp_path / "screens"}"\n')
    return config


def last_screen(tmp_path: Path) -> str:
    shots = sorted((tmp_path / "screens").glob("*.png"))
    return shots[-1].stem.split("-", 1)[1] if shots else ""


def journal_outcomes(tmp_path: Path) -> list[str]:
    from firmware.journal import Journal

    state = tmp_path / "state"
    journal = Journal.open(state / "journal.sqlite", state / "journal.key")
    try:
        return [str(p.outcome) for p in journal.payments()]
    finally:
        journal.close()


def test_sigterm_on_present_card_cancels_and_leaves_the_display_closed(
        tmp_path: Path, host_sim) -> None:
    master, slave = os.openpty()  # a keyboard, as on a desk
    proc = start_pitap("run", "--config", str(site_config(tmp_path, host_sim.port)), stdin=slave)
    os.close(slave)
    try:
        assert wait_until(lambda: last_screen(tmp_path) == "ready", seconds=60)
        os.write(master, b"1250\n")
        assert wait_until(lambda: last_screen(tmp_path) == "present_card", seconds=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    assert last_screen(tmp_path) == "closed"
    assert journal_outcomes(tmp_path) == ["cancelled"]  # the wait ended at once, no charge
    assert host_sim.ledger.transactions() == []


def test_ctrl_c_on_ready_leaves_the_display_closed(tmp_path: Path, host_sim) -> None:
    proc = start_pitap("run", "--config", str(site_config(tmp_path, host_sim.port)),
                       stdin=subprocess.PIPE)  # keys from a pipe that stays open and quiet
    try:
        assert wait_until(lambda: last_screen(tmp_path) == "ready", seconds=60)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
    assert last_screen(tmp_path) == "closed"
    assert journal_outcomes(tmp_path) == []


def test_sigterm_while_pitap_pay_waits_cancels_it_and_leaves_closed(tmp_path: Path,
                                                                     host_sim) -> None:
    proc = start_pitap("pay", "12.50", "--config", str(site_config(tmp_path, host_sim.port)),
                       stdin=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: last_screen(tmp_path) == "present_card", seconds=60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1, err
    assert "cancelled" in out
    assert last_screen(tmp_path) == "closed"
    assert journal_outcomes(tmp_path) == ["cancelled"]
