"""Start-up check: configuration and secrets readable only by the service user."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from firmware.config import ConfigError, load_config
from firmware.journal import Journal
from firmware.private_files import check_private_files, problems


def _config(tmp_path: Path, mode: str = "test", policy: str = "auto") -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    cfg = tmp_path / "terminal.toml"
    cfg.write_text(
        f'mode = "{mode}"\n[terminal]\nstate_dir = "{state}"\n'
        f'[journal]\ncheck_permissions = "{policy}"\n'
    )
    cfg.chmod(0o600)
    return cfg


def test_private_setup_passes(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, mode="production"))
    Journal.open(cfg.state_path("journal.sqlite"), cfg.state_path("journal.key")).close()
    assert problems(cfg) == []
    assert check_private_files(cfg) == []


def test_world_readable_config_stops_production(tmp_path: Path) -> None:
    path = _config(tmp_path, mode="production")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"chmod 600 .*terminal.toml"):
        check_private_files(load_config(path))


def test_readable_key_is_named(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, policy="enforce"))
    key = cfg.state_path("journal.key")
    key.write_text("x")
    key.chmod(0o640)
    with pytest.raises(ConfigError, match="journal key"):
        check_private_files(cfg)


def test_test_mode_only_advises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _config(tmp_path)
    path.chmod(0o644)
    caplog.set_level(logging.INFO, logger="firmware.private_files")
    found = check_private_files(load_config(path))
    assert len(found) == 1 and "configuration file" in found[0]
    assert "chmod 600" in caplog.text


def test_foreign_owner_is_a_problem(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path))
    found = problems(cfg, uid=os.geteuid() + 1)
    assert any("owned by uid" in line for line in found)


def test_no_core_dumps_in_a_child_process() -> None:
    import subprocess
    import sys

    code = (
        "import ctypes, resource\n"
        "from firmware.private_files import no_core_dumps\n"
        "ok = no_core_dumps()\n"
        "dumpable = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE\n"
        "print(ok, resource.getrlimit(resource.RLIMIT_CORE), dumpable)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "(0,", "0)", "0"]
