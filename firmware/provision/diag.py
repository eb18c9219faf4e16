"""The terminal's self-test: one small function a part, each giving pass/fail and a hint.

Checks use the drivers and firmware modules the terminal itself uses (drivers.nfc, drivers.display,
drivers.gpio, drivers.keypad, drivers.printer, firmware.host, firmware.journal), imported inside
each check, so a module missing from this build or a part that raises is reported as a failed
check with a hint, never a crash. Checks that need a person (is the light on? did it beep? press
each key) ask only when `interactive`, and only what the configured hardware lets a person answer:
simulated GPIO has no light to see, tone to hear or key to press (the checks read the recorded
pins instead and say what was driven), a PNG display is a file, and a keyboard keypad is tested
with the keys a keyboard sends. Otherwise they check what the machine can see (the pin could be
driven, no key reads pressed while nobody touches it).

Reads nothing that holds card data: the field test only sees that a card answers; the journal
check opens the journal (integrity check) without decrypting anything.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware.config import Config

if TYPE_CHECKING:
    from PIL import Image

    from drivers.display import Spi
    from drivers.gpio import Gpio
    from drivers.nfc import Reader

log = logging.getLogger(__name__)

MiB = 1024 * 1024
CLOCK_FLOOR = 1735689600  # 2025-01-01: a clock before this was never set
CLOCK_CEILING = 4102444800  # 2100-01-01
MANIFEST = "/opt/pitap/image-manifest.json"


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    hint: str = ""


@dataclass
class DiagContext:
    """What the checks share: the configuration, the technician (or not), and the hardware
    layers a simulated terminal puts below the drivers (gpio, spi)."""

    cfg: Config
    interactive: bool = False
    ask: Callable[[str], bool] = lambda _q: True
    field_timeout: float = 10.0
    keypad_timeout: float = 30.0
    min_free_bytes: int = 100 * MiB
    gpio: Gpio | None = None
    spi: Spi | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep  # times the tones (tests: a simulated clock)
    manifest: Path = Path(MANIFEST)
    reader: Reader | None = None  # opened by the reader check, used by the field check
    notes: dict[str, str] = field(default_factory=dict)

    def gpio_module(self) -> Gpio:
        if self.gpio is None:
            from drivers.gpio import gpio_module

            self.gpio = gpio_module(self.cfg.gpio.backend)
        return self.gpio

    @property
    def gpio_simulated(self) -> bool:
        """The pins are the recording fake: nothing a person could see, hear or press."""
        return self.cfg.gpio.backend == "sim"


def _recorded(gpio: Gpio | None, pin: int) -> list[Any] | None:
    """The simulated pin's recorded events, or None when the module records nothing."""
    history = getattr(gpio, "history", None)
    return None if history is None else list(history(pin))


def _reader_hint(path: str) -> str:
    if path.startswith("tty:"):
        return ("check the PN532's wiring to the header UART (TX to RX, RX to TX, 3.3 V, GND), "
                "its mode switches set to HSU/UART, enable_uart=1 in config.txt and no serial "
                "console on that UART")
    if path.startswith("usb:"):
        return "plug the reader in and check that `lsusb` lists it; try another USB port"
    return f"fix reader.path ({path!r}) in the configuration"


# ---- NFC ------------------------------------------------------------------------------------


def check_nfc_reader(ctx: DiagContext) -> list[CheckResult]:
    from drivers.nfc import Reader, ReaderFault

    path = ctx.cfg.reader.path
    try:
        ctx.reader = Reader(path)
    except ReaderFault as exc:
        return [CheckResult("nfc reader", False, str(exc), _reader_hint(path))]
    description = ctx.reader.description
    chip = re.search(r"(PN53\d)v([\d.]+)", description)  # nfcpy's chipset name, e.g. PN532v1.6
    if chip:
        rest = description.replace(f"({chip.group(0)})", "").strip()
        description = f"{chip.group(1)} chip, firmware {chip.group(2)}" + (
            f" ({rest})" if rest else "")
    return [CheckResult("nfc reader", True, f"{description} on {path}")]


