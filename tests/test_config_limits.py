"""Absurd configuration values and files: every number and string has a range, every file a
configuration names is read bounded; each mistake is one line naming the file (and the key)."""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import subprocess
import typing
from pathlib import Path

import pytest
from run_support import PITAP

from firmware.config import (
    MAX_DATA_FILE,
    OPTIONAL_PATH,
    PATH,
    Config,
    ConfigError,
    _span,
    _value_problem,
    parse_config,
    read_data_file,
    shipped_config_dir,
)

SECTION_TYPES = {name: hint for name, hint in typing.get_type_hints(Config).items()
                 if dataclasses.is_dataclass(hint)}


def numbered(hint: object) -> bool:
    return hint in (int, float) or typing.get_args(hint) == (int,)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[terminal]\npresentment_timeout_s = inf\n", "'terminal.presentment_timeout_s'"),
        ("[terminal]\npresentment_timeout_s = nan\n", "'terminal.presentment_timeout_s'"),
        ("[terminal]\npresentment_timeout_s = 0.0\n", "'terminal.presentment_timeout_s'"),
        ("[host]\nresponse_timeout_s = 1e10\n", "'host.response_timeout_s'"),
        ("[host]\nconnect_timeout_s = -inf\n", "'host.connect_timeout_s'"),
        ("[journal]\nretry_max_s = 1e300\n", "'journal.retry_max_s'"),
        ("[display]\nwidth = 200000\nheight = 200000\n", "'display.width'"),
        ("[display]\nheight = 0\n", "'display.height'"),
        ("[terminal]\ncountry = " + "9" * 400 + "\n", "'terminal.country'"),
        ("[kernel]\nfloor_limit_override = 1000000000000\n", "'kernel.floor_limit_override'"),
        ("[gpio]\nled_pins = [5, 6, 13, 99]\n", "'gpio.led_pins' item 4"),
        ("[keypad]\nrow_pins = [" + ", ".join(["4"] * 40) + "]\n", "'keypad.row_pins'"),
        ("[printer]\nbaudrate = 0\n", "'printer.baudrate'"),
        ("[terminal]\nmerchant_name = '" + "x" * 5_000 + "'\n", "'terminal.merchant_name'"),
        ("[terminal]\nmerchant_name = ''\n", "'terminal.merchant_name'"),
        ("[terminal]\nmerchant_name = \"Shop\\nLine two\"\n", "'terminal.merchant_name'"),
        ("[terminal]\nstate_dir = \"var\\u0000x\"\n", "'terminal.state_dir'"),
        ("[host]\nhost = '" + "a" * 300 + "'\n", "'host.host'"),
        ("[reader]\npath = 'udp:127.0.0.1:99999'\n", "reader.path"),
        ("[reader]\npath = 'udp:127.0.0.1:0'\n", "reader.path"),
        ("[reader]\npath = 'udp:127.0.0.1:http'\n", "reader.path"),
        ("mode = '" + "t" * 1000 + "'\n", "'mode'"),
    ],
)
def test_absurd_values_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("/etc/pitap/site.toml"))
    message = str(err.value)
    assert message.startswith("/etc/pitap/site.toml: ") and key in message
    assert "\n" not in message and len(message) < 200, message


@pytest.mark.parametrize("path", ["udp", "udp:127.0.0.1", "udp:127.0.0.1:54321", "udp::65535",
                                  "tty:AMA0:pn532", "usb:054c:06c3"])
def test_reader_paths_nfcpy_takes(path: str) -> None:
    assert parse_config(f"[reader]\npath = '{path}'\n", Path("t.toml")).reader.path == path


@pytest.mark.parametrize("text", ["a = " + "[" * 50_000, "a = " + "9" * 5_000])
def test_toml_that_breaks_the_parser_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match="site.toml: not valid TOML"):
        parse_config(text, Path("site.toml"))


def test_every_number_has_a_range_and_every_default_is_in_it() -> None:
    assert len(SECTION_TYPES) == 13
    for name, section in SECTION_TYPES.items():
        hints = typing.get_type_hints(section)
        limits = getattr(section, "LIMITS", {})
        for f in dataclasses.fields(section):
            hint = hints[f.name]
            if numbered(hint):
                assert f.name in limits, f"{name}.{f.name} has no range"
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            assert _value_problem(default, hint, limits.get(f.name)) == "", f"{name}.{f.name}"


