"""Configuration: the shipped default loads, and every mistake names its file and key."""

from pathlib import Path

import pytest

from firmware.config import ConfigError, load_config, parse_config


def test_shipped_default_loads() -> None:
    cfg = load_config()
    assert cfg.mode == "test"
    assert cfg.reader.path.startswith("udp:")
    assert cfg.currency.numeric == 978
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


def test_site_file_uses_the_shipped_data_files(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[terminal]\nterminal_id = 'SHOP0042'\n")
    cfg = load_config(site)
    assert cfg.terminal.terminal_id == "SHOP0042"
    assert cfg.data_path(cfg.kernel.aid_table) == load_config().data_path(cfg.kernel.aid_table)
    assert cfg.data_path(cfg.kernel.aid_table).is_file()
    (tmp_path / "aids.toml").write_text("# the site's own table\n")
    assert cfg.data_path("aids.toml") == tmp_path / "aids.toml"


def test_site_file_finds_the_shipped_dialect(tmp_path: Path) -> None:
    from firmware.host.dialect import load_dialect

    site = tmp_path / "site.toml"
    site.write_text("[host]\ndialect = 'bcd-tpdu'\n")
    cfg = load_config(site)
    assert load_dialect(cfg.host.dialect, cfg.source.parent).source.name == "bcd-tpdu.toml"
