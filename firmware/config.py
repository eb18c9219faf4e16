"""Terminal configuration: TOML file -> typed, validated settings.

Every section is a frozen dataclass; the loader walks the dataclass fields, so an unknown key, a
wrong type or a value out of its range ends in a ConfigError that names the file and the dotted
key. Every number has a stated range (a section's LIMITS) and must be finite; every string a
length (at most MAX_TEXT characters unless LIMITS says otherwise) and no control characters.
Nothing here touches hardware or the network.

Paths: data files (AID table, CA keys, dialects, issuer keys) are looked up next to the
configuration file first, then in the shipped config/ directory; runtime state (journal, keys,
screens) relative to `terminal.state_dir`, itself relative to the configuration file's directory
unless absolute (never to the current directory: a command run from elsewhere finds the same
journal). Files a configuration names are read with `read_data_file`: regular files of at most
MAX_DATA_FILE bytes, never more read than that.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import stat
import sys
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import firmware
from firmware.errors import PitapError
from firmware.money import CURRENCIES, Currency, currency


class ConfigError(PitapError, ValueError):
    """A configuration problem, with a message that names the file and the key."""


# Limits for what a configuration names or holds (README, config/terminal.toml's header).
MAX_DATA_FILE = 1 << 20  # bytes: the configuration and every data file it names (1 MiB)
MAX_TEXT = 255  # characters of a string setting, unless its section's LIMITS says otherwise
PATH = (1, 4096)  # a path setting's length in characters (Linux PATH_MAX)
OPTIONAL_PATH = (0, 4096)  # ... that may be empty (not used)
MAX_LIST = 32  # items of a list setting, unless LIMITS says otherwise
GPIO_PIN = (0, 27)  # a BCM pin number on the Raspberry Pi's header


def shipped_config_dir() -> Path:
    """Where shipped config/ lives: a checkout, installed share/, or $PITAP_CONFIG_DIR."""
    env = os.environ.get("PITAP_CONFIG_DIR")
    if env:
        return Path(env)
    checkout = Path(firmware.__file__).resolve().parent.parent / "config"
    if (checkout / "terminal.toml").is_file():
        return checkout
    return Path(sys.prefix) / "share" / "pitap" / "config"


def find_data_file(name: str | Path, config_dir: Path) -> Path:
    """`name` next to the configuration (config_dir) when it is there, else the shipped one."""
    p = Path(name).expanduser()
    if p.is_absolute():
        return p
    local = config_dir / p
    shipped = shipped_config_dir() / p
    return local if local.exists() or not shipped.exists() else shipped


def default_config_path() -> Path:
    return shipped_config_dir() / "terminal.toml"


@dataclass(frozen=True)
class TerminalSection:
    terminal_id: str = "PITAP001"
    merchant_id: str = "000000000000001"
    merchant_name: str = "Pitap Demo Shop"
    merchant_city: str = "Milano"
    country: int = 380  # ISO 3166 numeric
    currency: str = "EUR"  # ISO 4217 alpha; Config.currency is its firmware.money.Currency
    language: str = "en"
    presentment_timeout_s: float = 15.0
    state_dir: str = "var"  # relative: to the configuration file's directory

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "terminal_id": (1, 8),  # ISO 8583 field 41
        "merchant_id": (1, 15),  # field 42
        "merchant_name": (1, 40),  # field 43's name and the receipt's headline
        "merchant_city": (0, 40),
        "country": (1, 999),
        "language": (1, 16),
        "presentment_timeout_s": (1, 300),
        "state_dir": PATH,
    }

    def validate(self, where: str) -> None:
        if self.currency.upper() not in CURRENCIES:
            raise ConfigError(f"{where}.currency: unknown currency {self.currency!r}")


@dataclass(frozen=True)
class ReaderSection:
    # nfcpy device path: udp:HOST:PORT (simulated), tty:AMA0:pn532, tty:S0:pn532, usb:...
    path: str = "udp:127.0.0.1:54321"

    def validate(self, where: str) -> None:
        kind, *rest = self.path.split(":")
        if kind not in ("udp", "tty", "com", "usb"):
            raise ConfigError(f"{where}.path: udp:..., tty:..., com:... or usb:..., "
                              f"not {self.path!r}")
        if kind == "udp" and rest:  # nfcpy: udp[:HOST[:PORT]]
            port = rest[1] if len(rest) > 1 else ""
            if len(rest) > 2 or (port and not (port.isascii() and port.isdigit()
                                               and 1 <= int(port) <= 65535)):
                raise ConfigError(f"{where}.path: udp:HOST:PORT with a port 1..65535, "
                                  f"not {self.path!r}")


@dataclass(frozen=True)
class HostSection:
    acquirer: str = "iso8583"  # entry point name in the pitap.acquirers group
    dialect: str = "pitap-default"  # config/dialects/<name>.toml, or a path
    host: str = "127.0.0.1"
    port: int = 8583
    tls: bool = False
    ca_file: str = ""  # acquirer CA (pinned) for TLS
    client_cert: str = ""
    client_key: str = ""
    server_name: str = ""
    connect_timeout_s: float = 3.0
    response_timeout_s: float = 10.0
    persistent_connection: bool = True  # keep the link open between messages (else one each)
    saf_interval_s: float = 5.0  # how often the background store-and-forward looks at the queue

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "acquirer": (1, 64),
        "dialect": PATH,
        "host": (1, 253),  # a DNS name's length
        "port": (1, 65535),
        "ca_file": OPTIONAL_PATH,
        "client_cert": OPTIONAL_PATH,
        "client_key": OPTIONAL_PATH,
        "server_name": (0, 253),
        "connect_timeout_s": (0.1, 60),
        "response_timeout_s": (0.1, 120),
        "saf_interval_s": (0.1, 3600),
    }

    def validate(self, where: str) -> None:
        if self.tls and not self.ca_file:
            raise ConfigError(f"{where}.ca_file: required with tls = true (the acquirer's CA)")
        if bool(self.client_cert) != bool(self.client_key):
            raise ConfigError(f"{where}.client_cert and client_key: give both or neither")


@dataclass(frozen=True)
class KernelSection:
    aid_table: str = "aids.toml"  # relative to the config directory
    capk_file: str = "capk/test.txt"
    capk_revoked: str = ""
    floor_limit_override: int = -1  # minor units; -1 = use the AID table

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "aid_table": PATH,
        "capk_file": PATH,
        "capk_revoked": OPTIONAL_PATH,
        "floor_limit_override": (-1, 999_999_999_999),  # 9F02's 12 digits
    }

    def validate(self, where: str) -> None:
        return None


@dataclass(frozen=True)
class JournalSection:
    file: str = "journal.sqlite"  # relative to terminal.state_dir
    key_file: str = "journal.key"  # AES-GCM terminal key, relative to terminal.state_dir
    # Config files and secrets private to the service user? enforce | warn | auto
    # (auto: enforce in production mode, warn in test mode).
    check_permissions: str = "auto"
    retry_first_s: float = 5.0  # store-and-forward: wait after the first failed send
    retry_max_s: float = 300.0  # ... doubling up to this

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "file": PATH,
        "key_file": PATH,
        "retry_first_s": (0.1, 3600),
        "retry_max_s": (0.1, 86400),
    }

    def validate(self, where: str) -> None:
        if Path(self.file).expanduser() == Path(self.key_file).expanduser():
            raise ConfigError(f"{where}.key_file: must not be the journal file itself")
        if self.check_permissions not in ("enforce", "warn", "auto"):
            raise ConfigError(f"{where}.check_permissions: enforce, warn or auto")
        if not (0 < self.retry_first_s <= self.retry_max_s):
            raise ConfigError(f"{where}: 0 < retry_first_s <= retry_max_s")


OFFLINE_SCHEMES = ("visa", "mastercard", "rupay")


@dataclass(frozen=True)
class OfflineSection:
    """Deferred authorization while the acquirer is unreachable: the merchant carries the risk
    (a payment stored here may be declined when it is forwarded). Off by default."""

    enabled: bool = False
    max_amount: int = 5000  # minor units: the most one stored payment may be
    max_total: int = 50000  # minor units: the most stored (not yet forwarded) at once
    max_count: int = 20  # payments stored at once
    max_same_card: int = 1  # stored payments of one card (token) at once
    max_age_h: float = 24.0  # a stored payment older than this: no more storing, warn
    schemes: list[str] = field(default_factory=lambda: ["visa", "mastercard"])

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "max_amount": (1, 999_999_999_999),
        "max_total": (1, 999_999_999_999),
        "max_count": (1, 10_000),
        "max_same_card": (1, 100),
        "max_age_h": (0.1, 720),
        "schemes": (1, 16),
    }
    # With mode = "production" and enabled = true, each of these must be in the file.
    REQUIRED_IN_PRODUCTION: ClassVar[tuple[str, ...]] = (
        "max_amount", "max_total", "max_count", "max_same_card", "max_age_h", "schemes",
    )

    def validate(self, where: str) -> None:
        for scheme in self.schemes:
            if scheme not in OFFLINE_SCHEMES:
                raise ConfigError(f"{where}.schemes: {scheme!r} is not one of "
                                  f"{', '.join(OFFLINE_SCHEMES)}")
        if self.max_amount > self.max_total:
            raise ConfigError(f"{where}.max_amount: must not exceed max_total ({self.max_total})")


TIP_MODES = ("off", "prompt", "adjust")
MAX_TIP_PRESETS = 3  # keys 1..3 of the tip screen (4: another amount, 0: no tip)


@dataclass(frozen=True)
class TipsSection:
    """Tips (firmware.tips): off; asked on the customer's screen before the tap (presets in
    percent of the amount, another amount, no tip); or added after approval (restaurant style,
    `pitap tip ID AMOUNT`). A tip is at most `max_percent` of the amount before the tip."""

    mode: str = "off"  # off | prompt | adjust
    presets: list[int] = field(default_factory=lambda: [10, 15, 20])  # percent, 1..3 of them
    max_percent: int = 25  # the tolerance: a tip at most this percent of the base amount

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "presets": (1, 100),
        "max_percent": (1, 100),
    }

    def validate(self, where: str) -> None:
        if self.mode not in TIP_MODES:
            raise ConfigError(f"{where}.mode: one of {', '.join(TIP_MODES)}, not {self.mode!r}")
        if len(self.presets) > MAX_TIP_PRESETS:
            raise ConfigError(f"{where}.presets: at most {MAX_TIP_PRESETS} percentages, "
                              f"got {len(self.presets)}")
        if len(set(self.presets)) != len(self.presets):
            raise ConfigError(f"{where}.presets: each percentage once")
        for pct in self.presets:
            if pct > self.max_percent:
                raise ConfigError(f"{where}.presets: {pct} is over max_percent "
                                  f"({self.max_percent})")

    @property
    def on(self) -> bool:
        return self.mode != "off"


@dataclass(frozen=True)
class PreauthSection:
    """Pre-authorization (firmware.preauth): how long a hold lasts, and how much more than the
    held total a completion may capture."""

    hold_days: int = 7  # a hold expires this many days after its authorization
    tolerance_pct: float = 15.0  # a completion captures at most the held total plus this %

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "hold_days": (1, 31),
        "tolerance_pct": (0, 50),
    }

    def validate(self, where: str) -> None:
        pass


LOOPBACK = "127.0.0.1"  # the one address the API may serve plain HTTP on


@dataclass(frozen=True)
class ApiSection:
    """The local terminal API and the cashier page (firmware.api), served by `pitap run`: off
    by default; plain HTTP on 127.0.0.1 only, HTTPS (a per-terminal key) on any other address."""

    enabled: bool = False
    bind: str = LOOPBACK  # the address to listen on (IPv4 or IPv6 literal, or 0.0.0.0)
    port: int = 8080
    keys_file: str = "api-keys.json"  # hashed API keys (`pitap api-key`), in terminal.state_dir
    tls_dir: str = "api-tls"  # the terminal's own HTTPS key and certificate, made at first start

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "bind": (1, 64),
        "port": (1, 65535),
        "keys_file": PATH,
        "tls_dir": PATH,
    }

    def validate(self, where: str) -> None:
        try:
            ipaddress.ip_address(self.bind)
        except ValueError:
            raise ConfigError(f"{where}.bind: an IP address (127.0.0.1, 0.0.0.0, ::1...), "
                              f"not {self.bind!r}") from None

    @property
    def tls(self) -> bool:
        """HTTPS unless the API listens on 127.0.0.1 alone."""
        return self.bind != LOOPBACK


@dataclass(frozen=True)
class DisplaySection:
    backend: str = "png"  # png | st7789 | ili9341 | framebuffer | none
    width: int = 320
    height: int = 240
    directory: str = "screens"  # png backend: relative to terminal.state_dir
    spi_port: int = 0
    spi_device: int = 0
    spi_speed_hz: int = 0  # 0: the datasheet rate (ST7789 40 MHz, ILI9341 10 MHz)
    gpio_dc: int = 24
    gpio_rst: int = 25
    gpio_backlight: int = 18  # -1: backlight wired on
    rotate: int = 0
    x_offset: int = 0  # panels smaller than the controller's RAM (240x240 ST7789: 0 / 80)
    y_offset: int = 0
    framebuffer: str = "/dev/fb0"

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "width": (64, 1920),
        "height": (64, 1920),
        "directory": PATH,
        "spi_port": (0, 7),
        "spi_device": (0, 7),
        "spi_speed_hz": (0, 125_000_000),
        "gpio_dc": GPIO_PIN,
        "gpio_rst": GPIO_PIN,
        "gpio_backlight": (-1, 27),
        "rotate": (0, 270),
        "x_offset": (0, 320),
        "y_offset": (0, 320),
        "framebuffer": PATH,
    }

    def validate(self, where: str) -> None:
        if self.backend not in ("png", "st7789", "ili9341", "framebuffer", "none"):
            raise ConfigError(f"{where}.backend: png, st7789, ili9341, framebuffer or none")
        if self.rotate not in (0, 90, 180, 270):
            raise ConfigError(f"{where}.rotate: 0, 90, 180 or 270")
        if self.spi_speed_hz and not (100_000 <= self.spi_speed_hz <= 125_000_000):
            raise ConfigError(f"{where}.spi_speed_hz: 0 (the controller's rate) or "
                              "100000..125000000")
        if self.backend in ("st7789", "ili9341"):
            short, long = sorted((self.width, self.height))
            if short + self.x_offset > 240 or long + self.y_offset > 320:
                raise ConfigError(f"{where}: {self.width}x{self.height} does not fit an "
                                  f"{self.backend}'s 240x320 memory")
            if self.rotate in (90, 270) and self.width != self.height:
                raise ConfigError(
                    f"{where}.rotate: 0 or 180 for a {self.width}x{self.height} panel (its size "
                    "already sets landscape or portrait); 90 and 270 suit square panels")


@dataclass(frozen=True)
class GpioSection:
    backend: str = "sim"  # sim | rpi
    led_pins: list[int] = field(default_factory=lambda: [5, 6, 13, 19])  # BCM, status lights 1-4
    buzzer_pin: int = 12
    buzzer_pwm: bool = True  # passive buzzer driven at the tone's pitch; false: active buzzer
    active_high: bool = True

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "led_pins": GPIO_PIN,
        "buzzer_pin": GPIO_PIN,
    }

    def validate(self, where: str) -> None:
        if self.backend not in ("sim", "rpi"):
            raise ConfigError(f"{where}.backend: sim or rpi")
        if len(self.led_pins) != 4:
            raise ConfigError(f"{where}.led_pins: four BCM pin numbers")
        pins = [*self.led_pins, self.buzzer_pin]
        if len(set(pins)) != len(pins):
            raise ConfigError(f"{where}: led_pins and buzzer_pin must be distinct BCM pins")


@dataclass(frozen=True)
class KeypadSection:
    backend: str = "keyboard"  # keyboard | matrix | buttons | none
    row_pins: list[int] = field(default_factory=lambda: [4, 17, 27, 22])
    col_pins: list[int] = field(default_factory=lambda: [23, 16, 20, 21])
    # The keys' legends, one string a row (left to right); see drivers/keypad.py for meanings.
    layout: list[str] = field(default_factory=lambda: ["123A", "456B", "789C", "*0#D"])
    button_pins: list[int] = field(default_factory=list)  # buttons backend: one pin a key
    button_keys: list[str] = field(default_factory=list)  # ...and its legend, same order
    debounce_ms: int = 30

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "row_pins": GPIO_PIN,
        "col_pins": GPIO_PIN,
        "layout": (1, 8),  # legends a row
        "button_pins": GPIO_PIN,
        "button_keys": (1, 1),  # one legend a button
        "debounce_ms": (1, 500),
    }

    def validate(self, where: str) -> None:
        if self.backend not in ("keyboard", "matrix", "buttons", "none"):
            raise ConfigError(f"{where}.backend: keyboard, matrix, buttons or none")
        if len(self.layout) != len(self.row_pins) or any(
                len(row) != len(self.col_pins) for row in self.layout):
            raise ConfigError(f"{where}.layout: one string a row pin, one legend a column pin")
        if len(self.button_pins) != len(self.button_keys):
            raise ConfigError(f"{where}.button_keys: one legend for each of button_pins")


@dataclass(frozen=True)
class PrinterSection:
    backend: str = "none"  # none | serial | file
    port: str = "/dev/serial0"
    baudrate: int = 19200
    timeout_s: float = 1.0  # status query and write timeout
    check_status: bool = True  # ask the printer (DLE EOT) for online / paper before printing
    columns: int = 32  # characters a line: 32 on 58 mm paper, 48 on 80 mm
    receipt_url: str = ""  # e-receipt QR address, e.g. "https://r.example/{terminal_id}/{id}"
    path: str = "receipts.bin"  # file backend: relative to terminal.state_dir

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "port": PATH,
        "baudrate": (1200, 921_600),
        "timeout_s": (0.1, 60),
        "columns": (16, 64),
        "receipt_url": (0, 512),
        "path": PATH,
    }

    def validate(self, where: str) -> None:
        if self.backend not in ("none", "serial", "file"):
            raise ConfigError(f"{where}.backend: none, serial or file")


@dataclass(frozen=True)
class Config:
    mode: str = "test"  # "test" trusts the test CA keys; "production" refuses them
    terminal: TerminalSection = field(default_factory=TerminalSection)
    reader: ReaderSection = field(default_factory=ReaderSection)
    host: HostSection = field(default_factory=HostSection)
    kernel: KernelSection = field(default_factory=KernelSection)
    journal: JournalSection = field(default_factory=JournalSection)
    offline: OfflineSection = field(default_factory=OfflineSection)
    preauth: PreauthSection = field(default_factory=PreauthSection)
    tips: TipsSection = field(default_factory=TipsSection)
    api: ApiSection = field(default_factory=ApiSection)
    display: DisplaySection = field(default_factory=DisplaySection)
    gpio: GpioSection = field(default_factory=GpioSection)
    keypad: KeypadSection = field(default_factory=KeypadSection)
    printer: PrinterSection = field(default_factory=PrinterSection)
    upi: dict = field(default_factory=dict)  # checked by firmware.upi.config
    voice: dict = field(default_factory=dict)  # checked by firmware.upi.config
    # Where the file was read from; data paths are relative to its directory.
    source: Path = field(default=Path("terminal.toml"), compare=False)

    def validate(self, where: str) -> None:
        if self.mode not in ("test", "production"):
            raise ConfigError(f"{where}mode: 'test' or 'production'")

    # ---- path helpers -------------------------------------------------------------------
    def data_path(self, name: str) -> Path:
        """A data file (AID table, CA keys, dialect...): next to the configuration file when it
        is there, else the one shipped with pitap, so a site file names only what it changes."""
        return find_data_file(name, self.source.parent)

    @property
    def state_dir(self) -> Path:
        """`terminal.state_dir`; a relative one is relative to the configuration file's
        directory, so that every command reading this file finds the same journal."""
        p = Path(self.terminal.state_dir).expanduser()
        return p if p.is_absolute() else self.source.parent / p

    def state_path(self, name: str) -> Path:
        p = Path(name).expanduser()
        return p if p.is_absolute() else self.state_dir / p

    @property
    def currency(self) -> Currency:
        """The terminal's currency (`terminal.currency`, checked when the file was read)."""
        return currency(self.terminal.currency)


