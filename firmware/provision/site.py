"""The per-terminal provisioning file (site file): parse, validate, and turn into settings.

A technician's file (see config/site.example.toml) names the terminal and merchant, the
acquirer endpoint and dialect, the TLS material and keys, and the hardware fitted. `load_site`
returns a `Site` or raises `SiteError` with one line naming the file, the key and what is wrong.
`terminal_toml(site, paths)` renders the terminal.toml the firmware loads (secrets by path only);
`secret_files(site)` the secret material that first boot moves into the root-only directory.
In production mode the placeholders of the shipped example (config/site.example.toml: its CA,
its made-up CA public key, reserved example host names) are refused. A `[test]` section (test
mode only) turns on the field check that tests/field/ boots an image with. Pure: no files
written, nothing read but the given text and the shipped example and test keys.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.config import ConfigError, parse_config, read_text_file
from firmware.errors import PitapError
from firmware.money import CURRENCIES

SITE_FILE_NAME = "pitap-site.toml"  # the name on the boot partition


class SiteError(PitapError, ValueError):
    """A mistake in the provisioning file; the message names the file and the key."""


@dataclass(frozen=True)
class Hardware:
    reader: str = "tty:AMA0:pn532"
    uart: bool = True  # enable_uart=1 and the serial console off (PN532 on the header UART)
    uart0_pi5: bool = False  # dtoverlay=uart0-pi5: the header UART on a Raspberry Pi 5
    spi: bool = True  # dtparam=spi=on: an SPI panel
    display: str = "st7789"
    gpio: str = "rpi"
    keypad: str = "matrix"
    printer: str = "none"
    printer_port: str = "/dev/ttyUSB0"


@dataclass(frozen=True)
class FieldCheck:
    """`[test]` of a test-mode site file: after boot the terminal runs the host simulator on its
    loopback, takes one payment from a simulated phone, runs `pitap diag`, records the results
    and powers off (firmware.provision.fieldcheck; what `make field-test` boots)."""

    wallet: str = "visa-online"
    amount: int = 1250  # minor units


@dataclass(frozen=True)
class Site:
    source: str
    mode: str
    terminal: dict[str, Any]
    acquirer: dict[str, Any]
    journal_key: bytes | None = None
    key_block: str | None = None
    capk: str | None = None  # the live CA public keys, kernel capk file format
    hardware: Hardware = field(default_factory=Hardware)
    field_check: FieldCheck | None = None

    @property
    def config_txt_lines(self) -> list[str]:
        """The config.txt lines this terminal's hardware needs, in a fixed order."""
        lines = []
        if self.hardware.spi:
            lines.append("dtparam=spi=on")
        if self.hardware.uart:
            lines.append("enable_uart=1")
        if self.hardware.uart0_pi5:
            lines.append("dtoverlay=uart0-pi5")
        return lines


