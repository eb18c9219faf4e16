"""Absurd configuration files: every file a configuration names is read bounded (a regular
file of at most 1 MiB, never read whole); each mistake is one line naming the file."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest
from run_support import PITAP

from firmware.config import MAX_DATA_FILE, ConfigError, parse_config, read_data_file


@pytest.mark.parametrize("text", ["a = " + "[" * 50_000, "a = " + "9" * 5_000])
def test_toml_that_breaks_the_parser_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match="site.toml: not valid TOML"):
        parse_config(text, Path("site.toml"))


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
