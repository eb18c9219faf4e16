"""`pitap diag` against a simulated terminal (recorded GPIO pins, PNG display, matrix keypad on the
fake pins, file printer, host simulator on loopback, a real journal, a phone on nfcpy's udp:
driver), with one part broken at a time: exactly that part's check fails, with a hint."""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from drivers.gpio import TONES
from firmware.cli import main
from firmware.config import Config, parse_config, shipped_config_dir
from firmware.provision.diag import CheckResult, DiagContext, run_checks
from simulators.demo import free_port
from simulators.host import testpki


def failed(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results if not r.ok}


def config(tmp: Path, text: str) -> Config:
    path = tmp / "terminal.toml"
    path.write_text(f'[terminal]\nstate_dir = "{tmp / "state"}"\n' + text)
    path.chmod(0o600)
    (tmp / "state").mkdir(mode=0o700, exist_ok=True)
    return parse_config(path.read_text(), path)


# ---- checks that need nothing but this machine ---------------------------------------------


def test_reader_that_is_not_there_fails_with_a_wiring_hint(tmp_path: Path) -> None:
    cfg = config(tmp_path, '[reader]\npath = "tty:PITAPNONE:pn532"\n')
    results = run_checks(DiagContext(cfg, field_timeout=0.2), ["nfc-reader", "nfc-field"])
    bad = failed(results)
    assert set(bad) == {"nfc reader", "nfc field"}
    assert "header UART" in bad["nfc reader"].hint and "enable_uart=1" in bad["nfc reader"].hint
    assert "fix the reader first" in bad["nfc field"].hint


def test_empty_field_fails(tmp_path: Path) -> None:
    cfg = config(tmp_path, f'[reader]\npath = "udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"\n')
    results = run_checks(DiagContext(cfg, field_timeout=0.3), ["nfc-reader", "nfc-field"])
    assert [r.name for r in results if r.ok] == ["nfc reader"]
    assert "hold a contactless card" in failed(results)["nfc field"].hint


def test_clock_that_was_never_set_fails(tmp_path: Path) -> None:
    cfg = config(tmp_path, "")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"built_at_epoch": 1767225600}))  # 2026-01-01
    ok = run_checks(DiagContext(cfg, clock=lambda: 1767225600 + 86400, manifest=manifest),
                    ["clock"])
    assert ok[0].ok
    for bad_time in (0.0, 1767225600 - 86400, 4200000000.0):  # 1970, before the image, 2103
        (r,) = run_checks(DiagContext(cfg, clock=lambda t=bad_time: t, manifest=manifest),
                          ["clock"])
        assert not r.ok and "NTP" in r.hint


def test_low_disk_space_fails(tmp_path: Path) -> None:
    cfg = config(tmp_path, "")
    assert run_checks(DiagContext(cfg, min_free_bytes=1), ["disk"])[0].ok
    (r,) = run_checks(DiagContext(cfg, min_free_bytes=1 << 60), ["disk"])
    assert not r.ok and "journalctl --vacuum-size" in r.hint


def test_missing_module_is_a_failed_check_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "drivers.display", None)  # as if not installed
    cfg = config(tmp_path, "")
    results = run_checks(DiagContext(cfg), ["display", "clock"])
    assert [r.ok for r in results] == [False, True]
    assert "not in this build" in results[0].detail and results[0].hint


def test_tls_off_fails_only_in_production(tmp_path: Path) -> None:
    assert run_checks(DiagContext(config(tmp_path, "")), ["tls"])[0].ok
    prod = parse_config('mode = "production"\n', tmp_path / "p.toml")
    (r,) = run_checks(DiagContext(prod), ["tls"])
    assert not r.ok and "host.tls = true" in r.hint


# ---- TLS against a real TLS server on loopback ---------------------------------------------


