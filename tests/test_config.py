"""Configuration: the shipped default loads, and every mistake names its file and key."""

from pathlib import Path

import pytest

from firmware.config import ConfigError, load_config, parse_config


def test_shipped_default_loads() -> None:
    cfg = load_config()
    assert cfg.mode == "test"
    assert cfg.reader.path.startswith("udp:")
    assert cfg.currency_numeric == 978
    assert cfg.data_path(cfg.kernel.aid_table).parent == cfg.source.parent


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[host]\nprot = 1\n", "'host.prot'"),
        ("[host]\nport = 'x'\n", "'host.port' must be int"),
        ("[host]\nport = 70000\n", "host.port"),
        ("[terminal]\ncurrency = 'XXX'\n", "terminal.currency"),
        ("colour = 1\n", "unknown key 'colour'"),
        ("host = 3\n", "'host' must be a table"),
        ("[display]\nbackend = 'crt'\n", "display.backend"),
        ("[terminal\n", "not valid TOML"),
    ],
)
def test_mistakes_name_the_key(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("/etc/pitap/site.toml"))
    assert fragment in str(err.value)
    assert "/etc/pitap/site.toml" in str(err.value)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