def check_nfc_field(ctx: DiagContext) -> list[CheckResult]:
    from drivers.nfc import ReaderFault, UnsupportedCard

    name = "nfc field"
    if ctx.reader is None:
        return [CheckResult(name, False, "no reader to test", "fix the reader first (above)")]
    if ctx.interactive:
        ctx.ask(f"Hold a card or phone on the reader, then press Enter ({ctx.field_timeout:.0f} s)")
    started = time.monotonic()
    try:
        card = ctx.reader.wait_for_card(ctx.field_timeout)
    except UnsupportedCard as exc:
        return [CheckResult(name, True, f"a card answered ({exc}); the field works")]
    except ReaderFault as exc:
        return [CheckResult(name, False, str(exc), _reader_hint(ctx.cfg.reader.path))]
    finally:
        ctx.reader.release()
    if card is None:
        return [CheckResult(
            name, False, f"no card or phone answered within {ctx.field_timeout:g} s",
            "hold a contactless card or an unlocked phone flat on the antenna during the test; "
            "if one was there, check the antenna cable and that no metal is behind the reader")]
    ms = (time.monotonic() - started) * 1000
    return [CheckResult(name, True, f"an ISO-DEP card or phone answered after {ms:.0f} ms")]


# ---- display, lights, tones, keypad ---------------------------------------------------------


def display_test_pattern(width: int, height: int) -> Image.Image:
    """Eight vertical colour bars, a white frame and a label: every pixel path shows."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "black")
    draw = ImageDraw.Draw(image)
    colours = ["white", "yellow", "cyan", "lime", "magenta", "red", "blue", "black"]
    bar = width / len(colours)
    for i, colour in enumerate(colours):
        draw.rectangle([round(i * bar), 0, round((i + 1) * bar) - 1, height - 1], fill=colour)
    draw.rectangle([0, 0, width - 1, height - 1], outline="white", width=2)
    draw.rectangle([0, height // 2 - 12, width - 1, height // 2 + 12], fill="black")
    draw.text((8, height // 2 - 6), "pitap display test", fill="white")
    return image


def check_display(ctx: DiagContext) -> list[CheckResult]:
    from drivers.display import open_display

    section = ctx.cfg.display
    name = "display"
    if section.backend == "none":
        return [CheckResult(name, True, "no display configured")]
    spi_hint = ("enable SPI (dtparam=spi=on in config.txt) and check the panel's SPI, DC, "
                "RST and backlight wiring against [display] in the configuration")
    hint = {
        "st7789": spi_hint,
        "ili9341": spi_hint,
        "framebuffer": f"check that {section.framebuffer} exists (panel overlay in config.txt)",
        "png": "check that the state directory is writable",
    }.get(section.backend, "check the [display] section of the configuration")
    try:
        gpio = ctx.gpio_module() if section.backend in ("st7789", "ili9341") else ctx.gpio
        display = open_display(section, ctx.cfg.state_dir, gpio=gpio, spi=ctx.spi)
        try:
            display.show(display_test_pattern(section.width, section.height), "diag-test-pattern")
        finally:
            display.close()
    except Exception as exc:  # noqa: BLE001 - any failure of the panel is the result
        return [CheckResult(name, False, f"{section.backend}: {exc}", hint)]
    shown = f"test pattern sent to the {section.backend} display ({section.width}x{section.height})"
    visible = section.backend == "framebuffer" or (
        section.backend in ("st7789", "ili9341") and not ctx.gpio_simulated)
    if section.backend == "png":
        shown = f"test pattern written to {getattr(display, 'last_path', '') or section.directory}"
    elif not visible:
        shown += " on simulated GPIO (nothing to see)"
    question = "Do you see eight colour bars in a white frame?"
    if visible and ctx.interactive and not ctx.ask(question):
        return [CheckResult(name, False, shown + ", but not seen",
                            "check the panel's power and backlight; " + hint)]
    return [CheckResult(name, True, shown)]


def check_status_lights(ctx: DiagContext) -> list[CheckResult]:
    """Each light alone: its pin must be drivable (and, with a technician, be seen lit)."""
    from drivers.gpio import prepare

    gpio_cfg = ctx.cfg.gpio
    try:
        gpio = ctx.gpio_module()
        prepare(gpio)
    except Exception as exc:  # noqa: BLE001
        return [CheckResult("status lights", False, str(exc),
                            "install pitap[pi] on the Pi (rpi-lgpio on a Pi 5)")]
    on = gpio.HIGH if gpio_cfg.active_high else gpio.LOW
    off = gpio.LOW if gpio_cfg.active_high else gpio.HIGH
    person = ctx.interactive and not ctx.gpio_simulated
    results = []
    for number, pin in enumerate(gpio_cfg.led_pins, start=1):
        name = f"status light {number}"
        try:
            gpio.setup(pin, gpio.OUT, initial=off)
            gpio.output(pin, on)
            seen = ctx.ask(f"Is status light {number} on?") if person else True
            gpio.output(pin, off)
        except Exception as exc:  # noqa: BLE001
            results.append(CheckResult(
                name, False, f"BCM {pin}: {exc}",
                f"GPIO {pin} is in use by something else (an overlay in config.txt, another "
                "program) or the pin number in gpio.led_pins is wrong"))
            continue
        events = _recorded(gpio, pin) if ctx.gpio_simulated else None
        if events is not None:
            levels = [e.value for e in events if e.kind == "output"][-2:]
            if levels != [on, off]:
                results.append(CheckResult(
                    name, False, f"BCM {pin}: simulated pin recorded {levels}, not on then off",
                    "the status light driver did not drive the pin: report this with "
                    "`pitap -vv diag`"))
            else:
                results.append(CheckResult(
                    name, True, f"BCM {pin}: driven on, then off (simulated GPIO, recorded)"))
        elif not seen:
            results.append(CheckResult(name, False, f"BCM {pin} driven but the light stayed off",
                                       f"check the LED, its resistor and the wire to GPIO {pin}"))
        else:
            how = "seen lit" if person else "pin driven (run interactively to see it)"
            results.append(CheckResult(name, True, f"BCM {pin}: {how}"))
    return results


class _BuzzerFailures(logging.Handler):
    """The buzzer plays on a worker thread that logs its failures: collect them here."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        self.messages.append(str(exc) if exc else record.getMessage())