def _type_ok(value: object, hint: object) -> bool:
    origin = typing.get_origin(hint)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _span(lo: float, hi: float) -> str:
    """A range as the messages and config/terminal.toml's comments write it: '0.1..60'."""
    ends = [str(v) if isinstance(v, int) else f"{v:g}" for v in (lo, hi)]
    return ends[0] if lo == hi else "..".join(ends)


def _value_problem(value: object, hint: object, bounds: tuple[float, float] | None) -> str:
    """Why a value of the right type is refused, as "must be ..." ('' when it is not): numbers
    finite and within `bounds`, strings `bounds` long (default 0..MAX_TEXT) without control
    characters, a list at most MAX_LIST items, each of them so."""
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            return f"must have at most {MAX_LIST} items, got {len(value)}"
        (item_hint,) = typing.get_args(hint)
        for i, item in enumerate(value, start=1):
            problem = _value_problem(item, item_hint, bounds)
            if problem:
                return f"item {i} {problem}"
        return ""
    if isinstance(value, str):
        lo, hi = bounds or (0, MAX_TEXT)
        if not lo <= len(value) <= hi:
            return f"must be {_span(lo, hi)} character{'s' * (hi != 1)}, got {len(value)}"
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            return "must not hold control characters (tab, newline, NUL...)"
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        assert bounds is not None, "every number in the configuration has a stated range"
        if not bounds[0] <= value <= bounds[1]:
            shown = repr(value) if len(repr(value)) <= 24 else f"{len(str(value))} digits"
            return f"must be {_span(*bounds)}, got {shown}"
    return ""