def documented_lines() -> dict[str, str]:
    """'section.key' -> its line in config/terminal.toml with the indented comment lines that
    continue it (commented-out keys too)."""
    lines: dict[str, str] = {}
    section = key = ""
    for line in (shipped_config_dir() / "terminal.toml").read_text().splitlines():
        if m := re.match(r"\[(\w+)\]", line):
            section = m.group(1)
        elif m := re.match(r"#? ?(\w+) += ", line):
            key = f"{section}.{m.group(1)}" if section else m.group(1)
            lines.setdefault(key, line)
        elif key and re.match(r" +# ", line):
            lines[key] += " " + line.strip()
        else:
            key = ""
    return lines


def test_terminal_toml_documents_every_key_with_its_range() -> None:
    documented = documented_lines()
    for name, section in SECTION_TYPES.items():
        for key, (lo, hi) in getattr(section, "LIMITS", {}).items():
            line = documented.get(f"{name}.{key}")
            assert line is not None, f"{name}.{key} is not in config/terminal.toml"
            if (lo, hi) not in (PATH, OPTIONAL_PATH):
                assert _span(lo, hi) in line, f"{name}.{key}: say {_span(lo, hi)} in: {line}"
        for f in dataclasses.fields(section):
            assert f"{name}.{f.name}" in documented, f"{name}.{f.name} undocumented"


def limited(max_bytes: int = 1 << 30) -> None:
    """In the child: a memory ceiling, so that reading /dev/zero whole fails fast and alone."""
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def run_limited(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PITAP, *args], capture_output=True, text=True, timeout=240, cwd=cwd,
                          preexec_fn=limited, env=os.environ | {"PYTHONUNBUFFERED": "1"})


@pytest.mark.parametrize(
    ("site", "fragment"),
    [
        (None, "/dev/zero: configuration file must be a regular file"),
        ("[kernel]\naid_table = '/dev/zero'\n", "/dev/zero: AID table must be a regular file"),
        ("[kernel]\ncapk_file = '/dev/zero'\n", "/dev/zero: CA key file must be a regular file"),
        ("[host]\ndialect = '/dev/zero'\n", "/dev/zero: dialect file"),
        ("[kernel]\naid_table = 'big.toml'\n", "big.toml: AID table is over 1 MiB"),
        ("[kernel]\naid_table = 'fifo'\n", "fifo: AID table must be a regular file"),
        ("[kernel]\naid_table = '.'\n", "AID table must be a regular file, not a directory"),
        ("[host]\ntls = true\nca_file = '/dev/zero'\n", "host.ca_file"),
    ],
)
def test_data_files_are_read_bounded(tmp_path: Path, site: str | None, fragment: str) -> None:
    (tmp_path / "big.toml").write_bytes(b"#" * (MAX_DATA_FILE + 1))
    os.mkfifo(tmp_path / "fifo")  # nobody writes: opening it must not wait
    config = "/dev/zero"
    if site is not None:
        config = str(tmp_path / "site.toml")
        Path(config).write_text(f"[terminal]\nstate_dir = '{tmp_path / 'state'}'\n{site}")
    run = run_limited("pay", "1.00", "--config", config, cwd=tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "MemoryError" not in run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert fragment in line, line


def test_a_big_configuration_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "site.toml"
    big.write_text("# padding\n" * (MAX_DATA_FILE // 10 + 1))
    run = run_limited("journal", "--config", str(big), cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == f"pitap: configuration error: {big}: configuration file is " \
                                 "over 1 MiB; refused"


def test_read_data_file_takes_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"x" * 100)
    assert read_data_file(path, "test file", limit=100) == b"x" * 100
    with pytest.raises(ConfigError, match="test file is over 99 bytes"):
        read_data_file(path, "test file", limit=99)
    with pytest.raises(ConfigError, match="test file not found"):
        read_data_file(tmp_path / "missing", "test file")