def check_tones(ctx: DiagContext) -> list[CheckResult]:
    from drivers.gpio import TONES, Buzzer

    gpio_cfg = ctx.cfg.gpio
    descriptions = {"success": "one high beep", "alert": "two low beeps",
                    "attention": "three short beeps"}
    try:
        gpio = ctx.gpio_module()
        buzzer = Buzzer(gpio, gpio_cfg.buzzer_pin, gpio_cfg.active_high,
                        pwm=gpio_cfg.buzzer_pwm, sleep=ctx.sleep)
    except Exception as exc:  # noqa: BLE001
        return [CheckResult(f"tone {t}", False, f"buzzer on BCM {gpio_cfg.buzzer_pin}: {exc}",
                            "check gpio.buzzer_pin and that nothing else uses that pin")
                for t in TONES]
    pin = gpio_cfg.buzzer_pin
    results = []
    watcher = _BuzzerFailures()
    driver_log = logging.getLogger("drivers.gpio")
    driver_log.addHandler(watcher)
    try:
        for tone in TONES:
            name = f"tone {tone}"
            watcher.messages.clear()
            before = _recorded(gpio, pin) if ctx.gpio_simulated else None
            buzzer.play(tone)
            finished = buzzer.wait(5.0)
            if not finished or watcher.messages:
                why = watcher.messages[0] if watcher.messages else "did not finish in 5 s"
                results.append(CheckResult(name, False, f"BCM {pin}: {why}",
                                           "check the buzzer pin and gpio.buzzer_pwm (passive "
                                           "buzzers need PWM, active ones must not get it)"))
                continue
            if before is not None:
                results.append(_recorded_tone(name, gpio, pin, len(before), tone,
                                              gpio_cfg.buzzer_pwm, buzzer.on_level))
                continue
            heard = ctx.ask(f"Did you hear {descriptions.get(tone, tone)}?") \
                if ctx.interactive else True
            if heard:
                how = "heard" if ctx.interactive else "played (run interactively to hear it)"
                results.append(CheckResult(name, True, how))
            else:
                results.append(CheckResult(name, False, "played but not heard",
                                           "check the buzzer's wiring and polarity"))
    finally:
        driver_log.removeHandler(watcher)
        try:
            buzzer.close()
        except Exception:  # noqa: BLE001
            log.debug("buzzer close failed", exc_info=True)
    return results