def _cert(cn: str, issuer=None, ca: bool = False, days: int = 90):
    """(key, certificate) from the test PKI's own issuer; `issuer` is (CA cert, CA key)."""
    key = testpki.new_key()
    return key, testpki.issue(cn, key, issuer, ca=ca, server=not ca, days=days)


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS server on 127.0.0.1 with a certificate from a test CA; yields (port, CA file)."""
    ca_key, ca = _cert("Test Acquirer CA", ca=True)
    key, cert = _cert("127.0.0.1", (ca, ca_key), days=10)
    (tmp_path / "ca.pem").write_bytes(_pem(ca))
    (tmp_path / "server.pem").write_bytes(_pem(cert) + _pem(key))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "server.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], tmp_path / "ca.pem"
    stop.set()
    thread.join(2)
    listener.close()


def test_tls_with_the_right_ca_passes_and_reports_expiry(
    tmp_path: Path, tls_server: tuple[int, Path]
) -> None:
    port, ca = tls_server
    cfg = config(tmp_path, f'[host]\nport = {port}\ntls = true\nca_file = "{ca}"\n')
    (r,) = run_checks(DiagContext(cfg), ["tls"])
    assert r.ok, r
    assert "valid for 10 more days" in r.detail and "renewal due soon" in r.detail


def test_tls_with_the_wrong_ca_fails(tmp_path: Path, tls_server: tuple[int, Path]) -> None:
    port, _ca = tls_server
    _k, other = _cert("Someone Else CA", ca=True)
    (tmp_path / "other.pem").write_bytes(_pem(other))
    other_ca = tmp_path / "other.pem"
    cfg = config(tmp_path, f'[host]\nport = {port}\ntls = true\nca_file = "{other_ca}"\n')
    (r,) = run_checks(DiagContext(cfg), ["tls"])
    assert not r.ok and "certificate not valid" in r.detail and "acquirer CA" in r.hint


# ---- the whole simulated terminal, one part broken at a time -------------------------------


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., tuple[DiagContext, object]]]:
    """Build a working simulated terminal; the test breaks one part, then runs diag."""
    from firmware import journal as journal_mod
    from simulators import gpio_fake
    from simulators.host import simulator
    from simulators.wallet import phone as wallet

    keypad = "matrix"

    host = simulator.HostSimulator(port=0).start()
    reader_path = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    dialect = shipped_config_dir() / "dialects" / "pitap-default.toml"
    phones: list[object] = []
    built: list[Path] = []

    def build(phone: bool = False, **override: str) -> tuple[DiagContext, object]:
        sections = {
            "reader": f'[reader]\npath = "{reader_path}"\n',
            "host": f'[host]\nport = {host.port}\ndialect = "{dialect}"\n',
            "display": '[display]\nbackend = "png"\n',
            "gpio": '[gpio]\nbackend = "sim"\n',
            "keypad": f'[keypad]\nbackend = "{keypad}"\n',
            "printer": '[printer]\nbackend = "file"\n',
        }
        sections.update({k: v.replace("{dialect}", str(dialect)) for k, v in override.items()})
        home = tmp_path / f"terminal{len(built)}"
        home.mkdir()
        built.append(home)
        cfg = config(home, "".join(sections.values()))
        j = journal_mod.Journal.open(cfg.state_path(cfg.journal.file),
                                     cfg.state_path(cfg.journal.key_file))
        j.close()
        if phone:
            phones.append(wallet.SimulatedPhone(wallet.profile_names()[0], reader_path))
            phones[-1].start(taps=1, timeout=60)
        gpio = gpio_fake.FakeGPIO()
        ctx = DiagContext(cfg, field_timeout=30.0, gpio=gpio, min_free_bytes=1,
                          sleep=lambda _s: None)
        return ctx, gpio

    yield build
    for phone in phones:
        phone.stop()
    host.stop()


def test_working_simulated_terminal_passes_everything(terminal) -> None:
    ctx, _gpio = terminal(phone=True)
    results = run_checks(ctx)
    assert failed(results) == {}, failed(results)
    names = [r.name for r in results]
    assert names[:3] == ["nfc reader", "nfc field", "display"]
    assert [n for n in names if n.startswith("status light")] == [
        f"status light {i}" for i in range(1, 5)]
    assert {"tone success", "tone alert", "keypad", "printer", "clock", "host echo", "tls",
            "disk space", "journal"} <= set(names)
    screens = list((ctx.cfg.state_dir / "screens").glob("*diag-test-pattern.png"))
    assert len(screens) == 1


class BusyPinGPIO:
    """Wraps the fake so one pin is claimed by something else, as rpi-lgpio reports it."""

    def __init__(self, gpio: object, busy: int) -> None:
        self._gpio, self._busy = gpio, busy

    def __getattr__(self, name: str) -> object:
        return getattr(self._gpio, name)

    def setup(self, channel, *args, **kwargs) -> None:  # noqa: ANN001
        if channel == self._busy or (isinstance(channel, list) and self._busy in channel):
            raise RuntimeError("GPIO busy")
        self._gpio.setup(channel, *args, **kwargs)


def test_each_broken_part_fails_alone(terminal, tmp_path: Path) -> None:
    cases: list[tuple[str, Callable[[DiagContext, object], None], set[str]]] = []

    def light_3_busy(ctx: DiagContext, gpio: object) -> None:
        ctx.gpio = BusyPinGPIO(gpio, ctx.cfg.gpio.led_pins[2])

    def buzzer_busy(ctx: DiagContext, gpio: object) -> None:
        ctx.gpio = BusyPinGPIO(gpio, ctx.cfg.gpio.buzzer_pin)

    def stuck_key(ctx: DiagContext, gpio: object) -> None:
        gpio.connect(ctx.cfg.keypad.row_pins[1], ctx.cfg.keypad.col_pins[1])  # "5" held down

    def corrupt_journal(ctx: DiagContext, gpio: object) -> None:
        path = ctx.cfg.state_path(ctx.cfg.journal.file)
        data = bytearray(path.read_bytes())
        data[100:4000] = b"\xa5" * 3900
        path.write_bytes(bytes(data))

    def display_blocked(ctx: DiagContext, gpio: object) -> None:
        (ctx.cfg.state_dir / "screens").write_text("a file where the screens should go")

    cases += [
        ("light 3", light_3_busy, {"status light 3"}),
        ("buzzer", buzzer_busy, {f"tone {tone}" for tone in TONES}),
        ("journal", corrupt_journal, {"journal"}),
        ("display", display_blocked, {"display"}),
    ]
    try:
        import drivers.keypad  # noqa: F401
        cases.append(("keypad", stuck_key, {"keypad"}))
    except ImportError:
        pass
    for label, breaker, expected in cases:
        ctx, gpio = terminal()
        breaker(ctx, gpio)
        bad = failed(run_checks(ctx, ["display", "lights", "tones", "keypad", "journal"]))
        assert set(bad) == expected, (label, bad)
        assert all(r.hint for r in bad.values()), label


@pytest.mark.parametrize(
    ("override", "check", "fails", "hint"),
    [
        ({"host": '[host]\nport = 9\ndialect = "{dialect}"\n'}, "host", "host echo", "firewall"),
        ({"printer": '[printer]\nbackend = "serial"\nport = "/dev/pitap-no-printer"\n'},
         "printer", "printer", "switch the printer on"),
    ],
)
def test_host_and_printer_broken(terminal, override, check, fails, hint) -> None:
    ctx, _gpio = terminal(**override)
    bad = failed(run_checks(ctx, [check]))
    assert set(bad) == {fails} and hint in bad[fails].hint


def test_cli_json_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg_file = tmp_path / "terminal.toml"
    cfg_file.write_text(
        f'[terminal]\nstate_dir = "{tmp_path}"\n[reader]\npath = "tty:PITAPNONE:pn532"\n'
    )
    assert main(["diag", "--json", "--config", str(cfg_file), "--only", "nfc-reader",
                 "--only", "clock"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    checks = [(c["name"], c["ok"]) for c in doc["checks"]]
    assert checks == [("nfc reader", False), ("clock", True)]
    assert doc["checks"][0]["hint"]
    assert main(["diag", "--json", "--config", str(cfg_file), "--only", "clock"]) == 0


RPI = '[gpio]\nbackend = "rpi"\n'  # real pins as configured; the fake stands in for RPi.GPIO


def test_technician_answers_decide_lights_and_tones(terminal) -> None:
    ctx, _gpio = terminal(gpio=RPI)
    answers = {"Is status light 2 on?": False, "Did you hear two low beeps?": False}
    asked: list[str] = []

    def ask(question: str) -> bool:
        asked.append(question)
        return answers.get(question, True)

    ctx.interactive, ctx.ask = True, ask
    bad = failed(run_checks(ctx, ["display", "lights", "tones"]))
    assert set(bad) == {"status light 2", "tone alert"}
    assert "GPIO 6" in bad["status light 2"].hint  # BCM pin of light 2 in the default config
    assert asked == [f"Is status light {i} on?" for i in range(1, 5)] + [
        "Did you hear one high beep?", "Did you hear two low beeps?",
        "Did you hear three short beeps?"]  # a PNG is not looked at


class DeadPinGPIO(BusyPinGPIO):
    """The fake with one pin whose output calls do nothing (a driver that forgot the pin)."""

    def setup(self, channel, *args, **kwargs) -> None:  # noqa: ANN001
        self._gpio.setup(channel, *args, **kwargs)

    def output(self, channel, value) -> None:  # noqa: ANN001
        if channel != self._busy:
            self._gpio.output(channel, value)


def test_simulated_gpio_asks_nothing_and_reports_the_recorded_pins(terminal) -> None:
    ctx, gpio = terminal()
    asked: list[str] = []
    ctx.interactive, ctx.ask = True, lambda q: asked.append(q) or True
    results = {r.name: r for r in run_checks(ctx, ["display", "lights", "tones", "keypad"])}
    assert asked == []
    assert all(r.ok for r in results.values()), results
    assert results["display"].detail.startswith("test pattern written to ")
    assert results["display"].detail.endswith("-diag-test-pattern.png")
    assert results["status light 1"].detail == (
        "BCM 5: driven on, then off (simulated GPIO, recorded)")
    assert results["tone success"].detail == "BCM 12: 1500 Hz (simulated GPIO, recorded)"
    assert results["tone alert"].detail == "BCM 12: 750 Hz, 750 Hz (simulated GPIO, recorded)"
    assert results["keypad"].detail == "no key stuck (simulated GPIO: no key to press)"

    ctx, gpio = terminal()
    ctx.gpio = DeadPinGPIO(gpio, ctx.cfg.gpio.led_pins[3])
    ctx.interactive, ctx.ask = True, lambda q: asked.append(q) or True
    bad = failed(run_checks(ctx, ["lights"]))
    assert set(bad) == {"status light 4"} and "recorded []" in bad["status light 4"].detail
    assert asked == []


def _press_keys(gpio: object, keypad_cfg: object, skip: str, stop: threading.Event) -> None:
    """Press each key (but `skip`) and hold it until the keypad has scanned its row twice: the
    presses follow the scans, however slowly a loaded machine runs them."""
    scans: dict[int, int] = {}
    scanned = threading.Condition()

    def count(event: object) -> None:  # the scanner drives a row low to read its keys
        if event.kind == "output" and event.value == gpio.LOW:
            with scanned:
                scans[event.pin] = scans.get(event.pin, 0) + 1
                scanned.notify_all()

    gpio.add_listener(count)
    for r, row in enumerate(keypad_cfg.layout):
        for c, legend in enumerate(row):
            if legend == skip:
                continue
            row_pin = keypad_cfg.row_pins[r]
            with scanned:
                until = scans.get(row_pin, 0) + 2
            gpio.connect(row_pin, keypad_cfg.col_pins[c])
            with scanned:
                while scans.get(row_pin, 0) < until and not stop.is_set():
                    scanned.wait(0.1)
            gpio.disconnect(row_pin, keypad_cfg.col_pins[c])
            if stop.is_set():
                return


@pytest.mark.parametrize("skip", ["", "C"])
def test_keypad_every_key_pressed(terminal, skip: str) -> None:
    """C and * both mean "clear": a dead C key must still be found."""
    ctx, gpio = terminal(gpio=RPI)
    stop = threading.Event()
    presser = threading.Thread(target=_press_keys, args=(gpio, ctx.cfg.keypad, skip, stop))

    def ask(_question: str) -> bool:
        presser.start()
        return True

    # The check ends when every key was seen, or at the timeout: with a dead key it waits it
    # out, so that case has a shorter one (each press takes two scans, a few ms each).
    ctx.interactive, ctx.ask, ctx.keypad_timeout = True, ask, (6.0 if skip else 60.0)
    try:
        (result,) = run_checks(ctx, ["keypad"])
    finally:
        stop.set()
        presser.join(5)
    if skip:
        assert not result.ok and result.detail == "no press seen for: C"
    else:
        assert result.ok and result.detail == "all 16 keys seen"


def test_pn532_reader_chip_and_field_through_nfcpy(tmp_path: Path) -> None:
    """The emulated PN532 on a pty, opened by nfcpy's own pn532 driver as on a Pi's UART."""
    import emul_support
    with emul_support.emulator(tmp_path) as emu:
        cfg = config(tmp_path, f'[reader]\npath = "{emu.nfcpy_path}"\n')
        empty = run_checks(DiagContext(cfg, field_timeout=0.5), ["nfc-reader", "nfc-field"])
        assert empty[0].ok  # chip and firmware, as nfcpy's pn532 driver read them from the chip
        assert empty[0].detail.startswith("PN532 chip, firmware 1.6 on tty:")
        assert not empty[1].ok
        emu.place_phone(emul_support.TinyApplet())
        tapped = run_checks(DiagContext(cfg, field_timeout=30.0), ["nfc-reader", "nfc-field"])
        assert [r.ok for r in tapped] == [True, True], tapped
        emu.go_silent()
        (dead,) = run_checks(DiagContext(cfg), ["nfc-reader"])
        assert not dead.ok and "header UART" in dead.hint


def test_display_pattern_reaches_an_spi_panel(tmp_path: Path) -> None:
    """ST7789 driver -> emulated panel on the SPI bus: the bars are what a person would see."""
    from simulators.gpio_fake import FakeGPIO
    from simulators.spi_panel import SpiPanelEmulator

    cfg = config(tmp_path, '[display]\nbackend = "st7789"\n[gpio]\nbackend = "sim"\n')
    gpio = FakeGPIO()
    panel = SpiPanelEmulator(gpio, "st7789", dc=cfg.display.gpio_dc, rst=cfg.display.gpio_rst,
                             mounted_turn=90)  # a 240x320 controller mounted landscape
    asked: list[str] = []
    ctx = DiagContext(cfg, gpio=gpio, spi=panel, interactive=True,
                      ask=lambda q: asked.append(q) or True)
    (result,) = run_checks(ctx, ["display"])
    assert result.ok, result
    assert asked == [] and result.detail.endswith("on simulated GPIO (nothing to see)")
    assert panel.faults == []
    seen = panel.image().convert("RGB")
    bars = [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255),
            (255, 0, 0), (0, 0, 255), (0, 0, 0)]
    for i, colour in enumerate(bars):  # RGB565 on the wire: within 8 of each 8-bit channel
        pixel = seen.getpixel((i * 40 + 20, 60))
        assert all(abs(a - b) < 8 for a, b in zip(pixel, colour, strict=True)), (i, pixel)


def test_panel_on_real_pins_is_looked_at(tmp_path: Path) -> None:
    from simulators.gpio_fake import FakeGPIO
    from simulators.spi_panel import SpiPanelEmulator

    cfg = config(tmp_path, '[display]\nbackend = "st7789"\n[gpio]\nbackend = "rpi"\n')
    gpio = FakeGPIO()
    panel = SpiPanelEmulator(gpio, "st7789", dc=cfg.display.gpio_dc, rst=cfg.display.gpio_rst,
                             mounted_turn=90)
    asked: list[str] = []
    ctx = DiagContext(cfg, gpio=gpio, spi=panel, interactive=True,
                      ask=lambda q: asked.append(q) or False)
    (result,) = run_checks(ctx, ["display"])
    assert asked == ["Do you see eight colour bars in a white frame?"]
    assert not result.ok and result.detail.endswith("but not seen") and "backlight" in result.hint


# ---- `pitap diag` at a terminal: a pty as standard input, the technician's keys scripted ----


@pytest.mark.parametrize(
    ("keys", "code", "keypad_line"),
    [(b"0123456789\n\x7f\x1brs", 0, "PASS  keypad           all 15 keys seen from the keyboard"),
     (b"0123\x1bq", 1, "FAIL  keypad           no press seen for: 4-9, Enter, Backspace (clear), "
                       "r (f1), s (f2)")],
    ids=["every-key", "q-stops"],
)
def test_keyboard_keypad_and_sim_gpio_at_a_terminal(
    tmp_path: Path, keys: bytes, code: int, keypad_line: str
) -> None:
    import os
    import pty
    import subprocess
    import termios

    from run_support import PITAP, wait_until

    cfg_file = tmp_path / "terminal.toml"
    cfg_file.write_text(f'[terminal]\nstate_dir = "{tmp_path}"\n[gpio]\nbackend = "sim"\n'
                        '[keypad]\nbackend = "keyboard"\n')
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*PITAP, "diag", "--config", str(cfg_file), "--only", "lights", "--only", "tones",
         "--only", "keypad"], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=tmp_path, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    out = bytearray()
    reading = threading.Thread(target=lambda: [out.extend(chunk) for chunk in
                                               iter(lambda: os.read(proc.stdout.fileno(), 4096),
                                                    b"")], daemon=True)
    reading.start()
    try:
        assert wait_until(lambda: b"press Enter to start" in out, 120), bytes(out)
        os.write(master, b"\n")
        # the keys go once the keypad reads them one by one (the tty left line mode)
        assert wait_until(lambda: not termios.tcgetattr(slave)[3] & termios.ICANON, 60)
        os.write(master, keys)
        assert proc.wait(timeout=120) == code
        restored = termios.tcgetattr(slave)[3] & termios.ICANON  # the technician's terminal
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reading.join(10)
        os.close(master)
        os.close(slave)
    text = out.decode()
    assert "Press each key once (0-9, Enter, Backspace (clear), Esc (cancel), r (f1), s (f2); " \
           "q stops) within 30 s; press Enter to start" in text
    assert "Is status light" not in text and "Did you hear" not in text
    assert "PASS  status light 1   BCM 5: driven on, then off (simulated GPIO, recorded)" in text
    assert keypad_line in text.splitlines()
    assert restored
    assert proc.stderr.read() == b""
