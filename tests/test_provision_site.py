"""The provisioning file: the shipped example is valid, and each kind of mistake is rejected with a
message naming the key at fault (and never echoing a secret)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from firmware.config import parse_config
from firmware.provision.site import (
    SiteError,
    TerminalPaths,
    load_site,
    parse_site,
    secret_files,
    terminal_toml,
)
from simulators.host import testpki

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "site.example.toml"


def make_cert(cn: str, ca: bool = False) -> tuple[str, str]:
    """A self-signed certificate (the test PKI's issuer) and its private key, both PEM."""
    key = testpki.new_key()
    cert = testpki.issue(cn, key, ca=ca, client=not ca)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


CA_PEM, _ = make_cert("Test Acquirer CA", ca=True)
CLIENT_PEM, CLIENT_KEY = make_cert("PITAP042")
_, OTHER_KEY = make_cert("someone else")
JOURNAL_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def make_capk_line(rid: str = "A000000003", index: int = 0x92) -> str:
    """A well-formed CA key line (kernel capk format) for a fresh 1024-bit RSA key."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from firmware.emv.capk import checksum

    n = rsa.generate_private_key(public_exponent=3, key_size=1024).public_key().public_numbers().n
    modulus = n.to_bytes(128, "big")
    check = checksum(bytes.fromhex(rid), index, modulus, b"\x03").hex().upper()
    return f"{rid} {index:02X} 301231 rsa 03 {modulus.hex().upper()} sha1 {check}"


CAPK_LINE = make_capk_line()
TEST_CAPK_LINE = next(
    line for line in (Path(__file__).resolve().parents[1] / "config/capk/test.txt")
    .read_text().splitlines() if line and not line.startswith("#")
)


def site_text(**replace: str) -> str:
    """A complete valid production site file; `replace` swaps whole lines by their key."""
    lines = {
        "mode": 'mode = "production"',
        "h_terminal": "[terminal]",
        "terminal_id": 'terminal_id = "PITAP042"',
        "merchant_id": 'merchant_id = "000000000000042"',
        "currency": 'currency = "EUR"',
        "h_acquirer": "[acquirer]",
        "host": 'host = "acquirer.pitap-bank.it"',
        "port": "port = 8583",
        "tls": "tls = true",
        "ca_pem": f'ca_pem = """{CA_PEM}"""',
        "client_cert_pem": f'client_cert_pem = """{CLIENT_PEM}"""',
        "client_key_pem": f'client_key_pem = """{CLIENT_KEY}"""',
        "h_keys": "[keys]",
        "journal_key": f'journal_key = "{JOURNAL_KEY}"',
        "h_kernel": "[kernel]",
        "capk": f'capk = """\n# live keys\n{CAPK_LINE}\n"""',
        "h_hardware": "[hardware]",
        "reader": 'reader = "tty:AMA0:pn532"',
        "uart": "uart = true",
        "spi": "spi = true",
        "display": 'display = "st7789"',
    }
    lines.update(replace)
    return "\n".join(v for v in lines.values() if v) + "\n"


def test_shipped_example_is_valid_once_its_placeholders_are_replaced() -> None:
    text = EXAMPLE.read_text()
    site = parse_site(text.replace('mode = "production"', 'mode = "test"'))
    assert site.terminal["terminal_id"] == "PITAP042"
    assert site.config_txt_lines == ["dtparam=spi=on", "enable_uart=1"]
    # production with the technician's own host, CA and live key: accepted
    real = (site_text().split("[kernel]")[1]).split('"""')[1]
    ours = text.replace("acquirer.example.net", "acquirer.pitap-bank.it")
    ours = ours.replace(ours.split('ca_pem = """')[1].split('"""')[0], CA_PEM)
    ours = ours.replace(ours.split('capk = """')[1].split('"""')[0], real)
    assert parse_site(ours).mode == "production"


def test_unedited_example_is_refused_in_production_naming_each_placeholder() -> None:
    text = EXAMPLE.read_text()
    with pytest.raises(SiteError, match="'acquirer.host' is the example's placeholder"):
        load_site(EXAMPLE)
    text = text.replace('host = "acquirer.example.net"', 'host = "acquirer.pitap-bank.it"')
    with pytest.raises(SiteError, match="'acquirer.server_name' is the example's placeholder"):
        parse_site(text)
    text = text.replace('server_name = "acquirer.example.net"', "")
    with pytest.raises(SiteError, match="'acquirer.ca_pem' is the example CA"):
        parse_site(text)
    text = text.replace(text.split('ca_pem = """')[1].split('"""')[0], CA_PEM)
    with pytest.raises(SiteError, match="'kernel.capk' line 1: the example's made-up key"):
        parse_site(text)


@pytest.mark.parametrize("host", ["example.com", "acq.example.org", "pay.test", "x.invalid"])
def test_reserved_example_host_names_are_refused_in_production(host: str) -> None:
    with pytest.raises(SiteError, match="'acquirer.host' is the example's placeholder"):
        parse_site(site_text(host=f'host = "{host}"'))
    test_mode = parse_site(site_text(mode='mode = "test"', host=f'host = "{host}"'))
    assert test_mode.acquirer["host"] == host