def _build(cls: type, data: dict, where: str, file: str) -> object:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    kwargs: dict[str, object] = {}
    for key, value in data.items():
        dotted = f"{where}{key}"
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{file}: unknown key '{dotted}' (known here: {known})")
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{file}: '{dotted}' must be a table [{dotted}]")
            kwargs[key] = _build(hint, value, f"{dotted}.", file)
        elif not _type_ok(value, hint):
            name = getattr(hint, "__name__", str(hint))
            shown = repr(value) if len(repr(value)) <= 40 else f"a {type(value).__name__}"
            raise ConfigError(f"{file}: '{dotted}' must be {name}, got {shown}")
        elif problem := _value_problem(value, hint, getattr(cls, "LIMITS", {}).get(key)):
            raise ConfigError(f"{file}: '{dotted}' {problem}")
        else:
            kwargs[key] = float(value) if hint is float else value
    obj = cls(**kwargs)
    try:
        obj.validate(where.rstrip(".") if where else "")
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    return obj


def toml_data(text: str, source: object) -> dict[str, typing.Any]:
    """TOML text as a dict; a syntax error is a ConfigError naming `source`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ConfigError(f"{source}: not valid TOML: {str(exc)[:80]}") from None
    except RecursionError:  # arrays or tables nested thousands deep
        raise ConfigError(f"{source}: not valid TOML: nested too deep") from None


def read_data_file(path: str | os.PathLike[str], what: str, limit: int = MAX_DATA_FILE) -> bytes:
    """The bytes of a file a configuration names (or the configuration itself), read without
    trusting it: a missing or unreadable file, anything but a regular file (a device such as
    /dev/zero, a FIFO, a directory) and a file over `limit` bytes are one ConfigError naming the
    file and `what` it is ("AID table", ...). At most limit + 1 bytes are read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)  # non-blocking: opening a FIFO must not wait for a writer
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    except ValueError:  # a NUL in the path
        raise ConfigError(f"{path!r}: cannot read {what}: not a file name") from None
    size = f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"
    too_big = f"{path}: {what} is over {size}; refused"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a device or pipe"
            raise ConfigError(f"{path}: {what} must be a regular file, not {kind}")
        if st.st_size > limit:
            raise ConfigError(too_big)
        chunks: list[bytes] = []
        left = limit + 1
        while left and (chunk := os.read(fd, min(left, 1 << 16))):
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise ConfigError(too_big)
    return data