def _recorded_tone(name: str, gpio: Gpio | None, pin: int, since: int, tone: str, pwm: bool,
                   on_level: int) -> CheckResult:
    """What the simulated buzzer pin recorded for one tone, against the tone's steps."""
    from drivers.gpio import TONES

    wanted = [frequency for frequency, _on, _off in TONES[tone]]
    frequency = 0.0
    played: list[float] = []
    for i, event in enumerate(_recorded(gpio, pin) or []):
        if event.kind == "pwm_frequency":
            frequency = event.value  # a PWM keeps its frequency from one tone to the next
        elif i >= since and (event.kind == "pwm_start" if pwm else
                             event.kind == "output" and event.value == on_level):
            played.append(frequency if pwm else 0.0)
    if pwm:
        what = ", ".join(f"{f:g} Hz" for f in played) or "nothing"
        ok = played == wanted
    else:
        what = f"{len(played)} beep(s), no PWM"
        ok = len(played) == len(wanted)
    if not ok:
        return CheckResult(name, False, f"BCM {pin}: simulated pin recorded {what}",
                           "the buzzer driver did not play the tone: report this with "
                           "`pitap -vv diag`")
    return CheckResult(name, True, f"BCM {pin}: {what} (simulated GPIO, recorded)")


def check_keypad(ctx: DiagContext) -> list[CheckResult]:
    section = ctx.cfg.keypad
    name = "keypad"
    if section.backend == "none":
        return [CheckResult(name, True, "no keypad configured")]
    if section.backend == "keyboard":
        return _check_keyboard(ctx)
    from drivers.keypad import open_keypad
    try:
        gpio = ctx.gpio_module() if section.backend in ("matrix", "buttons") else None
        keypad = open_keypad(section, gpio=gpio)
    except Exception as exc:  # noqa: BLE001
        return [CheckResult(name, False, f"{section.backend}: {exc}",
                            "check keypad.row_pins / col_pins and the ribbon cable")]
    try:
        scan = getattr(keypad, "scan", None)
        if scan is not None:
            stuck = sorted(scan())
            if stuck:
                return [CheckResult(
                    name, False, f"key(s) {' '.join(stuck)} read pressed with nobody touching",
                    "a stuck key or a short between a row and a column wire: clean or replace "
                    "the keypad, check the ribbon cable")]
        if not ctx.interactive or ctx.gpio_simulated:
            what = "no key stuck" if scan is not None else f"{section.backend} keypad opened"
            why = ("simulated GPIO: no key to press" if ctx.gpio_simulated
                   else "run interactively to press each key")
            return [CheckResult(name, True, f"{what} ({why})")]
        legends = [ch for row in section.layout for ch in row]
        if section.backend == "buttons":
            legends = list(section.button_keys)
        ctx.ask(f"Press every key once ({' '.join(legends)}) within "
                f"{ctx.keypad_timeout:g} s; press Enter to start")
        seen: set[str] = set()
        deadline = time.monotonic() + ctx.keypad_timeout
        if scan is not None:  # legends as wired: two keys with one meaning are told apart
            wanted = set(legends)
            while wanted - seen and time.monotonic() < deadline:
                seen |= scan()
                time.sleep(0.005)
        else:
            wanted = set(_key_names(legends))
            while wanted - seen and time.monotonic() < deadline:
                key = keypad.read_key(timeout=max(0.0, deadline - time.monotonic()))
                if key is not None:
                    seen.add(key)
        missing = sorted(wanted - seen)
        if missing:
            return [CheckResult(name, False, f"no press seen for: {' '.join(missing)}",
                                "those keys' row or column wire is open, or the key is worn: "
                                "check the ribbon cable, then replace the keypad")]
        return [CheckResult(name, True, f"all {len(wanted)} keys seen")]
    finally:
        keypad.close()


# How a keyboard's keys are called on the keycaps (the rest are the characters themselves).
KEYCAPS = {"\n": "Enter", "\x7f": "Backspace", "\x1b": "Esc"}


def _keyboard_keys() -> dict[str, str]:
    """Key name -> the keyboard key that sends it (the first of drivers.keypad.KEYBOARD's)."""
    from drivers.keypad import KEYBOARD

    keys: dict[str, str] = {}
    for char, key in KEYBOARD.items():
        if key != "quit":
            keys.setdefault(key, KEYCAPS.get(char, char))
    return keys


