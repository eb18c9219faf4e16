"""The [upi] and [voice] configuration tables: the shipped file documents every key with its
range, defaults are within their ranges, and each mistake is one ConfigError naming the file
and the dotted key."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
from test_config_limits import documented_lines

from firmware.config import _span, _value_problem, load_config, parse_config
from firmware.upi.config import UpiSection, VoiceSection, upi_settings, voice_settings

SITE = Path("/etc/pitap/site.toml")


def test_shipped_configuration_takes_no_upi_and_speaks_not() -> None:
    cfg = load_config()
    assert upi_settings(cfg) == UpiSection() and not upi_settings(cfg).enabled
    assert voice_settings(cfg) == VoiceSection() and not voice_settings(cfg).enabled


def test_a_shop_that_takes_upi() -> None:
    cfg = parse_config('[upi]\npayee_vpa = "chai.corner@okaxis"\nmcc = "5814"\n'
                       'psp_url = "https://psp.example.in/api"\nmax_amount = 500000\n'
                       '[voice]\nenabled = true\nlanguage = "hi"\nvolume = 60\n', SITE)
    upi, voice = upi_settings(cfg), voice_settings(cfg)
    assert upi.enabled and upi.payee_vpa == "chai.corner@okaxis" and upi.max_amount == 500000
    assert (voice.enabled, voice.language, voice.volume) == (True, "hi", 60)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[upi]\npayee_vpa = 'shop'\nmcc = '5411'\n", "upi.payee_vpa"),
        ("[upi]\npayee_vpa = 'shop@okaxis'\n", "upi.mcc"),
        ("[upi]\npayee_vpa = 'shop@okaxis'\nmcc = '54x1'\n", "upi.mcc"),
        ("[upi]\nmcc = '54111'\n", "'upi.mcc'"),
        ("[upi]\npayee_vpa = 'shop@okaxis'\nmcc = '5411'\npayee_name = '" + "n" * 51 + "'\n",
         "'upi.payee_name'"),
        ("[upi]\nqr_form = 'emv'\n", "upi.qr_form"),
        ("[upi]\npsp_url = 'ftp://x'\n", "upi.psp_url"),
        ("[upi]\npsp_url = 'http://a b'\n", "upi.psp_url"),
        ("[upi]\nrequest_expiry_s = 5\n", "'upi.request_expiry_s'"),
        ("[upi]\npoll_interval_s = inf\n", "'upi.poll_interval_s'"),
        ("[upi]\nresponse_timeout_s = 0\n", "'upi.response_timeout_s'"),
        ("[upi]\nmax_amount = 20000000\n", "'upi.max_amount'"),
        ("[upi]\npayee = 'x'\n", "unknown key 'upi.payee'"),
        ("[voice]\nenabled = 'yes'\n", "'voice.enabled' must be bool"),
        ("[voice]\nlanguage = 'fr'\n", "voice.language"),
        ("[voice]\nvolume = 101\n", "'voice.volume'"),
        ("[voice]\nrate_wpm = 10\n", "'voice.rate_wpm'"),
        ("[voice]\ndevice = ''\n", "'voice.device'"),
    ],
)
def test_mistakes_name_the_file_and_key(text: str, key: str) -> None:
    cfg = parse_config(text, SITE)
    with pytest.raises(Exception) as err:
        upi_settings(cfg) if text.startswith("[upi]") else voice_settings(cfg)
    message = str(err.value)
    assert type(err.value).__name__ == "ConfigError"
    assert message.startswith(f"{SITE}: ") and key in message, message
    assert "\n" not in message and len(message) < 200


def test_a_table_that_is_no_table_is_refused_at_load() -> None:
    with pytest.raises(Exception, match="'upi' must be dict"):
        parse_config("upi = 3\n", SITE)


@pytest.mark.parametrize(("name", "section"), [("upi", UpiSection), ("voice", VoiceSection)])
def test_every_key_is_documented_with_its_range(name: str, section: type) -> None:
    documented = documented_lines()
    hints = typing.get_type_hints(section)
    limits = section.LIMITS
    for f in dataclasses.fields(section):
        line = documented.get(f"{name}.{f.name}")
        assert line is not None, f"{name}.{f.name} is not in config/terminal.toml"
        if hints[f.name] in (int, float, str):
            assert f.name in limits, f"{name}.{f.name} has no range"
            assert _span(*limits[f.name]) in line, f"{name}.{f.name}: say the range in: {line}"
        default = f.default
        assert _value_problem(default, hints[f.name], limits.get(f.name)) == ""