def read_text_file(path: str | os.PathLike[str], what: str, limit: int = MAX_DATA_FILE) -> str:
    """`read_data_file` as UTF-8 text; bytes that are not UTF-8 are one ConfigError too."""
    try:
        return read_data_file(path, what, limit).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from None


def read_toml(path: str | os.PathLike[str], what: str) -> dict[str, typing.Any]:
    """A TOML data file as a dict; a missing, unreadable, huge or broken file is one ConfigError
    naming the file and `what` it is ("AID table", "issuer keys file", ...)."""
    return toml_data(read_text_file(path, what), path)


def _config(data: dict[str, typing.Any], source: Path) -> Config:
    cfg = _build(Config, data, "", str(source))
    assert isinstance(cfg, Config)
    if cfg.mode == "production" and cfg.offline.enabled:
        given = data.get("offline", {})
        for key in OfflineSection.REQUIRED_IN_PRODUCTION:
            if key not in given:
                raise ConfigError(f"{source}: 'offline.{key}' must be given explicitly with "
                                  "mode = \"production\" and offline.enabled = true "
                                  "(the merchant carries the risk)")
    return dataclasses.replace(cfg, source=source.resolve())


def parse_config(text: str, source: Path) -> Config:
    """Parse TOML text into a Config; `source` names the file in errors and anchors data paths."""
    return _config(toml_data(text, source), source)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the terminal configuration; None means the shipped default config/terminal.toml.
    The file is read as a data file: a regular file of at most MAX_DATA_FILE bytes."""
    source = Path(path) if path is not None else default_config_path()
    return _config(read_toml(source, "configuration file"), source)