def _keycaps(keys: dict[str, str], names: list[str]) -> str:
    digits = sorted(int(n) for n in names if n.isdigit())
    run = len(digits) > 2 and digits == list(range(digits[0], digits[-1] + 1))
    shown = [f"{digits[0]}-{digits[-1]}"] if run else [str(d) for d in digits]
    shown += [keys[n] if keys[n].lower() == n else f"{keys[n]} ({n})"
              for n in names if not n.isdigit()]
    return ", ".join(shown)


def _check_keyboard(ctx: DiagContext) -> list[CheckResult]:
    """A keyboard has no wires to test: ask for each key pitap uses, as the keyboard sends it."""
    from drivers.keypad import open_keypad

    name = "keypad"
    if not ctx.interactive:
        return [CheckResult(name, True, "keyboard (run interactively to press each key)")]
    keys = _keyboard_keys()
    ctx.ask(f"Press each key once ({_keycaps(keys, list(keys))}; q stops) within "
            f"{ctx.keypad_timeout:g} s; press Enter to start")
    keypad = open_keypad(ctx.cfg.keypad)  # after the answer: from here keys come one by one
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + ctx.keypad_timeout
        while set(keys) - seen and time.monotonic() < deadline:
            key = keypad.read_key(timeout=max(0.0, deadline - time.monotonic()))
            if key == "quit":  # q, or the input ended
                break
            if key is not None:
                seen.add(key)
    finally:
        keypad.close()
    missing = [n for n in keys if n not in seen]
    if missing:
        return [CheckResult(name, False, f"no press seen for: {_keycaps(keys, missing)}",
                            "press those keys again; if the keyboard sends nothing for one, "
                            "check its layout and that the terminal window passes it on")]
    return [CheckResult(name, True, f"all {len(keys)} keys seen from the keyboard")]


def _key_names(legends: list[str]) -> list[str]:
    try:
        from drivers.keypad import KEY_NAMES
    except ImportError:
        return legends
    return [KEY_NAMES.get(ch, ch) for ch in legends]


def check_printer(ctx: DiagContext) -> list[CheckResult]:
    from drivers.printer import PrinterProblem, SerialPrinter, open_printer

    section = ctx.cfg.printer
    name = "printer"
    if section.backend == "none":
        return [CheckResult(name, True, "no printer configured")]
    try:
        printer = open_printer(section, ctx.cfg.state_dir)
    except Exception as exc:  # noqa: BLE001
        return [CheckResult(name, False, str(exc), "check the [printer] section")]
    if isinstance(printer, SerialPrinter):
        hints = {"offline": f"switch the printer on and check its cable to {section.port}",
                 "no_paper": "load a paper roll and close the cover"}
        try:
            port = printer._open()
            try:
                printer.status(port)
            finally:
                port.close()
        except PrinterProblem as exc:
            return [CheckResult(name, False, str(exc), hints.get(exc.kind, "check the printer"))]
        except Exception as exc:  # noqa: BLE001
            return [CheckResult(name, False, f"{section.port}: {exc}", hints["offline"])]
        return [CheckResult(name, True, f"online with paper on {section.port}")]
    path = Path(getattr(printer, "path", section.path))
    directory = path.parent if path.parent.exists() else None
    if directory is None or not os.access(directory, os.W_OK):
        return [CheckResult(name, False, f"cannot write receipts to {path}",
                            "check that the state directory exists and is writable")]
    return [CheckResult(name, True, f"receipts go to {path}")]


# ---- clock, host, TLS -----------------------------------------------------------------------


def check_clock(ctx: DiagContext) -> list[CheckResult]:
    now = ctx.clock()
    floor = CLOCK_FLOOR
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # not an image build
        floor = max(floor, int(json.loads(ctx.manifest.read_text())["built_at_epoch"]))
    shown = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    if now < floor or now > CLOCK_CEILING:
        return [CheckResult(
            "clock", False, f"the clock says {shown}, which cannot be right",
            "connect the terminal to a network with NTP (timedatectl) or fit an RTC battery; "
            "card and TLS certificate dates are checked against this clock")]
    return [CheckResult("clock", True, shown)]