# key -> (type, required); the order is the order errors are looked for
_TERMINAL_KEYS: dict[str, tuple[type, bool]] = {
    "terminal_id": (str, True),
    "merchant_id": (str, True),
    "merchant_name": (str, False),
    "merchant_city": (str, False),
    "country": (int, False),
    "currency": (str, False),
    "language": (str, False),
}
_ACQUIRER_KEYS: dict[str, tuple[type, bool]] = {
    "host": (str, True),
    "port": (int, True),
    "dialect": (str, False),
    "tls": (bool, False),
    "server_name": (str, False),
    "ca_pem": (str, False),
    "client_cert_pem": (str, False),
    "client_key_pem": (str, False),
}
_KEYS_KEYS: dict[str, tuple[type, bool]] = {"journal_key": (str, False), "key_block": (str, False)}
_KERNEL_KEYS: dict[str, tuple[type, bool]] = {"capk": (str, False)}
_HARDWARE_KEYS: dict[str, tuple[type, bool]] = {
    "reader": (str, False),
    "uart": (bool, False),
    "uart0_pi5": (bool, False),
    "spi": (bool, False),
    "display": (str, False),
    "gpio": (str, False),
    "keypad": (str, False),
    "printer": (str, False),
    "printer_port": (str, False),
}
_TEST_KEYS: dict[str, tuple[type, bool]] = {
    "field_check": (bool, False),
    "wallet": (str, False),
    "amount": (int, False),
}
_SECTIONS = {
    "terminal": _TERMINAL_KEYS,
    "acquirer": _ACQUIRER_KEYS,
    "keys": _KEYS_KEYS,
    "kernel": _KERNEL_KEYS,
    "hardware": _HARDWARE_KEYS,
    "test": _TEST_KEYS,
}
_CONFIG_TO_SITE_KEYS = {
    "display.backend": "'hardware.display'",
    "gpio.backend": "'hardware.gpio'",
    "keypad.backend": "'hardware.keypad'",
    "printer.backend": "'hardware.printer'",
    "reader.path": "'hardware.reader'",
    "terminal.language": "'terminal.language'",
}
_SECRET_KEYS = {"client_key_pem", "journal_key", "key_block"}
_UART_READERS = ("tty:AMA0", "tty:S0", "tty:serial0", "tty:AMA10")
_SPI_DISPLAYS = ("st7789", "ili9341")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_DIALECT = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# Names reserved for examples and tests (RFC 2606, RFC 6761): never a live acquirer.
_RESERVED_DOMAINS = ("example", "example.com", "example.net", "example.org", "test", "invalid")
EXAMPLE_SITE_FILE = "site.example.toml"  # in the shipped config/