def test_field_check_section_only_in_test_mode() -> None:
    extra = '[test]\nfield_check = true\nwallet = "mastercard-online"\namount = 2399\n'
    with pytest.raises(SiteError, match=r"'\[test\]' is only allowed with mode = \"test\""):
        parse_site(site_text() + extra)
    site = parse_site(site_text(mode='mode = "test"') + extra)
    assert site.field_check is not None
    assert (site.field_check.wallet, site.field_check.amount) == ("mastercard-online", 2399)
    assert parse_site(site_text(mode='mode = "test"')).field_check is None
    with pytest.raises(SiteError, match="'test.amount' must be 1..999999999"):
        parse_site(site_text(mode='mode = "test"') + extra.replace("2399", "0"))
    with pytest.raises(SiteError, match="unknown key 'test.wallets'"):
        parse_site(site_text(mode='mode = "test"') + "[test]\nwallets = 1\n")


def test_valid_site_gives_a_terminal_config_the_firmware_loads() -> None:
    site = parse_site(site_text())
    text = terminal_toml(site, TerminalPaths())
    cfg = parse_config(text, Path("/etc/pitap/terminal.toml"))
    assert cfg.mode == "production"
    assert cfg.terminal.terminal_id == "PITAP042"
    assert cfg.host.tls and cfg.host.client_key == "/etc/pitap/secrets/client.key"
    assert cfg.reader.path == "tty:AMA0:pn532" and cfg.display.backend == "st7789"
    assert "PRIVATE KEY" not in text and JOURNAL_KEY not in text
    secrets = secret_files(site)
    assert secrets["client.key"].decode() == CLIENT_KEY
    assert base64.b64decode(secrets["journal.key"]) == bytes.fromhex(JOURNAL_KEY)
    assert cfg.kernel.capk_file == "/etc/pitap/capk.txt"


MISTAKES = [
    ({"terminal_id": ""}, "'terminal.terminal_id' is missing"),
    ({"terminal_id": 'terminal_id = "PITAP42"'}, "'terminal.terminal_id' must be 8"),
    ({"merchant_id": 'merchant_id = "0000000000000042"'}, "'terminal.merchant_id' must be 1-15"),
    ({"currency": 'currency = "EURO"'}, "'terminal.currency' unknown currency"),
    ({"port": 'port = "8583"'}, "'acquirer.port' must be int"),
    ({"port": "port = 70000"}, "'acquirer.port' must be 1..65535"),
    ({"host": 'host = "acquirer example"'}, "'acquirer.host' is not a host name"),
    ({"host": 'hots = "acquirer.example.net"'}, "unknown key 'acquirer.hots'"),
    ({"tls": "tls = false"}, "'acquirer.tls' must be true in production"),
    ({"ca_pem": ""}, "'acquirer.ca_pem' is missing"),
    ({"ca_pem": 'ca_pem = "hello"'}, "'acquirer.ca_pem': not a PEM certificate"),
    ({"client_key_pem": ""}, "'acquirer.client_cert_pem' and 'client_key_pem' go together"),
    ({"client_key_pem": f'client_key_pem = """{OTHER_KEY}"""'}, "does not belong to"),
    ({"client_key_pem": 'client_key_pem = "nope"'}, "not an unencrypted PEM private key"),
    ({"journal_key": 'journal_key = "abcd"'}, "'keys.journal_key' must be 64 hex digits"),
    ({"journal_key": "journal_key = 12345678"}, "must be str, got a value not shown (secret)"),
    ({"uart": "uart = false"}, "'hardware.uart' must be true"),
    ({"spi": "spi = false"}, "'hardware.spi' must be true"),
    ({"display": 'display = "crt"'}, "'hardware.display': png, st7789"),
    ({"reader": 'reader = "serial:AMA0"'},
     "'hardware.reader': udp:..., tty:..., com:... or usb:..."),
    ({"mode": 'mode = "prod"'}, "'mode' must be 'test' or 'production'"),
    ({"capk": ""}, "'kernel.capk' is missing: production mode needs"),
    ({"capk": f'capk = """{CAPK_LINE[:-1]}{"1" if CAPK_LINE[-1] == "0" else "0"}"""'},
     "'kernel.capk' line 1: checksum"),
    ({"capk": 'capk = "A000000003 92 301231 rsa"'}, "'kernel.capk' line 1: expected 'RID"),
    ({"capk": f'capk = """{TEST_CAPK_LINE}"""'}, "is a test key; production mode needs"),
    ({"capk": 'capk = "# nothing"'}, "'kernel.capk': no CA key lines"),
    ({"h_keys": "[keyz]"}, "unknown key 'keyz'"),
    ({"port": "port = "}, "not valid TOML"),
]


@pytest.mark.parametrize(("change", "fragment"), MISTAKES)
def test_each_mistake_is_named(change: dict[str, str], fragment: str) -> None:
    with pytest.raises(SiteError) as err:
        parse_site(site_text(**change), "pitap-site.toml")
    message = str(err.value)
    assert fragment in message
    assert message.startswith("pitap-site.toml")
    assert "\n" not in message
    assert "PRIVATE KEY" not in message and "12345678" not in message


def test_acquirer_host_may_be_an_address() -> None:
    for host in ("192.0.2.10", "2001:db8::10", "acq-1.pitap-bank.it"):
        assert parse_site(site_text(host=f'host = "{host}"')).acquirer["host"] == host


def test_pi5_overlay_needs_the_uart() -> None:
    text = site_text(uart="uart = false", reader='reader = "usb"') + "uart0_pi5 = true\n"
    with pytest.raises(SiteError, match="'hardware.uart0_pi5' needs"):
        parse_site(text)