def check_host_echo(ctx: DiagContext) -> list[CheckResult]:
    from firmware.host import connect
    from firmware.host.acquirer import HostUnavailable, NoReply

    host = ctx.cfg.host
    where = f"{host.host}:{host.port}"
    name = "host echo"
    started = time.monotonic()
    try:
        acquirer = connect(ctx.cfg)
    except Exception as exc:  # noqa: BLE001
        return [CheckResult(name, False, str(exc), "check the [host] section")]
    try:
        answered = acquirer.echo()
    except HostUnavailable as exc:
        return [CheckResult(name, False, f"{where} not reachable: {exc}",
                            "check the network (cable / Wi-Fi), DNS, and that the firewall "
                            f"lets TCP port {host.port} out")]
    except NoReply as exc:
        return [CheckResult(name, False, f"{where} connected but gave no usable answer: {exc}",
                            "check host.port and host.dialect with the acquirer")]
    except Exception as exc:  # noqa: BLE001
        return [CheckResult(name, False, f"{where}: {exc}", "check the [host] section")]
    finally:
        try:
            acquirer.close()
        except Exception:  # noqa: BLE001
            log.debug("acquirer close failed", exc_info=True)
    ms = (time.monotonic() - started) * 1000
    if not answered:
        return [CheckResult(name, False, f"{where} refused the 0800 echo",
                            "ask the acquirer whether this terminal id is enabled")]
    return [CheckResult(name, True, f"0800 echo answered by {where} in {ms:.0f} ms")]


def check_tls(ctx: DiagContext) -> list[CheckResult]:
    cfg, host = ctx.cfg, ctx.cfg.host
    name = "tls"
    if not host.tls:
        if cfg.mode == "production":
            return [CheckResult(name, False, "TLS is off in production mode",
                                "set host.tls = true and host.ca_file (re-provision)")]
        return [CheckResult(name, True, "TLS not used (test mode)")]
    if not host.ca_file:
        return [CheckResult(name, False, "host.ca_file is not set",
                            "re-provision with the acquirer's CA certificate (ca_pem)")]
    server_name = host.server_name or host.host
    try:
        context = ssl.create_default_context(cafile=str(cfg.data_path(host.ca_file)))
        if host.client_cert:
            context.load_cert_chain(str(cfg.data_path(host.client_cert)),
                                    str(cfg.data_path(host.client_key)) if host.client_key
                                    else None)
        with socket.create_connection((host.host, host.port), host.connect_timeout_s) as raw, \
                context.wrap_socket(raw, server_hostname=server_name) as tls:
            cert = tls.getpeercert() or {}
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        return [CheckResult(name, False, f"{server_name}: certificate not valid: "
                                         f"{exc.verify_message}",
                            "the acquirer CA in the configuration does not match the host's "
                            "certificate, the host name differs, or the clock is wrong")]
    except (ssl.SSLError, OSError) as exc:
        return [CheckResult(name, False, f"{server_name}: TLS handshake failed: {exc}",
                            "check host.port (a TLS port), the client certificate and key")]
    not_after = cert.get("notAfter")
    expires = ssl.cert_time_to_seconds(not_after) if isinstance(not_after, str) else None
    days = (expires - ctx.clock()) / 86400 if expires else None
    detail = f"{version} to {server_name}, certificate valid"
    if days is not None:
        detail += f" for {days:.0f} more days"
        if days < 30:
            detail += " (renewal due soon: tell the acquirer)"
    return [CheckResult(name, True, detail)]


# ---- storage --------------------------------------------------------------------------------


def check_disk(ctx: DiagContext) -> list[CheckResult]:
    where = ctx.cfg.state_dir.resolve()
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    detail = f"{usage.free / MiB:.0f} MiB free of {usage.total / MiB:.0f} MiB at {where}"
    if usage.free < ctx.min_free_bytes:
        return [CheckResult("disk space", False, detail,
                            "free space: `journalctl --vacuum-size=50M`, remove old screens "
                            "and receipts; a full card stops the journal")]
    return [CheckResult("disk space", True, detail)]