def _section(data: dict, name: str, file: str) -> dict[str, Any]:
    spec = _SECTIONS[name]
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise SiteError(f"{file}: '{name}' must be a table [{name}]")
    for key, value in raw.items():
        if key not in spec:
            raise SiteError(
                f"{file}: unknown key '{name}.{key}' (known here: {', '.join(sorted(spec))})"
            )
        kind, _required = spec[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            shown = "a value not shown (secret)" if key in _SECRET_KEYS else repr(value)
            raise SiteError(f"{file}: '{name}.{key}' must be {kind.__name__}, got {shown}")
    for key, (_kind, required) in spec.items():
        if required and key not in raw:
            raise SiteError(f"{file}: '{name}.{key}' is missing (required)")
    return dict(raw)


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_capk(text: str, mode: str, where: str) -> None:
    """Every line a valid CA key (checksum included); in production none a test key."""
    from firmware.config import shipped_config_dir
    from firmware.emv import capk

    shipped = shipped_config_dir() / "capk"
    known_test = capk.load_public_test_moduli(shipped / "public-test-keys.txt")
    known_test |= capk.load_public_test_moduli(shipped / "test.txt")
    count = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = capk.parse_line(line, f"line {number}")
        except ValueError as exc:
            raise SiteError(f"{where} line {number}: {exc}") from None
        if mode == "production" and (key.test or key.modulus in known_test):
            raise SiteError(f"{where} line {number}: {key.rid.hex().upper()} #{key.index:02X} "
                            "is a test key; production mode needs the live keys")
        count += 1
    if count == 0:
        raise SiteError(f"{where}: no CA key lines (RID INDEX EXPIRY rsa EXP MODULUS sha1 SUM)")


def _example_placeholders() -> tuple[bytes | None, set[str]]:
    """The shipped example's CA certificate (DER) and CA public key moduli (hex), which a
    production file must have replaced."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from firmware.config import shipped_config_dir
    from firmware.emv import capk

    try:
        example = tomllib.loads((shipped_config_dir() / EXAMPLE_SITE_FILE).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None, set()
    ca_der = None
    with contextlib.suppress(KeyError, ValueError):
        ca_der = x509.load_pem_x509_certificate(
            example["acquirer"]["ca_pem"].encode()).public_bytes(Encoding.DER)
    moduli = set()
    for line in example.get("kernel", {}).get("capk", "").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                moduli.add(capk.parse_line(line.strip(), "example").modulus.hex())
            except ValueError:
                continue
    return ca_der, moduli


def _refuse_placeholders(acquirer: dict[str, Any], capk_text: str | None, file: str) -> None:
    """Production mode: the example's CA, CA public key and host names are not a terminal's."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from firmware.emv import capk

    for key in ("host", "server_name"):
        name = str(acquirer.get(key, "")).lower().rstrip(".")
        if any(name == d or name.endswith("." + d) for d in _RESERVED_DOMAINS):
            raise SiteError(f"{file}: 'acquirer.{key}' is the example's placeholder {name!r}: "
                            "put the acquirer's real host name (production mode)")
    example_ca, example_moduli = _example_placeholders()
    if example_ca and "ca_pem" in acquirer:
        der = x509.load_pem_x509_certificate(acquirer["ca_pem"].encode()).public_bytes(
            Encoding.DER)
        if der == example_ca:
            raise SiteError(f"{file}: 'acquirer.ca_pem' is the example CA from "
                            f"{EXAMPLE_SITE_FILE}: put the acquirer's CA certificate")
    for number, raw in enumerate((capk_text or "").splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#") and \
                capk.parse_line(line, f"line {number}").modulus.hex() in example_moduli:
            raise SiteError(f"{file}: 'kernel.capk' line {number}: the example's made-up key "
                            f"from {EXAMPLE_SITE_FILE}: put the schemes' live keys")


def _field_check(raw: dict[str, Any], mode: str, file: str) -> FieldCheck | None:
    if not raw:
        return None
    if mode != "test":
        raise SiteError(f"{file}: '[test]' is only allowed with mode = \"test\" (never on a "
                        "production terminal)")
    if not raw.get("field_check", False):
        return None
    check = FieldCheck(**{k: v for k, v in raw.items() if k != "field_check"})
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", check.wallet):  # `pitap wallet --list` names
        raise SiteError(f"{file}: 'test.wallet' must be a wallet profile name like "
                        f"'visa-online', got {check.wallet!r}")
    if not 0 < check.amount < 10**9:
        raise SiteError(f"{file}: 'test.amount' must be 1..999999999 minor units, "
                        f"got {check.amount}")
    return check


def _check_pem_certificate(text: str, where: str) -> None:
    from cryptography import x509

    try:
        x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        raise SiteError(f"{where}: not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None


def _check_key_pair(cert_pem: str, key_pem: str, where: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise SiteError(
            f"{where}.client_key_pem: not an unencrypted PEM private key"
        ) from None
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, pub) != cert.public_key().public_bytes(enc, pub):
        raise SiteError(f"{where}.client_key_pem: does not belong to client_cert_pem")


def parse_site(text: str, source: str = SITE_FILE_NAME) -> Site:
    """Validate a provisioning file's text; SiteError names the first mistake found."""
    file = source
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SiteError(f"{file}: not valid TOML: {exc}") from None
    for key in data:
        if key not in _SECTIONS and key != "mode":
            raise SiteError(
                f"{file}: unknown key '{key}' (known: mode, {', '.join(_SECTIONS)})"
            )
    mode = data.get("mode", "production")
    if mode not in ("test", "production"):
        raise SiteError(f"{file}: 'mode' must be 'test' or 'production', got {mode!r}")
    terminal = _section(data, "terminal", file)
    acquirer = _section(data, "acquirer", file)
    keys = _section(data, "keys", file)
    kernel = _section(data, "kernel", file)
    hw_raw = _section(data, "hardware", file)
    field_check = _field_check(_section(data, "test", file), mode, file)

    tid, mid = terminal["terminal_id"], terminal["merchant_id"]
    if not re.fullmatch(r"[A-Za-z0-9]{8}", tid):
        raise SiteError(f"{file}: 'terminal.terminal_id' must be 8 letters/digits, got {tid!r}")
    if not re.fullmatch(r"[A-Za-z0-9 ]{1,15}", mid):
        raise SiteError(f"{file}: 'terminal.merchant_id' must be 1-15 letters/digits, got {mid!r}")
    currency = terminal.get("currency", "EUR")
    if currency.upper() not in CURRENCIES:
        raise SiteError(f"{file}: 'terminal.currency' unknown currency {currency!r}")

    host, port = acquirer["host"], acquirer["port"]
    if not (_HOSTNAME.match(host) or _is_ip_address(host)):
        raise SiteError(f"{file}: 'acquirer.host' is not a host name or address: {host!r}")
    if not 0 < port < 65536:
        raise SiteError(f"{file}: 'acquirer.port' must be 1..65535, got {port}")
    if not _DIALECT.match(acquirer.get("dialect", "pitap-default")):
        raise SiteError(f"{file}: 'acquirer.dialect' must be a dialect name like 'pitap-default'")
    tls = acquirer.get("tls", True)
    if mode == "production" and not tls:
        raise SiteError(f"{file}: 'acquirer.tls' must be true in production mode")
    if tls and "ca_pem" not in acquirer:
        raise SiteError(f"{file}: 'acquirer.ca_pem' is missing (the acquirer CA, needed for TLS)")
    if "ca_pem" in acquirer:
        _check_pem_certificate(acquirer["ca_pem"], f"{file}: 'acquirer.ca_pem'")
    has_cert, has_key = "client_cert_pem" in acquirer, "client_key_pem" in acquirer
    if has_cert != has_key:
        raise SiteError(f"{file}: 'acquirer.client_cert_pem' and 'client_key_pem' go together")
    if has_cert:
        _check_pem_certificate(acquirer["client_cert_pem"], f"{file}: 'acquirer.client_cert_pem'")
        _check_key_pair(acquirer["client_cert_pem"], acquirer["client_key_pem"],
                        f"{file}: 'acquirer")

    journal_key = None
    if "journal_key" in keys:
        if not re.fullmatch(r"[0-9A-Fa-f]{64}", keys["journal_key"]):
            raise SiteError(f"{file}: 'keys.journal_key' must be 64 hex digits (AES-256)")
        journal_key = bytes.fromhex(keys["journal_key"])
    key_block = keys.get("key_block")
    if key_block is not None and not re.fullmatch(r"[0-9A-Za-z]{16,}", key_block.strip()):
        raise SiteError(f"{file}: 'keys.key_block' must be a TR-31 key block (letters/digits)")

    capk_text = kernel.get("capk")
    if capk_text is not None:
        _check_capk(capk_text, mode, f"{file}: 'kernel.capk'")
    elif mode == "production":
        raise SiteError(f"{file}: 'kernel.capk' is missing: production mode needs the payment "
                        "schemes' live CA public keys (from the acquirer)")
    if mode == "production":
        _refuse_placeholders(acquirer, capk_text, file)

    hardware = Hardware(**hw_raw)
    if hardware.reader.startswith(_UART_READERS) and not hardware.uart:
        raise SiteError(
            f"{file}: 'hardware.uart' must be true: the reader {hardware.reader!r} is on the UART"
        )
    if hardware.uart0_pi5 and not hardware.uart:
        raise SiteError(f"{file}: 'hardware.uart0_pi5' needs 'hardware.uart = true'")
    if hardware.display in _SPI_DISPLAYS and not hardware.spi:
        raise SiteError(
            f"{file}: 'hardware.spi' must be true: the display {hardware.display!r} is on SPI"
        )
    site = Site(
        source=source,
        mode=mode,
        terminal=terminal,
        acquirer=acquirer,
        journal_key=journal_key,
        key_block=key_block.strip() if key_block else None,
        capk=capk_text,
        hardware=hardware,
        field_check=field_check,
    )
    # The firmware's own loader has the last word on every setting we pass through; its
    # message is given with the site file's key names.
    try:
        parse_config(terminal_toml(site, TerminalPaths()), Path(source))
    except ConfigError as exc:
        message = str(exc)
        for config_key, site_key in _CONFIG_TO_SITE_KEYS.items():
            message = message.replace(config_key, site_key)
        raise SiteError(message) from None
    return site


def load_site(path: Path) -> Site:
    try:
        text = read_text_file(path, "provisioning file")
    except ConfigError as exc:
        raise SiteError(str(exc)) from None
    return parse_site(text, str(path))


@dataclass(frozen=True)
class TerminalPaths:
    """Where things live on the terminal (as the terminal sees them, not under a chroot)."""

    config_dir: str = "/etc/pitap"
    secrets_dir: str = "/etc/pitap/secrets"
    state_dir: str = "/var/lib/pitap"
    shipped_config: str = "/opt/pitap/venv/share/pitap/config"

    @property
    def terminal_toml(self) -> str:
        return f"{self.config_dir}/terminal.toml"


def _q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def secret_files(site: Site) -> dict[str, bytes]:
    """Secret material by file name inside the root-only secrets directory."""
    out: dict[str, bytes] = {}
    if "client_key_pem" in site.acquirer:
        out["client.key"] = site.acquirer["client_key_pem"].encode()
    if site.journal_key is not None:  # the journal's format: base64 of the 32-byte key
        out["journal.key"] = base64.b64encode(site.journal_key) + b"\n"
    if site.key_block:
        out["key-block.tr31"] = site.key_block.encode() + b"\n"
    return out


def public_files(site: Site) -> dict[str, bytes]:
    """Non-secret files by name inside the config directory."""
    out: dict[str, bytes] = {}
    if "ca_pem" in site.acquirer:
        out["acquirer-ca.pem"] = site.acquirer["ca_pem"].encode()
    if "client_cert_pem" in site.acquirer:
        out["client.pem"] = site.acquirer["client_cert_pem"].encode()
    if site.capk:
        out["capk.txt"] = site.capk.strip().encode() + b"\n"
    return out


FIELD_CHECK_FILE = "field-check.toml"  # in the config directory: turns the field-test units on


def field_check_toml(site: Site) -> str | None:
    """The settings pitap-field-check.service reads, or None when the site has no field check."""
    check = site.field_check
    if check is None:
        return None
    return ("# Written by pitap first boot: this TEST terminal checks itself after boot and\n"
            "# powers off (pitap-test-host.service, pitap-field-check.service).\n"
            f"wallet = {_q(check.wallet)}\namount = {check.amount}\n")


def terminal_toml(site: Site, paths: TerminalPaths) -> str:
    """The terminal.toml first boot writes: settings from the site file, secrets by path."""
    t, a, hw = site.terminal, site.acquirer, site.hardware
    shipped = paths.shipped_config
    capk_file = f"{paths.config_dir}/capk.txt" if site.capk else f"{shipped}/capk/test.txt"
    lines = [
        "# Written by pitap first boot from the provisioning file; edit with care.",
        f"mode = {_q(site.mode)}",
        "",
        "[terminal]",
        f"terminal_id = {_q(t['terminal_id'])}",
        f"merchant_id = {_q(t['merchant_id'])}",
    ]
    for key in ("merchant_name", "merchant_city", "currency", "language"):
        if key in t:
            lines.append(f"{key} = {_q(t[key])}")
    if "country" in t:
        lines.append(f"country = {t['country']}")
    lines += [f"state_dir = {_q(paths.state_dir)}", "", "[reader]", f"path = {_q(hw.reader)}"]
    lines += [
        "",
        "[host]",
        f"host = {_q(a['host'])}",
        f"port = {a['port']}",
        f"dialect = {_q(shipped + '/dialects/' + a.get('dialect', 'pitap-default') + '.toml')}",
        f"tls = {'true' if a.get('tls', True) else 'false'}",
    ]
    if "ca_pem" in a:
        lines.append(f"ca_file = {_q(paths.config_dir + '/acquirer-ca.pem')}")
    if "client_cert_pem" in a:
        lines.append(f"client_cert = {_q(paths.config_dir + '/client.pem')}")
        lines.append(f"client_key = {_q(paths.secrets_dir + '/client.key')}")
    if "server_name" in a:
        lines.append(f"server_name = {_q(a['server_name'])}")
    lines += [
        "",
        "[kernel]",
        f"aid_table = {_q(shipped + '/aids.toml')}",
        f"capk_file = {_q(capk_file)}",
        "",
        "[journal]",
        "file = \"journal.sqlite\"",
        f"key_file = {_q(paths.secrets_dir + '/journal.key')}",
        "",
        "[display]",
        f"backend = {_q(hw.display)}",
        "",
        "[gpio]",
        f"backend = {_q(hw.gpio)}",
        "",
        "[keypad]",
        f"backend = {_q(hw.keypad)}",
        "",
        "[printer]",
        f"backend = {_q(hw.printer)}",
        f"port = {_q(hw.printer_port)}",
        "",
    ]
    return "\n".join(lines)