def check_journal(ctx: DiagContext) -> list[CheckResult]:
    from firmware.journal import Journal, JournalCorrupt, JournalError

    cfg = ctx.cfg
    path = cfg.state_path(cfg.journal.file)
    name = "journal"
    if not path.exists():
        return [CheckResult(name, True, f"no journal yet at {path} (a new terminal)")]
    try:
        journal = Journal.open(path, cfg.state_path(cfg.journal.key_file), create_key=False)
    except JournalCorrupt as exc:
        return [CheckResult(name, False, str(exc),
                            "stop pitap, copy the journal file off the terminal for recovery, "
                            "and call support before taking payments")]
    except JournalError as exc:
        return [CheckResult(name, False, str(exc), "re-provision the journal key (0600)")]
    try:
        payments = len(journal.payments())
        queued = len(journal.queue())
    finally:
        journal.close()
    results = [CheckResult(name, True, f"integrity ok: {payments} payment(s), {queued} queued "
                                       "for the host")]
    try:
        from firmware.private_files import problems
    except ImportError:
        return results
    found = problems(cfg)
    if found:
        results.append(CheckResult("private files", False, found[0],
                                   "make configuration and secrets readable by pitap only"))
    return results


def check_api(ctx: DiagContext) -> list[CheckResult]:
    """The terminal API ([api]): where it listens, its keys, and the SHA-256 fingerprint of its
    HTTPS certificate (for the till to pin)."""
    from firmware.api.keys import ApiKeyError, ApiKeys

    api = ctx.cfg.api
    name = "terminal API"
    if not api.enabled:
        return [CheckResult(name, True, "off ([api] enabled = false)")]
    try:
        keys = ApiKeys(ctx.cfg.state_path(api.keys_file)).entries()
    except ApiKeyError as exc:
        return [CheckResult(name, False, str(exc), "pitap api-key list; make the keys again")]
    where = f"{'HTTPS' if api.tls else 'HTTP'} on {api.bind}:{api.port}, {len(keys)} key(s)"
    results = [CheckResult(name, bool(keys), where,
                           "" if keys else "make a key for the till: pitap api-key add NAME")]
    if api.tls:
        from firmware.api.tls import certificate_paths, fingerprint

        _key, cert = certificate_paths(ctx.cfg)
        if cert.is_file():
            results.append(CheckResult("API certificate", True,
                                       f"SHA-256 fingerprint {fingerprint(cert)}"))
        else:
            results.append(CheckResult("API certificate", True, "not made yet: the first "
                                       "`pitap run` makes it (run diag again then)"))
    return results


CHECKS: dict[str, Callable[[DiagContext], list[CheckResult]]] = {
    "nfc-reader": check_nfc_reader,
    "nfc-field": check_nfc_field,
    "display": check_display,
    "lights": check_status_lights,
    "tones": check_tones,
    "keypad": check_keypad,
    "printer": check_printer,
    "clock": check_clock,
    "host": check_host_echo,
    "tls": check_tls,
    "disk": check_disk,
    "journal": check_journal,
    "api": check_api,
}


def run_checks(ctx: DiagContext, only: list[str] | None = None) -> list[CheckResult]:
    """Run the checks in order; a missing module or an unexpected error fails that check only."""
    results: list[CheckResult] = []
    for key, check in CHECKS.items():
        if only and key not in only:
            continue
        try:
            results += check(ctx)
        except ImportError as exc:
            results.append(CheckResult(key, False, f"not in this build ({exc})",
                                       "install the complete pitap release on the terminal"))
        except Exception as exc:  # noqa: BLE001 - one broken part must not hide the others
            log.debug("check %s raised", key, exc_info=True)
            results.append(CheckResult(key, False, f"unexpected error: {exc!r}",
                                       "report this with `pitap -vv diag`"))
    if ctx.reader is not None:
        ctx.reader.close()
        ctx.reader = None
    return results


def report_json(results: list[CheckResult]) -> str:
    return json.dumps({"ok": all(r.ok for r in results),
                       "checks": [asdict(r) for r in results]}, indent=1)


def report_text(results: list[CheckResult]) -> str:
    lines = []
    for r in results:
        lines.append(f"{'PASS' if r.ok else 'FAIL'}  {r.name:<16} {r.detail}")
        if not r.ok and r.hint:
            lines.append(f"      {'':<16} hint: {r.hint}")
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)
